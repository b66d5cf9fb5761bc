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

    /// The first day of the `grain` period containing `expr`, as a date.
    pub fn truncate(self, grain: Grain, expr: &str) -> String {
        match self {
            Dialect::Sqlite => match grain {
                Grain::Day => format!("date({expr})"),
                Grain::Week => format!("date({expr}, 'weekday 0', '-6 days')"),
                Grain::Month => format!("strftime('%Y-%m-01', {expr})"),
                Grain::Quarter => format!(
                    "printf('%s-%02d-01', strftime('%Y', {expr}), ((CAST(strftime('%m', {expr}) AS INTEGER) - 1) / 3) * 3 + 1)"
                ),
                Grain::Year => format!("strftime('%Y-01-01', {expr})"),
            },
            Dialect::Postgres | Dialect::Snowflake => {
                format!("CAST(date_trunc('{}', {expr}) AS DATE)", grain.as_str())
            }
        }
    }

    /// Null-safe equality of two expressions (SQL:2003 `IS NOT DISTINCT FROM`,
    /// which SQLite supports since 3.39).
    pub fn null_safe_eq(self, a: &str, b: &str) -> String {
        format!("{a} IS NOT DISTINCT FROM {b}")
    }

    /// The median of `expr` within groups keyed by `keys` over `from` (a
    /// derived table with the columns `keys` and `expr`); returns a full SELECT
    /// whose value column is named `value_name`.
    pub fn median_select(
        self,
        keys: &[String],
        expr: &str,
        from: &str,
        value_name: &str,
    ) -> String {
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
        match self {
            Dialect::Postgres => format!(
                "SELECT {select_keys}percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr}) AS {value_name} FROM {from}{group}"
            ),
            Dialect::Snowflake => {
                format!("SELECT {select_keys}MEDIAN({expr}) AS {value_name} FROM {from}{group}")
            }
            Dialect::Sqlite => {
                // SQLite has no median: average the middle one or two values.
                let partition = if keys.is_empty() {
                    String::new()
                } else {
                    format!("PARTITION BY {key_list} ")
                };
                format!(
                    "SELECT {select_keys}AVG({expr}) AS {value_name} FROM (SELECT {select_keys}{expr}, \
                     ROW_NUMBER() OVER ({partition}ORDER BY {expr}) AS rn, COUNT(*) OVER ({partition}) AS cnt \
                     FROM {from} WHERE {expr} IS NOT NULL) AS ranked \
                     WHERE rn IN ((cnt + 1) / 2, (cnt + 2) / 2){group}"
                )
            }
        }
    }
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
