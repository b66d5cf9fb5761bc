//! Compiler tests against the demo semantic layer.

use super::super::periods::{period_start, periods};
use super::*;
use crate::semantic::tests::demo;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn q(metric: &str, grain: Option<Grain>, group_by: &[&str]) -> MetricQuery {
    MetricQuery {
        metric: metric.into(),
        range: TimeRange::new(d("2026-11-09"), d("2026-11-16")).unwrap(),
        grain,
        custom_grain: None,
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        filters: Vec::new(),
    }
}

#[test]
fn every_demo_metric_compiles_for_every_dialect_with_and_without_grain() {
    let s = demo();
    for m in s.metrics() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Snowflake] {
            for grain in [
                None,
                Some(Grain::Day),
                Some(Grain::Week),
                Some(Grain::Month),
            ] {
                let c = s.compile(&q(&m.name, grain, &[]), dialect).unwrap();
                let parser = dialect.parser();
                sqlparser::parser::Parser::parse_sql(parser.as_ref(), &c.sql)
                    .unwrap_or_else(|e| panic!("{} {dialect} {grain:?}: {e}\n{}", m.name, c.sql));
            }
        }
    }
}

#[test]
fn breakdown_columns_are_named_after_dimensions() {
    let c = demo()
        .compile(
            &q(
                "signups",
                Some(Grain::Day),
                &["platform", "customer__region"],
            ),
            Dialect::Sqlite,
        )
        .unwrap();
    assert_eq!(c.columns, vec!["period", "platform", "region", "signups"]);
    assert!(c.sql.contains("LEFT JOIN customers"), "{}", c.sql);
}

#[test]
fn unknown_dimension_lists_the_available_ones() {
    let err = demo()
        .compile(&q("revenue", None, &["platform"]), Dialect::Sqlite)
        .unwrap_err();
    match err {
        SemanticError::UnknownDimension { available, .. } => {
            assert!(available.contains("region"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn dau_over_a_range_is_a_mean_of_daily_values() {
    let c = demo()
        .compile(&q("dau", None, &[]), Dialect::Sqlite)
        .unwrap();
    assert_eq!(c.rollup.as_deref(), Some("mean of daily values"));
    assert!(c.sql.contains("AVG(fine.value)"));
}

#[test]
fn filter_values_are_quoted() {
    let mut query = q("signups", None, &[]);
    query.filters.push(crate::semantic::DimensionFilter {
        dimension: "platform".into(),
        values: vec!["x' OR '1'='1".into()],
    });
    let c = demo().compile(&query, Dialect::Sqlite).unwrap();
    assert!(c.sql.contains("IN ('x'' OR ''1''=''1')"), "{}", c.sql);
}

#[test]
fn periods_cover_the_range_at_each_grain() {
    let r = TimeRange::new(d("2026-10-15"), d("2026-12-02")).unwrap();
    let months = periods(r, Grain::Month);
    assert_eq!(months.len(), 3);
    assert_eq!(months[0], (d("2026-10-01"), d("2026-10-31")));
    assert_eq!(months[2], (d("2026-12-01"), d("2026-12-01")));
    let weeks = periods(
        TimeRange::new(d("2026-11-09"), d("2026-11-23")).unwrap(),
        Grain::Week,
    );
    assert_eq!(
        weeks,
        vec![
            (d("2026-11-09"), d("2026-11-15")),
            (d("2026-11-16"), d("2026-11-22"))
        ]
    );
    assert_eq!(
        period_start(d("2026-11-21"), Grain::Quarter),
        d("2026-10-01")
    );
}
