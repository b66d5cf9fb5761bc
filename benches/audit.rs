//! Criterion benchmark of the audit trail on embedded SQLite (a file in a
//! temporary directory): appending one question-sized event (the cost added
//! to every statement and every answer), and verifying a chain of 10,000
//! events. Results: docs/benchmarks.md.

use std::hint::black_box;

use criterion::Criterion;
use steward::audit::{AuditEvent, AuditLog, AuditSettings, Channel, EventKind};
use steward::session::{SessionSettings, SessionStore};

fn event() -> AuditEvent {
    let mut e = AuditEvent::new(
        EventKind::Question,
        "alice",
        &["analyst".to_owned()],
        Channel::Web,
    );
    e.question = Some("What was DAU last week vs the week before?".into());
    e.sql = Some("SELECT value AS dau FROM (SELECT AVG(fine.value) AS value FROM (SELECT period, COUNT(DISTINCT measure_value) AS value FROM events) AS fine) AS result LIMIT 1000".into());
    e.tables = vec!["events".into()];
    e.outcome = "answered".into();
    e
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        rt.block_on(async {
            let db = SessionStore::connect(&SessionSettings {
                database: format!("sqlite://{}", dir.path().join(name).display()),
                ..SessionSettings::default()
            })
            .await
            .unwrap();
            AuditLog::new(
                db,
                &AuditSettings {
                    key_file: dir.path().join("audit.key"),
                    ..AuditSettings::default()
                },
            )
            .unwrap()
        })
    };
    let log = open("append.db");
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("audit append (sqlite file)", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(log.append(event()).await.unwrap()) });
    });
    let log = open("verify.db");
    rt.block_on(async {
        for _ in 0..10_000 {
            log.append(event()).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("audit verify");
    group.sample_size(10);
    group.bench_function("10k events", |b| {
        b.to_async(&rt).iter(|| async {
            let report = log.verify().await.unwrap();
            assert!(report.problems.is_empty());
            black_box(report)
        });
    });
    group.finish();
    c.final_summary();
}
