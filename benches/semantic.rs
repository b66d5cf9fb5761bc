//! Criterion benchmark: compiling metric queries to SQL (`SemanticLayer::compile`)
//! and compiling plus validating them with the guard, for every demo metric by
//! day, by week with a breakdown, and over a whole range. Results: docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use steward::policy::Principal;
use steward::semantic::{Grain, MetricQuery, SemanticLayer, TimeRange};
use steward::sql::{Dialect, Origin, validate};

fn queries(layer: &SemanticLayer) -> Vec<MetricQuery> {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let range = TimeRange::new(d("2026-10-19"), d("2026-11-16")).unwrap();
    let mut out = Vec::new();
    for m in layer.metrics() {
        let first = layer.dimensions_of(m).first().map(|d| d.name.clone());
        for (grain, group_by) in [
            (Some(Grain::Day), vec![]),
            (Some(Grain::Week), first.iter().cloned().collect()),
            (None, vec![]),
        ] {
            out.push(MetricQuery {
                metric: m.name.clone(),
                range,
                grain,
                custom_grain: None,
                group_by,
                filters: vec![],
            });
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let (policy, layer) = steward::startup::load_policy(&dir).unwrap();
    let grants = policy.grants(&Principal {
        user: "bench".into(),
        roles: vec!["analyst".into()],
        groups: vec![],
    });
    let qs = queries(&layer);
    println!("{} metric queries per iteration", qs.len());
    c.bench_function("compile every demo metric query (postgres)", |b| {
        b.iter(|| {
            for q in &qs {
                black_box(layer.compile(black_box(q), Dialect::Postgres).unwrap());
            }
        })
    });
    c.bench_function(
        "compile and validate every demo metric query (postgres)",
        |b| {
            b.iter(|| {
                for q in &qs {
                    let sql = layer.compile(q, Dialect::Postgres).unwrap().sql;
                    black_box(
                        validate(&sql, Dialect::Postgres, &policy, &grants, Origin::Metric)
                            .unwrap(),
                    );
                }
            })
        },
    );
    c.bench_function("load the demo semantic layer", |b| {
        b.iter(|| black_box(steward::startup::load_policy(&dir).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
