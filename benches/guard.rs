//! Criterion benchmark: parse + validate + rewrite over the legitimate corpus
//! (`tests/corpus/legit.sql`), per dialect. Results: docs/benchmarks.md.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use steward::policy::{Policy, Principal};
use steward::sql::{Dialect, Origin, validate};

fn corpus(dialect: Dialect) -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/corpus/legit.sql"
    ))
    .unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("--"))
        .filter_map(|l| l.split_once("|||"))
        .filter(|(tag, _)| {
            let tag = tag.trim();
            tag == "all"
                || tag
                    .split(',')
                    .any(|d| Dialect::parse(d.trim()) == Some(dialect))
        })
        .map(|(_, sql)| sql.trim().to_owned())
        .collect()
}

/// Median time of each query over `runs` validations, in microseconds, sorted.
fn per_query_medians(
    queries: &[String],
    dialect: Dialect,
    policy: &Policy,
    grants: &steward::policy::Grants,
) -> Vec<f64> {
    let runs = 301;
    let mut medians: Vec<f64> = queries
        .iter()
        .map(|q| {
            let mut t: Vec<f64> = (0..runs)
                .map(|_| {
                    let start = std::time::Instant::now();
                    let _ = black_box(validate(
                        black_box(q),
                        dialect,
                        policy,
                        grants,
                        Origin::AdHoc,
                    ));
                    start.elapsed().as_secs_f64() * 1e6
                })
                .collect();
            t.sort_by(f64::total_cmp);
            t[runs / 2]
        })
        .collect();
    medians.sort_by(f64::total_cmp);
    medians
}

fn bench(c: &mut Criterion) {
    let policy = Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap();
    let analyst = policy.grants(&Principal {
        user: "bench".into(),
        roles: vec!["analyst".into()],
        groups: Vec::new(),
    });
    let regional = policy.grants(&Principal {
        user: "bench".into(),
        roles: vec!["analyst_emea".into()],
        groups: Vec::new(),
    });
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        let queries = corpus(dialect);
        let m = per_query_medians(&queries, dialect, &policy, &analyst);
        let at = |q: f64| m[((m.len() - 1) as f64 * q).round() as usize];
        println!(
            "guard/{dialect}: per-query median over {} queries: p50 {:.1} µs, p90 {:.1} µs, max {:.1} µs",
            m.len(),
            at(0.5),
            at(0.9),
            at(1.0)
        );
        let mut group = c.benchmark_group(format!("guard/{dialect}"));
        group.throughput(criterion::Throughput::Elements(queries.len() as u64));
        group.bench_function(format!("corpus of {} queries", queries.len()), |b| {
            b.iter(|| {
                for q in &queries {
                    let _ = black_box(validate(
                        black_box(q),
                        dialect,
                        &policy,
                        &analyst,
                        Origin::AdHoc,
                    ));
                }
            })
        });
        group.bench_function("corpus with row filters", |b| {
            b.iter(|| {
                for q in &queries {
                    let _ = black_box(validate(
                        black_box(q),
                        dialect,
                        &policy,
                        &regional,
                        Origin::AdHoc,
                    ));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
