//! MetricFlow as the oracle for the Metrics API.
//!
//! The demo is loaded into a new PostgreSQL database; a dbt project is made of
//! it (`tests/metricflow/project`: staging views and a time spine, plus
//! `policies/semantic/*.yml` copied unchanged); `dbt run` builds it, which also
//! writes `target/semantic_manifest.json`. steward serves the Metrics API from
//! that dbt project as written, and MetricFlow (`tests/metricflow/mf_batch.py`,
//! the engine `mf query` drives) answers the same queries on the same database.
//! Every metric is compared by day, week and month, over whole ranges, by each
//! of its dimensions, and with a filter: the numbers must be equal.
//!
//! Where steward deliberately differs, the difference itself is checked:
//! - a metric defined at a grain whose measure does not add up (DAU) reports,
//!   over a longer period, the mean of its values at that grain; MetricFlow
//!   counts distinct users over the whole period. steward's value must equal
//!   the mean of MetricFlow's daily values.
//! - a cumulative metric asked for without a grain gives its value on the
//!   range's last day; MetricFlow refuses that query. steward's value must
//!   equal MetricFlow's daily value on that day.
//! - a count over no rows at all (no grain, no group, a filter matching
//!   nothing) is 0 in steward; MetricFlow rewrites counts to sums and says
//!   NULL. Checked as such.
//! - conversion metrics are compared with [`conversion_oracle`], an
//!   independent statement from dbt's definition, because MetricFlow 0.211's
//!   conversion SQL joins on day-truncated times, ignores the base measure's
//!   filter and does not de-duplicate (it partitions by a random UUID).
//! - MetricFlow 0.211 ends a time constraint on an hour-grained time
//!   dimension at the first hour of the last day; for those metrics the range
//!   is given to MetricFlow as a filter on the day instead.
//!
//! Needs the MetricFlow venv (`scripts/metricflow setup`, which `.ci/run`
//! runs and exports as `STEWARD_TEST_METRICFLOW`); without it the test says it
//! is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use chrono::{Datelike, Duration, NaiveDate};
use serde_json::{Value, json};
use steward::policy::Policy;
use steward::semantic::{
    Agg, DimensionFilter, Grain, MetricDef, MetricQuery, MetricType, SemanticLayer, SemanticSource,
    TimeRange,
};
use steward::sql::Dialect;

use crate::helpers::{as_of, demo_db, demo_settings, root, spawn, with_postgres_database};

/// One query asked of both.
struct Case {
    id: String,
    metric: String,
    grain: Option<Grain>,
    range: TimeRange,
    group_by: Vec<String>,
    filter: Option<(String, String)>,
    /// How steward's answer relates to MetricFlow's.
    expect: Expect,
    /// A saved query MetricFlow runs by name (`mf query --saved-query`).
    saved: Option<String>,
    /// A custom granularity of the time spine instead of `grain`.
    custom: Option<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Expect {
    /// The same rows.
    Equal,
    /// steward's value is the mean of MetricFlow's values at this grain
    /// within each period (or the whole range).
    MeanOf(Grain),
    /// steward's (single) value is MetricFlow's daily value on the last day.
    LastDay,
    /// A conversion metric: compared with [`conversion_oracle`], not MetricFlow.
    Conversion,
    /// A metric comparing periods asked for without a grain: MetricFlow
    /// fails on it; steward refuses it with 400 and says why.
    Refused,
    /// `offset_to_grain` by week or longer, or `offset_window` without a
    /// grain: MetricFlow 0.211 writes SQL that does not run (`missing
    /// FROM-clause entry`) or fails; steward answers, unchecked.
    MetricFlowFails,
}

fn write_project(dir: &Path, pg_url: &str) {
    let template = root().join("tests/metricflow/project");
    copy_dir(&template, dir);
    let semantic = dir.join("models/semantic");
    std::fs::create_dir_all(&semantic).unwrap();
    for entry in std::fs::read_dir(root().join("policies/semantic")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, semantic.join(path.file_name().unwrap())).unwrap();
    }
    let u = url::Url::parse(pg_url).unwrap();
    let profiles = json!({
        "steward_demo": {
            "target": "ci",
            "outputs": {"ci": {
                "type": "postgres",
                "host": u.host_str().unwrap_or("127.0.0.1"),
                "port": u.port().unwrap_or(5432),
                "user": if u.username().is_empty() { "postgres" } else { u.username() },
                "password": u.password().unwrap_or(""),
                "dbname": u.path().trim_start_matches('/'),
                "schema": "public",
                "threads": 2,
            }}
        }
    });
    // JSON is YAML.
    std::fs::write(dir.join("profiles.yml"), profiles.to_string()).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn dbt(venv: &Path, project: &Path, args: &[&str]) {
    let out = Command::new(venv.join("bin/dbt"))
        .args(args)
        .arg("--project-dir")
        .arg(project)
        .arg("--profiles-dir")
        .arg(project)
        .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        .output()
        .expect("dbt runs");
    assert!(
        out.status.success(),
        "dbt {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn range(start: NaiveDate, end: NaiveDate) -> TimeRange {
    TimeRange::new(start, end).unwrap()
}

/// The queries: for every metric, by day, week and month and over whole
/// ranges; by each dimension, whole and by week; with a filter.
fn cases(layer: &SemanticLayer, values: &BTreeMap<String, String>) -> Vec<Case> {
    let today = as_of();
    let monday = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let month_start = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    let months_ago = month_start
        .checked_sub_months(chrono::Months::new(3))
        .unwrap();
    let last_28 = range(today - Duration::days(28), today);
    let mut out = Vec::new();
    for m in layer.metrics() {
        let mut add = |grain: Option<Grain>, r: TimeRange, group_by: Vec<String>, filter| {
            let expect = expectation(layer, m, grain);
            out.push(Case {
                id: format!("q{}", out.len()),
                metric: m.name.clone(),
                grain,
                range: r,
                group_by,
                filter,
                expect,
                saved: None,
                custom: None,
            });
        };
        add(
            Some(Grain::Day),
            range(today - Duration::days(14), today),
            vec![],
            None,
        );
        add(
            Some(Grain::Week),
            range(monday - Duration::days(28), monday),
            vec![],
            None,
        );
        add(
            Some(Grain::Month),
            range(months_ago, month_start),
            vec![],
            None,
        );
        add(None, range(today - Duration::days(7), today), vec![], None);
        add(None, last_28, vec![], None);
        if layer.time_granularity(m) < Grain::Day {
            add(
                Some(Grain::Hour),
                range(today - Duration::days(2), today),
                vec![],
                None,
            );
        }
        let dims = layer.dimensions_of(m);
        for d in &dims {
            add(None, last_28, vec![d.name.clone()], None);
            add(
                Some(Grain::Week),
                range(monday - Duration::days(14), monday),
                vec![d.name.clone()],
                None,
            );
        }
        if let Some(d) = dims.iter().find(|d| values.contains_key(&d.name)) {
            let v = values[&d.name].clone();
            add(None, last_28, vec![], Some((d.name.clone(), v.clone())));
            add(
                Some(Grain::Day),
                range(today - Duration::days(7), today),
                vec![d.name.clone()],
                Some((d.name.clone(), v)),
            );
        }
    }
    out
}

fn expectation(layer: &SemanticLayer, m: &MetricDef, grain: Option<Grain>) -> Expect {
    if m.kind == MetricType::Conversion {
        return Expect::Conversion;
    }
    let inputs = &m.type_params.metrics;
    let to_grain = inputs.iter().any(|r| r.offset_to_grain.is_some());
    let window = inputs.iter().any(|r| r.offset_window.is_some());
    if to_grain && grain.is_none() {
        return Expect::Refused;
    }
    if (to_grain && grain.is_some_and(|g| g > Grain::Day)) || (window && grain.is_none()) {
        return Expect::MetricFlowFails;
    }
    if m.kind == MetricType::Cumulative && grain.is_none() {
        return Expect::LastDay;
    }
    match m.time_granularity {
        Some(g)
            if m.kind == MetricType::Simple
                && !layer.base_measures_additive(m)
                && grain.is_none_or(|q| q > g) =>
        {
            Expect::MeanOf(g)
        }
        _ => Expect::Equal,
    }
}

/// What [`conversion_oracle`] needs to know of a conversion metric.
struct ConversionDef {
    /// Events table and its time, row id and entity columns.
    table: &'static str,
    ts: &'static str,
    id: &'static str,
    entity: &'static str,
    /// Conditions that make a row a base or a conversion event.
    base: &'static str,
    conversion: &'static str,
    /// `INTERVAL '…'` or none.
    window: Option<&'static str>,
    /// A column that must be equal on both events.
    constant: Option<&'static str>,
    /// The column both measures count distinct values of.
    counted: &'static str,
    /// `conversion_rate` (else `conversions`).
    rate: bool,
}

/// The conversion metrics the oracle knows: the demo's checkout conversion,
/// and one over sessions in tests/metricflow/project/models/oracle/.
fn conversion_def(metric: &str) -> ConversionDef {
    match metric {
        "checkout_conversion_rate" => ConversionDef {
            table: "events",
            ts: "occurred_at",
            id: "event_id",
            entity: "session_id",
            base: "event_name = 'checkout_started'",
            conversion: "event_name = 'checkout_completed'",
            window: Some("1 day"),
            constant: None,
            counted: "session_id",
            rate: true,
        },
        "app_sessions_after_web" => ConversionDef {
            table: "sessions",
            ts: "started_at",
            id: "session_id",
            entity: "user_id",
            base: "platform = 'web'",
            conversion: "platform <> 'web'",
            window: Some("7 days"),
            constant: Some("country"),
            counted: "session_id",
            rate: false,
        },
        other => panic!("the conversion oracle does not know {other}"),
    }
}

/// A conversion metric's answer written independently of steward's compiler,
/// from dbt's definition: each conversion event is matched, by a correlated
/// subquery, to the latest base event of the same entity at or before it
/// (within the window, with the constant property equal) and counts for that
/// base event's period and dimensions. PostgreSQL; rows are
/// `[period?, dimensions…, value]` like the Metrics API's.
fn conversion_oracle(c: &Case) -> String {
    let def = conversion_def(&c.metric);
    let column = |d: &str| match d {
        "event_name" => "b.event_name".to_owned(),
        "region" | "plan" | "industry" => format!("cu.{d}"),
        "session_platform" | "session_country" if def.table == "sessions" => {
            format!("b.{}", &d["session_".len()..])
        }
        "session_platform" | "session_country" => format!("ss.{}", &d["session_".len()..]),
        other => format!("up.{other}"),
    };
    let mut keys = Vec::new();
    match c.grain {
        Some(g) if g.is_sub_daily() => keys.push(format!(
            "to_char(date_trunc('{}', b.{}), 'YYYY-MM-DD HH24:MI:SS')",
            g.as_str(),
            def.ts
        )),
        Some(g) => keys.push(format!(
            "CAST(date_trunc('{}', b.{}) AS DATE)",
            g.as_str(),
            def.ts
        )),
        None => {}
    }
    keys.extend(c.group_by.iter().map(|d| column(d)));
    let filter: String = c
        .filter
        .iter()
        .map(|(d, v)| format!(" AND {} = '{}'", column(d), v.replace('\'', "''")))
        .collect();
    let names: Vec<String> = (0..keys.len()).map(|i| format!("k{i}")).collect();
    let select_keys: String = keys
        .iter()
        .zip(&names)
        .map(|(k, n)| format!("{k} AS {n}, "))
        .collect();
    let keys_of = |t: &str| {
        names
            .iter()
            .map(|k| format!("{t}.{k}, "))
            .collect::<String>()
    };
    let group_of = |t: &str| {
        if names.is_empty() {
            String::new()
        } else {
            format!(
                " GROUP BY {}",
                names
                    .iter()
                    .map(|k| format!("{t}.{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    let session_join = if def.table == "events" {
        " LEFT JOIN sessions ss ON ss.session_id = b.session_id"
    } else {
        ""
    };
    let window = def
        .window
        .map(|w| format!(" AND c.{ts} < s.ts + INTERVAL '{w}'", ts = def.ts))
        .unwrap_or_default();
    let constant = def
        .constant
        .map(|p| format!(" AND s.cp = c.{p}"))
        .unwrap_or_default();
    let on = if names.is_empty() {
        "TRUE".to_owned()
    } else {
        names
            .iter()
            .map(|k| format!("bases.{k} IS NOT DISTINCT FROM conversions.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ")
    };
    let last = if def.rate {
        format!(
            "SELECT {}CAST(conversions.n AS DOUBLE PRECISION) / NULLIF(bases.n, 0) FROM bases LEFT JOIN conversions ON {on}",
            keys_of("bases")
        )
    } else {
        format!(
            "SELECT {}CAST(n AS DOUBLE PRECISION) FROM conversions",
            keys_of("conversions")
        )
    };
    format!(
        "WITH starts AS (SELECT {select_keys}b.{id} AS id, b.{entity} AS entity, b.{counted} AS counted, b.{ts} AS ts, {cp} AS cp \
           FROM {table} b LEFT JOIN user_profiles up ON up.user_id = b.user_id \
           LEFT JOIN customers cu ON cu.customer_id = up.customer_id{session_join} \
           WHERE b.{base} AND b.{ts} >= DATE '{start}' AND b.{ts} < DATE '{end}'{filter}), \
         firsts AS (SELECT c.{counted} AS counted, (SELECT s.id FROM starts s WHERE s.entity = c.{entity} \
             AND s.ts <= c.{ts}{window}{constant} ORDER BY s.ts DESC LIMIT 1) AS start_id \
           FROM {table} c WHERE c.{conversion}), \
         conversions AS (SELECT {conv_keys}COUNT(DISTINCT f.counted) AS n FROM firsts f JOIN starts s ON s.id = f.start_id{conv_group}), \
         bases AS (SELECT {base_keys}COUNT(DISTINCT s.counted) AS n FROM starts s{base_group}) \
         {last}",
        id = def.id,
        entity = def.entity,
        counted = def.counted,
        ts = def.ts,
        table = def.table,
        cp = def
            .constant
            .map(|p| format!("b.{p}"))
            .unwrap_or_else(|| "NULL".into()),
        base = def.base,
        conversion = def.conversion,
        start = date(c.range.start),
        end = date(c.range.end),
        conv_keys = keys_of("s"),
        conv_group = group_of("s"),
        base_keys = keys_of("s"),
        base_group = group_of("s"),
    )
}

/// Runs an oracle statement; rows keyed like [`steward_rows`].
async fn oracle_rows(pg_url: &str, sql: &str) -> Rows {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(pg_url).await.unwrap();
    let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("oracle SQL fails: {e}\n{sql}"));
    rows.iter()
        .map(|r| {
            let n = r.len();
            let key = (0..n - 1)
                .map(|i| {
                    r.try_get::<chrono::NaiveDate, _>(i)
                        .map(date)
                        .or_else(|_| {
                            r.try_get::<String, _>(i)
                                .map(|s| key_text(&Value::String(s)))
                        })
                        .unwrap_or_else(|_| "∅".into())
                })
                .collect();
            (key, r.try_get::<Option<f64>, _>(n - 1).unwrap())
        })
        .collect()
}

/// A range as a MetricFlow filter on `metric_time` by day.
fn day_filter(r: TimeRange) -> String {
    let day = "{{ TimeDimension('metric_time', 'day') }}";
    format!(
        "{day} >= '{}' AND {day} <= '{}'",
        date(r.start),
        date(r.last_day())
    )
}

/// The MetricFlow request for a case (`start`/`end` inclusive).
fn mf_request(layer: &SemanticLayer, c: &Case) -> Value {
    let m = layer.metric(&c.metric).unwrap();
    if let Some(name) = &c.saved {
        if layer.time_granularity(m) < Grain::Day {
            return json!({"id": c.id, "saved_query": name, "where": [day_filter(c.range)]});
        }
        return json!({
            "id": c.id,
            "saved_query": name,
            "start": date(c.range.start),
            "end": date(c.range.last_day()),
        });
    }
    let grain = match c.expect {
        Expect::Equal | Expect::Conversion | Expect::Refused | Expect::MetricFlowFails => c.grain,
        Expect::MeanOf(g) => Some(g),
        Expect::LastDay => Some(Grain::Day),
    };
    let mut group_by: Vec<String> = grain
        .map(|g| format!("metric_time__{}", g.as_str()))
        .into_iter()
        .chain(c.custom.iter().map(|g| format!("metric_time__{g}")))
        .collect();
    // The period a MeanOf value averages within.
    if c.expect != Expect::Equal
        && let Some(g) = c.grain
    {
        group_by.push(format!("metric_time__{}", g.as_str()));
    }
    group_by.extend(
        c.group_by
            .iter()
            .map(|d| layer.qualified_dimension(m, d).expect("qualified name")),
    );
    let mut wheres: Vec<String> = c
        .filter
        .iter()
        .map(|(d, v)| {
            format!(
                "{{{{ Dimension('{}') }}}} = '{}'",
                layer.qualified_dimension(m, d).unwrap(),
                v.replace('\'', "''")
            )
        })
        .collect();
    if layer.time_granularity(m) < Grain::Day {
        // MetricFlow 0.211 cuts a time constraint on a sub-daily time
        // dimension queried by day or coarser at the first hour of its last
        // day (`metric_time__hour BETWEEN start AND last_day`), so the range
        // is asked for as a filter on the day instead.
        wheres.push(day_filter(c.range));
        return json!({"id": c.id, "metrics": [c.metric], "group_by": group_by, "where": wheres});
    }
    json!({
        "id": c.id,
        "metrics": [c.metric],
        "group_by": group_by,
        "where": wheres,
        "start": date(c.range.start),
        "end": date(c.range.last_day()),
    })
}

type Rows = BTreeMap<Vec<String>, Option<f64>>;

/// A key as text; times as `YYYY-MM-DD` at midnight, else `YYYY-MM-DD HH:MM:SS`.
fn key_text(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() >= 10 && s.as_bytes()[4] == b'-' => {
            let t = s.replace('T', " ");
            t.strip_suffix(" 00:00:00").unwrap_or(&t).to_owned()
        }
        Value::String(s) => s.clone(),
        Value::Null => "∅".into(),
        other => other.to_string(),
    }
}

/// MetricFlow's rows as key → value, keys in steward's column order
/// (period, dimensions); for MeanOf/LastDay the finer grain leads.
fn mf_rows(layer: &SemanticLayer, c: &Case, result: &Value) -> Rows {
    let m = layer.metric(&c.metric).unwrap();
    let columns: Vec<&str> = result["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let col = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("{}: MetricFlow has no column {name}: {columns:?}", c.id))
    };
    let mut key_cols: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, n)| n.starts_with("metric_time"))
        .map(|(i, _)| i)
        .collect();
    key_cols.extend(
        c.group_by
            .iter()
            .map(|d| col(&layer.qualified_dimension(m, d).unwrap())),
    );
    let value_col = col(&c.metric);
    result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = key_cols.iter().map(|i| key_text(&r[*i])).collect();
            (key, r[value_col].as_f64())
        })
        .collect()
}

/// What steward's answer should be, from MetricFlow's rows.
fn expected(c: &Case, mf: Rows) -> Rows {
    match c.expect {
        Expect::Equal | Expect::Conversion | Expect::Refused | Expect::MetricFlowFails => mf,
        Expect::LastDay => {
            let last = date(c.range.last_day());
            mf.into_iter()
                .filter(|(k, _)| k[0] == last)
                .map(|(k, v)| (k[1..].to_vec(), v))
                .collect()
        }
        Expect::MeanOf(_) => {
            // Key: [fine period, (coarse period)?, dims…]; average over the fine period.
            let mut sums: BTreeMap<Vec<String>, (f64, usize)> = BTreeMap::new();
            for (k, v) in mf {
                let entry = sums.entry(k[1..].to_vec()).or_default();
                entry.0 += v.unwrap_or(0.0);
                entry.1 += 1;
            }
            sums.into_iter()
                .map(|(k, (sum, n))| (k, Some(sum / n as f64)))
                .collect()
        }
    }
}

fn steward_rows(body: &Value) -> Rows {
    let columns = body["columns"].as_array().unwrap();
    let n = columns.len();
    body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let key = (0..n - 1).map(|i| key_text(&r[i])).collect();
            (key, r[n - 1].as_f64())
        })
        .collect()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        (None, None) => true,
        _ => false,
    }
}

fn api_path(c: &Case) -> String {
    let mut q = vec![
        format!("start={}", date(c.range.start)),
        format!("end={}", date(c.range.end)),
    ];
    if let Some(g) = c.grain {
        q.push(format!("grain={}", g.as_str()));
    }
    if let Some(g) = &c.custom {
        q.push(format!("grain={g}"));
    }
    if !c.group_by.is_empty() {
        q.push(format!("group_by={}", c.group_by.join(",")));
    }
    if let Some((d, v)) = &c.filter {
        q.push(format!(
            "filter={}",
            url::form_urlencoded::byte_serialize(format!("{d}:{v}").as_bytes()).collect::<String>()
        ));
    }
    format!("/api/metrics/{}?{}", c.metric, q.join("&"))
}

/// Each saved query the chat answers, over four weeks: MetricFlow runs it by
/// name, steward's Metrics API with its metric, grain, breakdown and filters.
fn saved_cases(layer: &SemanticLayer, first_id: usize) -> Vec<Case> {
    let monday = as_of() - Duration::days(i64::from(as_of().weekday().num_days_from_monday()));
    layer
        .saved_queries()
        .iter()
        .filter_map(|q| Some((q, q.plan().ok()?)))
        .enumerate()
        .map(|(i, (q, p))| {
            assert!(
                p.filters.len() <= 1,
                "the API takes one value per filter here"
            );
            Case {
                id: format!("q{}", first_id + i),
                metric: p.metric.clone(),
                grain: p.grain,
                range: range(monday - Duration::days(28), monday),
                group_by: p.group_by.into_iter().collect(),
                filter: p
                    .filters
                    .first()
                    .map(|f| (f.dimension.clone(), f.values[0].clone())),
                expect: Expect::Equal,
                saved: Some(q.name.clone()),
                custom: None,
            }
        })
        .collect()
}

/// Every metric that can be reported by the time spine's custom granularity
/// (simple, ratio and derived metrics; steward refuses the others, checked
/// here), over two fiscal quarters, whole and by its first dimension.
fn custom_cases(layer: &SemanticLayer, first_id: usize) -> (Vec<Case>, usize) {
    let range = range(
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
    );
    let mut out = Vec::new();
    let mut refused = 0;
    for m in layer.metrics() {
        let first = layer.dimensions_of(m).first().map(|d| d.name.clone());
        for group_by in [vec![], first.into_iter().collect::<Vec<_>>()] {
            let q = MetricQuery {
                metric: m.name.clone(),
                range,
                grain: None,
                custom_grain: Some("fiscal_quarter".into()),
                group_by: group_by.clone(),
                filters: vec![],
            };
            match layer.compile(&q, Dialect::Postgres) {
                Err(e) => {
                    assert!(
                        e.to_string().contains("custom granularity"),
                        "{}: {e}",
                        m.name
                    );
                    refused += 1;
                }
                Ok(_) if m.kind == MetricType::Conversion => {}
                Ok(_) => out.push(Case {
                    id: format!("q{}", first_id + out.len()),
                    metric: m.name.clone(),
                    grain: None,
                    range,
                    group_by,
                    filter: None,
                    expect: Expect::Equal,
                    saved: None,
                    custom: Some("fiscal_quarter".into()),
                }),
            }
        }
    }
    (out, refused)
}

/// A value of each categorical dimension, read from the warehouse.
async fn dimension_values(layer: &SemanticLayer, pg_url: &str) -> BTreeMap<String, String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(pg_url).await.unwrap();
    let mut out = BTreeMap::new();
    for (name, sql) in layer.dimension_value_queries(1) {
        let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .fetch_all(&mut conn)
            .await
            .unwrap();
        if let Some(v) = rows.first().and_then(|r| r.try_get::<String, _>(0).ok()) {
            out.insert(name, v);
        }
    }
    out
}

fn metricflow_venv() -> Option<PathBuf> {
    std::env::var_os("STEWARD_TEST_METRICFLOW").map(PathBuf::from)
}

#[tokio::test]
async fn the_metrics_api_equals_metricflow_on_the_demo_project() {
    let Some(venv) = metricflow_venv() else {
        eprintln!(
            "SKIPPED the_metrics_api_equals_metricflow_on_the_demo_project: STEWARD_TEST_METRICFLOW is not set (run `scripts/metricflow setup` and export its output)"
        );
        return;
    };
    with_postgres_database("steward_mf", |pg_url| async move {
        steward::demo::postgres::load(demo_db(), &pg_url)
            .await
            .expect("demo loads into PostgreSQL");
        let tmp = tempfile::tempdir().unwrap();
        let project = tmp.path().join("demo_project");
        write_project(&project, &pg_url);
        // The time spine with its custom granularity, in the warehouse and
        // in the allow-list of a copy of the demo policy.
        {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&pg_url).await.unwrap();
            sqlx::raw_sql(
                "CREATE TABLE public.metricflow_time_spine AS SELECT d::date AS date_day, \
                 (date_trunc('quarter', d - interval '1 month') + interval '1 month')::date AS fiscal_quarter \
                 FROM generate_series(DATE '2000-01-01', DATE '2040-12-31', interval '1 day') AS d",
            )
            .execute(&mut conn)
            .await
            .unwrap();
        }
        let policies = tmp.path().join("policies");
        copy_dir(&root().join("policies"), &policies);
        let mut schema = std::fs::read_to_string(policies.join("schema.yaml")).unwrap();
        schema.push_str(
            "\n  metricflow_time_spine:\n    description: One row per day, with the first day of its fiscal quarter.\n    columns:\n      date_day: {class: public, description: The day.}\n      fiscal_quarter: {class: public, description: \"First day of the fiscal quarter (February, May, August or November).\"}\n",
        );
        std::fs::write(policies.join("schema.yaml"), schema).unwrap();
        dbt(&venv, &project, &["run", "--quiet"]);

        // steward reads the project as written, and the manifest dbt wrote
        // from it, to the same metrics compiling to the same SQL.
        let policy = Policy::load(&policies).unwrap();
        let layer =
            SemanticLayer::load_from(&SemanticSource::DbtProject(project.clone()), &policy.schema)
                .expect("the dbt project loads as written");
        let manifest = SemanticLayer::load_from(
            &SemanticSource::Manifest(project.join("target/semantic_manifest.json")),
            &policy.schema,
        )
        .expect("semantic_manifest.json loads");
        let names = |l: &SemanticLayer| l.metrics().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&layer), names(&manifest));
        assert!(names(&layer).len() >= 12, "{:?}", names(&layer));

        let values = dimension_values(&layer, &pg_url).await;
        let mut cases = cases(&layer, &values);
        let saved = saved_cases(&layer, cases.len());
        assert!(saved.len() >= 2, "the demo's and the oracle project's saved queries");
        cases.extend(saved);
        let (custom, custom_refused) = custom_cases(&layer, cases.len());
        assert!(custom.len() >= 20, "{} custom-granularity cases", custom.len());
        cases.extend(custom);
        let mut compile_time = std::time::Duration::ZERO;
        for c in &cases {
            let q = MetricQuery {
                metric: c.metric.clone(),
                range: c.range,
                grain: c.grain,
                custom_grain: c.custom.clone(),
                group_by: c.group_by.clone(),
                filters: c
                    .filter
                    .iter()
                    .map(|(d, v)| DimensionFilter {
                        dimension: d.clone(),
                        values: vec![v.clone()],
                    })
                    .collect(),
            };
            let started = Instant::now();
            let a = layer.compile(&q, Dialect::Postgres);
            compile_time += started.elapsed();
            let b = manifest.compile(&q, Dialect::Postgres);
            assert_eq!(a, b, "{}: YAML and manifest compile alike", c.id);
            assert_eq!(a.is_err(), c.expect == Expect::Refused, "{}: {a:?}", c.id);
            if let Ok(a) = &a {
                assert!(a.sql.len() < 64 * 1024, "{}: {} bytes of SQL", c.id, a.sql.len());
            }
        }

        // MetricFlow's answers, all in one process.
        let requests: Vec<Value> = cases
            .iter()
            .filter(|c| !matches!(c.expect, Expect::Conversion | Expect::Refused | Expect::MetricFlowFails))
            .map(|c| mf_request(&layer, c))
            .collect();
        let started = Instant::now();
        let mut child = Command::new(venv.join("bin/python"))
            .arg(root().join("tests/metricflow/mf_batch.py"))
            .env("DBT_PROJECT_DIR", &project)
            .env("DBT_PROFILES_DIR", &project)
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("MetricFlow starts");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin
                .write_all(serde_json::to_vec(&requests).unwrap().as_slice())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "MetricFlow failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mf_wall = started.elapsed();
        let mut results: BTreeMap<String, Value> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && let Some(id) = v["id"].as_str()
            {
                results.insert(id.to_owned(), v);
            }
        }

        // steward's answers through the Metrics API, served from the dbt project.
        let mut settings = demo_settings();
        settings.warehouse = pg_url.clone();
        settings.semantic.dbt_project = Some(project.clone());
        settings.policies = policies.clone();
        let app = spawn(settings).await;
        let (mut equal, mut deliberate, mut empty, mut zero_counts) = (0, 0, 0, 0);
        let (mut conversions, mut refused, mut unchecked) = (0, 0, 0);
        let mut mismatches = Vec::new();
        for c in &cases {
            if c.expect == Expect::Refused {
                let (status, body) = app.get(Some("dave"), &api_path(c)).await;
                assert_eq!(status, 400, "{}: {body}", api_path(c));
                assert!(body["error"]["message"].as_str().unwrap().contains("offset_to_grain"), "{body}");
                refused += 1;
                continue;
            }
            if c.expect == Expect::MetricFlowFails {
                let (status, body) = app.get(Some("dave"), &api_path(c)).await;
                assert_eq!(status, 200, "{}: {body}", api_path(c));
                unchecked += 1;
                continue;
            }
            let want = if c.expect == Expect::Conversion {
                oracle_rows(&pg_url, &conversion_oracle(c)).await
            } else {
                let mf = &results[&c.id];
                assert!(mf["error"].is_null(), "{}: MetricFlow refused {}: {}", c.id, mf_request(&layer, c), mf["error"]);
                expected(c, mf_rows(&layer, c, mf))
            };
            let (status, body) = app.get(Some("dave"), &api_path(c)).await;
            assert_eq!(status, 200, "{}: {}", api_path(c), body);
            let got = steward_rows(&body);
            // A count over no rows is 0 in steward (COUNT); MetricFlow
            // rewrites counts to SUMs, which give NULL there.
            let counts = layer
                .base_measures(layer.metric(&c.metric).unwrap())
                .iter()
                .any(|(_, m)| matches!(m.agg, Agg::Count | Agg::CountDistinct));
            let no_rows = |r: &Rows| r.len() == 1 && r.keys().all(Vec::is_empty);
            if counts && no_rows(&want) && no_rows(&got) && want[&vec![]].is_none() && got[&vec![]] == Some(0.0) {
                zero_counts += 1;
                continue;
            }
            let same = want.len() == got.len()
                && want
                    .iter()
                    .all(|(k, v)| got.get(k).is_some_and(|g| close(*g, *v)));
            if !same {
                mismatches.push(format!(
                    "{} {}\n  MetricFlow: {want:?}\n  steward:    {got:?}",
                    c.id,
                    api_path(c)
                ));
            }
            if want.is_empty() {
                empty += 1;
            }
            match c.expect {
                Expect::Equal => equal += 1,
                Expect::Conversion => conversions += 1,
                _ => deliberate += 1,
            }
        }
        let metrics = layer.metrics().count();
        // Empty answers agree trivially; they must stay the exception.
        assert!(empty * 10 < cases.len(), "{empty} of {} queries had no rows", cases.len());
        let report = format!(
            "metricflow comparison: {} (metric, query) pairs over {metrics} metrics: {equal} compared row for row with MetricFlow, {conversions} conversion queries with an independent SQL oracle, {deliberate} documented differences checked, {zero_counts} counts over no rows (0 vs NULL), {refused} period-start comparisons without a grain refused with 400, {unchecked} that MetricFlow cannot compile, {custom_refused} custom-granularity queries steward refuses, {empty} empty on both sides, {} mismatches; steward compile {:.1} µs/query, MetricFlow {:.1} ms/query (wall, incl. SQL)\n",
            cases.len(),
            mismatches.len(),
            compile_time.as_secs_f64() * 1e6 / cases.len() as f64,
            mf_wall.as_secs_f64() * 1e3 / cases.len() as f64,
        );
        // Straight to stderr: libtest captures the print macros, and CI should
        // show these counts whether the test passes or not.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
        assert!(
            mismatches.is_empty(),
            "{} of {} queries differ from MetricFlow:\n{}",
            mismatches.len(),
            cases.len(),
            mismatches.join("\n")
        );
    })
    .await;
}
