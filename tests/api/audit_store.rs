//! The audit store against SQLite and the real PostgreSQL: appends chain,
//! every kind of tampering is detected, retention purges keep the chain
//! verifiable, filters select what they name.

use steward::audit::{AuditEvent, AuditLog, AuditSettings, Channel, EventKind, Filter};
use steward::session::{SessionSettings, SessionStore};

use crate::helpers::{fresh_index_dir, with_postgres_database};

fn settings(retention_days: i64) -> AuditSettings {
    let dir = fresh_index_dir();
    AuditSettings {
        retention_days,
        key_file: dir.join("audit.key"),
        ..AuditSettings::default()
    }
}

fn event(user: &str, kind: EventKind, table: &str, outcome: &str) -> AuditEvent {
    let mut e = AuditEvent::new(kind, user, &["analyst".to_owned()], Channel::Api);
    e.tables = vec![table.to_owned()];
    e.outcome = outcome.to_owned();
    e.sql = Some(format!("SELECT 1 FROM {table}"));
    e
}

async fn raw(store: &SessionStore, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(store.pool())
        .await
        .unwrap();
}

async fn problems(log: &AuditLog) -> Vec<String> {
    log.verify().await.unwrap().problems
}

/// What every audit database must do.
async fn audit_contract(db: SessionStore) {
    let log = AuditLog::new(db.clone(), &settings(30)).unwrap();
    let a = log
        .append(event("alice", EventKind::Question, "events", "answered"))
        .await
        .unwrap();
    let b = log
        .append(event("bob", EventKind::Statement, "customers", "started"))
        .await
        .unwrap();
    let c = log
        .append(event("alice", EventKind::Question, "invoices", "refused"))
        .await
        .unwrap();
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    let report = log.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!((report.events, report.last_seq), (3, Some(3)));

    // Filters.
    let by = |f: Filter| {
        let log = log.clone();
        async move {
            log.list(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(by(Filter::default()).await, vec![3, 2, 1], "newest first");
    assert_eq!(
        by(Filter {
            user: Some("alice".into()),
            ..Filter::default()
        })
        .await,
        vec![3, 1]
    );
    assert_eq!(
        by(Filter {
            table: Some("customers".into()),
            ..Filter::default()
        })
        .await,
        vec![2]
    );
    assert_eq!(
        by(Filter {
            outcome: Some("refused".into()),
            ..Filter::default()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        by(Filter {
            kind: Some("statement".into()),
            ..Filter::default()
        })
        .await,
        vec![2]
    );
    assert_eq!(
        by(Filter {
            since_ms: Some(b.at_ms),
            until_ms: Some(c.at_ms + 1),
            limit: Some(1),
            ..Filter::default()
        })
        .await,
        vec![3]
    );
    assert_eq!(
        by(Filter {
            table: Some("%".into()),
            ..Filter::default()
        })
        .await,
        Vec::<i64>::new(),
        "no wildcards"
    );
    assert_eq!(log.get(&b.id).await.unwrap().unwrap(), b);

    // Editing the contents, editing a filter column, deleting a row: all detected.
    raw(
        &db,
        "UPDATE audit_events SET body = REPLACE(body, 'bob', 'eve') WHERE seq = 2",
    )
    .await;
    assert!(
        problems(&log)
            .await
            .iter()
            .any(|p| p.contains("event 2: hash")),
        "{:?}",
        problems(&log).await
    );
    raw(
        &db,
        "UPDATE audit_events SET body = REPLACE(body, 'eve', 'bob') WHERE seq = 2",
    )
    .await;
    assert!(problems(&log).await.is_empty());
    raw(
        &db,
        "UPDATE audit_events SET principal = 'eve' WHERE seq = 2",
    )
    .await;
    assert!(
        problems(&log)
            .await
            .iter()
            .any(|p| p.contains("columns differ"))
    );
    raw(
        &db,
        "UPDATE audit_events SET principal = 'bob' WHERE seq = 2",
    )
    .await;
    let d = log
        .append(event("carol", EventKind::Question, "events", "answered"))
        .await
        .unwrap();
    raw(&db, "DELETE FROM audit_events WHERE seq = 3").await;
    assert!(
        problems(&log).await.iter().any(|p| p.contains("missing")),
        "{:?}",
        problems(&log).await
    );
    // A forged replacement without the key does not chain.
    raw(&db, &format!(
        "INSERT INTO audit_events SELECT 3, 'forged', at_ms, kind, parent_id, principal, channel, outcome, tables, REPLACE(body, '\"seq\":2', '\"seq\":3'), hash, '{}' FROM audit_events WHERE seq = 2",
        "ab".repeat(32)
    )).await;
    assert!(!problems(&log).await.is_empty());
    raw(&db, "DELETE FROM audit_events WHERE seq >= 1").await;

    // Retention: a purge removes a prefix and records the anchor; the chain still verifies.
    let log = AuditLog::new(db.clone(), &settings(0)).unwrap();
    assert_eq!(d.seq, 4);
    for i in 0..3 {
        log.append(event(
            "alice",
            EventKind::Question,
            "events",
            &format!("o{i}"),
        ))
        .await
        .unwrap();
    }
    let now = chrono::Utc::now().timestamp_millis() + 1;
    let purge = log.purge(now).await.unwrap();
    assert_eq!(purge.kind, EventKind::Purge);
    assert_eq!(purge.rows, Some(3));
    let after = log.list(&Filter::default()).await.unwrap();
    assert_eq!(after.len(), 1, "only the purge event remains");
    let report = log.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let e = log
        .append(event("alice", EventKind::Question, "events", "answered"))
        .await
        .unwrap();
    assert!(problems(&log).await.is_empty());
    // Deleting the purge record leaves the oldest remaining event unanchored.
    raw(
        &db,
        &format!("DELETE FROM audit_events WHERE seq < {}", e.seq),
    )
    .await;
    assert!(
        problems(&log)
            .await
            .iter()
            .any(|p| p.contains("without a purge record"))
    );

    // Another key cannot verify (or extend) this chain.
    let other = AuditLog::new(db.clone(), &settings(30)).unwrap();
    assert!(!problems(&other).await.is_empty());
}

fn session_settings(database: String) -> SessionSettings {
    SessionSettings {
        database,
        ..SessionSettings::default()
    }
}

#[tokio::test]
async fn sqlite_audit_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let db = SessionStore::connect(&session_settings(url)).await.unwrap();
    audit_contract(db).await;
}

#[tokio::test]
async fn postgres_audit_store_meets_the_contract() {
    with_postgres_database("steward_audit", |url| async move {
        let store = SessionStore::connect(&session_settings(url)).await.unwrap();
        audit_contract(store).await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_appends_from_two_logs_keep_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let s = settings(30);
    // Two handles on separate pools, as two processes would have.
    let one = AuditLog::new(
        SessionStore::connect(&session_settings(url.clone()))
            .await
            .unwrap(),
        &s,
    )
    .unwrap();
    let two = AuditLog::new(
        SessionStore::connect(&session_settings(url)).await.unwrap(),
        &s,
    )
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let log = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            log.append(event("alice", EventKind::Question, "events", "answered"))
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let report = one.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, 20);
}

/// Many answers appending at once through one handle: every append returns
/// its own committed event, the chain stays whole, and they share
/// transactions (group commit).
async fn group_commit_contract(log: AuditLog) {
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut e = event("alice", EventKind::Statement, "events", "started");
                e.purpose = Some(format!("statement {i}"));
                log.append(e).await
            })
        })
        .collect();
    let mut seqs = std::collections::BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let stored = t.await.unwrap().unwrap();
        assert_eq!(
            stored.purpose.as_deref(),
            Some(format!("statement {i}").as_str())
        );
        assert!(seqs.insert(stored.seq), "seq {} given twice", stored.seq);
    }
    assert_eq!(seqs.len(), 200);
    assert_eq!(
        *seqs.last().unwrap() - *seqs.first().unwrap(),
        199,
        "contiguous"
    );
    let report = log.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, 200);
    assert!(
        log.commits() < 200,
        "200 concurrent appends took {} transactions",
        log.commits()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_group_committed_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = SessionStore::connect(&session_settings(url)).await.unwrap();
    group_commit_contract(AuditLog::new(store, &settings(30)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_are_group_committed_on_postgres() {
    with_postgres_database("steward_group_commit", |url| async move {
        let store = SessionStore::connect(&session_settings(url)).await.unwrap();
        group_commit_contract(AuditLog::new(store, &settings(30)).unwrap()).await;
    })
    .await;
}

#[tokio::test]
async fn a_lost_or_replaced_key_is_refused_not_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let db = SessionStore::connect(&session_settings(url)).await.unwrap();
    let s = settings(30);
    // An empty trail accepts any key; the first one is generated.
    let log = AuditLog::new(db.clone(), &s).unwrap();
    log.check_key().await.unwrap();
    log.append(event("alice", EventKind::Question, "events", "answered"))
        .await
        .unwrap();
    AuditLog::new(db.clone(), &s)
        .unwrap()
        .check_key()
        .await
        .unwrap();
    // The key file is lost: a fresh one would be generated and would break the chain.
    std::fs::remove_file(&s.key_file).unwrap();
    let err = AuditLog::new(db.clone(), &s)
        .unwrap()
        .check_key()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // Replaced by another key: the same.
    std::fs::write(&s.key_file, "another-key").unwrap();
    assert!(AuditLog::new(db, &s).unwrap().check_key().await.is_err());
}
