//! Criterion benchmark of the audit trail on embedded SQLite (a file in a
//! temporary directory) and on the machine's PostgreSQL
//! (`STEWARD_BENCH_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! a scratch database is created and dropped; skipped with a message when
//! unreachable): appending one question-sized event (the cost added to every
//! statement and every answer), 64 concurrent appends (group commit), and
//! verifying a chain of 10,000 events. Results: docs/benchmarks.md.

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

/// `n` appends at once, as `n` concurrent answers would make them.
async fn concurrent(log: &AuditLog, n: usize) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move { log.append(event()).await.unwrap() })
        })
        .collect();
    for t in tasks {
        black_box(t.await.unwrap());
    }
}

/// An audit log in a scratch PostgreSQL database, the admin pool and the
/// database's name; `None` (with a message) when PostgreSQL is unreachable.
async fn postgres(dir: &tempfile::TempDir) -> Option<(AuditLog, sqlx::PgPool, String)> {
    let url = std::env::var("STEWARD_BENCH_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let Ok(admin) = sqlx::PgPool::connect(&url).await else {
        eprintln!("PostgreSQL at {url} unreachable: its audit benchmarks are skipped");
        return None;
    };
    let name = format!("steward_bench_audit_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .ok()?;
    let mut target = url::Url::parse(&url).ok()?;
    target.set_path(&name);
    let db = SessionStore::connect(&SessionSettings {
        database: target.to_string(),
        ..SessionSettings::default()
    })
    .await
    .ok()?;
    let log = AuditLog::new(
        db,
        &AuditSettings {
            key_file: dir.path().join("audit.key"),
            ..AuditSettings::default()
        },
    )
    .ok()?;
    Some((log, admin, name))
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
    c.bench_function("audit 64 concurrent appends (sqlite file)", |b| {
        b.to_async(&rt).iter(|| concurrent(&log, 64));
    });
    if let Some((pg, admin, name)) = rt.block_on(postgres(&dir)) {
        c.bench_function("audit append (postgres)", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(pg.append(event()).await.unwrap()) });
        });
        c.bench_function("audit 64 concurrent appends (postgres)", |b| {
            b.to_async(&rt).iter(|| concurrent(&pg, 64));
        });
        drop(pg);
        rt.block_on(async {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        });
    }
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
