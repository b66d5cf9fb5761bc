//! SQL dialects steward speaks: parsing rules for the guard and the few
//! functions the semantic layer must spell differently per warehouse.

use std::fmt;

use chrono::NaiveDate;

use crate::semantic::Grain;

/// A warehouse SQL dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// SQLite 3 (the embedded demo warehouse); timestamps stored as ISO-8601 text.
    Sqlite,
    /// PostgreSQL 13+.
    Postgres,
    /// Snowflake.
    Snowflake,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Snowflake => "snowflake",
        })
    }
}

impl Dialect {
    /// Parses `sqlite`, `postgres` (or `postgresql`), `snowflake`.
    pub fn parse(name: &str) -> Option<Dialect> {
        match name.to_ascii_lowercase().as_str() {
            "sqlite" => Some(Dialect::Sqlite),
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "snowflake" => Some(Dialect::Snowflake),
            _ => None,
        }
    }

    /// The sqlparser dialect used to parse statements for this warehouse.
    pub fn parser(self) -> Box<dyn sqlparser::dialect::Dialect> {
        match self {
            Dialect::Sqlite => Box::new(sqlparser::dialect::SQLiteDialect {}),
            Dialect::Postgres => Box::new(sqlparser::dialect::PostgreSqlDialect {}),
            Dialect::Snowflake => Box::new(sqlparser::dialect::SnowflakeDialect {}),
        }
    }

    /// How the warehouse stores an identifier as written: SQLite matches names
    /// ignoring (ASCII) case, so lower case; PostgreSQL folds unquoted names
    /// to lower case and Snowflake to upper case, and both keep quoted names
    /// exactly (PostgreSQL manual §4.1.1; Snowflake "Identifier requirements").
    pub fn canonical(self, ident: &sqlparser::ast::Ident) -> String {
        match (self, ident.quote_style) {
            (Dialect::Sqlite, _) | (Dialect::Postgres, None) => ident.value.to_ascii_lowercase(),
            (Dialect::Snowflake, None) => ident.value.to_ascii_uppercase(),
            (Dialect::Postgres | Dialect::Snowflake, Some(_)) => ident.value.clone(),
        }
    }

    /// The stored form of a policy name (a plain lower-case identifier written
    /// unquoted): upper case on Snowflake, as is elsewhere.
    pub fn canonical_name(self, name: &str) -> String {
        match self {
            Dialect::Snowflake => name.to_ascii_uppercase(),
            Dialect::Sqlite | Dialect::Postgres => name.to_ascii_lowercase(),
        }
    }

    /// A policy name quoted so the warehouse reads exactly that column or
    /// table even when it is a reserved word: `"from"`, or `"FROM"` on Snowflake.
    pub fn quote_ident(self, name: &str) -> String {
        self.ident(name).to_string()
    }

    /// [`Dialect::quote_ident`] as an AST identifier.
    pub fn ident(self, name: &str) -> sqlparser::ast::Ident {
        sqlparser::ast::Ident::with_quote('"', self.canonical_name(name).replace('"', ""))
    }

    /// A date literal comparable with the warehouse's timestamp columns.
    pub fn date_literal(self, d: NaiveDate) -> String {
        match self {
            Dialect::Sqlite => format!("'{}'", d.format("%Y-%m-%d")),
            Dialect::Postgres | Dialect::Snowflake => format!("DATE '{}'", d.format("%Y-%m-%d")),
        }
    }

    /// The first day of the `grain` period containing `expr`, as a date; for
    /// grains shorter than a day, the period's first instant as a timestamp
    /// (SQLite: `YYYY-MM-DD HH:MM:SS` text).
    pub fn truncate(self, grain: Grain, expr: &str) -> String {
        match self {
            Dialect::Sqlite => match grain {
                Grain::Second => format!("strftime('%Y-%m-%d %H:%M:%S', {expr})"),
                Grain::Minute => format!("strftime('%Y-%m-%d %H:%M:00', {expr})"),
                Grain::Hour => format!("strftime('%Y-%m-%d %H:00:00', {expr})"),
                Grain::Day => format!("date({expr})"),
                Grain::Week => format!("date({expr}, 'weekday 0', '-6 days')"),
                Grain::Month => format!("strftime('%Y-%m-01', {expr})"),
                Grain::Quarter => format!(
                    "printf('%s-%02d-01', strftime('%Y', {expr}), ((CAST(strftime('%m', {expr}) AS INTEGER) - 1) / 3) * 3 + 1)"
                ),
                Grain::Year => format!("strftime('%Y-01-01', {expr})"),
            },
            Dialect::Postgres | Dialect::Snowflake if grain.is_sub_daily() => {
                format!("date_trunc('{}', {expr})", grain.as_str())
            }
            Dialect::Postgres | Dialect::Snowflake => {
                format!("CAST(date_trunc('{}', {expr}) AS DATE)", grain.as_str())
            }
        }
    }

    /// `expr` (a timestamp) plus `count` periods of `grain` (`count` may be
    /// negative): SQLite `datetime(expr, '+N unit')`, PostgreSQL `expr +
    /// INTERVAL 'N unit'`, Snowflake `DATEADD(unit, N, expr)`. Weeks are 7
    /// days, quarters 3 months.
    pub fn add_interval(self, expr: &str, count: i64, grain: Grain) -> String {
        let (n, unit) = match grain {
            Grain::Second => (count, "second"),
            Grain::Minute => (count, "minute"),
            Grain::Hour => (count, "hour"),
            Grain::Day => (count, "day"),
            Grain::Week => (count * 7, "day"),
            Grain::Month => (count, "month"),
            Grain::Quarter => (count * 3, "month"),
            Grain::Year => (count, "year"),
        };
        match self {
            Dialect::Sqlite => format!("datetime({expr}, '{n:+} {unit}s')"),
            Dialect::Postgres => format!("({expr} + INTERVAL '{n} {unit}')"),
            Dialect::Snowflake => format!("DATEADD({unit}, {n}, {expr})"),
        }
    }

    /// Null-safe equality of two expressions (SQL:2003 `IS NOT DISTINCT FROM`,
    /// which SQLite supports since 3.39).
    pub fn null_safe_eq(self, a: &str, b: &str) -> String {
        format!("{a} IS NOT DISTINCT FROM {b}")
    }

    /// A percentile as one aggregate expression over `expr`, where the
    /// dialect has one: PostgreSQL and Snowflake `PERCENTILE_CONT` /
    /// `PERCENTILE_DISC … WITHIN GROUP (ORDER BY expr)` (SQL:2008 ordered-set
    /// aggregates), Snowflake `APPROX_PERCENTILE`. `None` for SQLite (see
    /// [`Dialect::percentile_select`]) and for an approximate percentile in
    /// PostgreSQL, which has none.
    pub fn percentile_aggregate(self, expr: &str, p: Percentile) -> Option<String> {
        let f = p.fraction;
        match (self, p.kind) {
            (Dialect::Sqlite, _) | (Dialect::Postgres, PercentileKind::Approximate) => None,
            (Dialect::Snowflake, PercentileKind::Approximate) => {
                Some(format!("APPROX_PERCENTILE({expr}, {f})"))
            }
            (_, PercentileKind::Continuous) => Some(format!(
                "PERCENTILE_CONT({f}) WITHIN GROUP (ORDER BY {expr})"
            )),
            (_, PercentileKind::Discrete) => Some(format!(
                "PERCENTILE_DISC({f}) WITHIN GROUP (ORDER BY {expr})"
            )),
        }
    }

    /// A percentile of `expr` within groups keyed by `keys` over `from` (a
    /// derived table with the columns `keys` and `expr`); returns a full
    /// SELECT whose value column is named `value_name`, or `None` where the
    /// dialect cannot compute it (an approximate percentile outside
    /// Snowflake).
    ///
    /// SQLite has no percentile function; there the rows of each group are
    /// numbered in order and the result follows PostgreSQL's definitions:
    /// continuous is the linear interpolation at position `(n − 1) · p`
    /// between the neighbouring values; discrete is the first value whose row
    /// number reaches `p · n`. NULLs are ignored, as by the aggregates.
    pub fn percentile_select(
        self,
        keys: &[String],
        expr: &str,
        from: &str,
        value_name: &str,
        p: Percentile,
    ) -> Option<String> {
        let key_list = keys.join(", ");
        let select_keys = if keys.is_empty() {
            String::new()
        } else {
            format!("{key_list}, ")
        };
        let group = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {key_list}")
        };
        if self != Dialect::Sqlite {
            let agg = self.percentile_aggregate(expr, p)?;
            return Some(format!(
                "SELECT {select_keys}{agg} AS {value_name} FROM {from}{group}"
            ));
        }
        let partition = if keys.is_empty() {
            String::new()
        } else {
            format!("PARTITION BY {key_list} ")
        };
        let f = p.fraction;
        let ranked = format!(
            "SELECT {select_keys}{expr} AS pv, ROW_NUMBER() OVER ({partition}ORDER BY {expr}) AS rn, \
             COUNT(*) OVER ({partition}) AS cnt FROM {from} WHERE {expr} IS NOT NULL"
        );
        match p.kind {
            PercentileKind::Approximate => None,
            PercentileKind::Discrete => Some(format!(
                "SELECT {select_keys}MIN(CASE WHEN rn >= cnt * {f} THEN pv END) AS {value_name} \
                 FROM ({ranked}) AS ranked{group}"
            )),
            PercentileKind::Continuous => Some(format!(
                "SELECT {select_keys}lo + (h - CAST(h AS INTEGER)) * (COALESCE(hi, lo) - lo) AS {value_name} FROM (\
                 SELECT {select_keys}MAX(h) AS h, \
                 MAX(CASE WHEN rn = CAST(h AS INTEGER) + 1 THEN pv END) AS lo, \
                 MAX(CASE WHEN rn = CAST(h AS INTEGER) + 2 THEN pv END) AS hi \
                 FROM (SELECT {select_keys}pv, rn, (cnt - 1) * {f} AS h FROM ({ranked}) AS ranked) AS placed{group}) AS picked"
            )),
        }
    }
}

/// Which percentile a measure asks for (dbt's `agg: percentile` with
/// `agg_params`; `agg: median` is the continuous 0.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentile {
    /// In `[0, 1]`.
    pub fraction: f64,
    /// Continuous, discrete or approximate.
    pub kind: PercentileKind,
}

/// How a percentile is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentileKind {
    /// Interpolated between neighbouring values (`PERCENTILE_CONT`).
    Continuous,
    /// A value of the input (`PERCENTILE_DISC`).
    Discrete,
    /// The warehouse's approximation (Snowflake `APPROX_PERCENTILE`).
    Approximate,
}

/// Quotes a string as a SQL literal (`'` doubled, SQL-92 §5.3).
///
/// ```
/// assert_eq!(steward::sql::quote_literal("O'Brien"), "'O''Brien'");
/// assert_eq!(steward::sql::quote_literal("x' OR '1'='1"), "'x'' OR ''1''=''1'");
/// ```
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
