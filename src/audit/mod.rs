//! The audit trail: one event per question and per executed statement (and
//! per admin re-run and retention purge), append-only and hash-chained, in
//! steward's database (`sessions.database`: SQLite embedded, PostgreSQL in
//! production; migration `0004_audit.sql`).
//!
//! **Chain.** Each row stores its event as JSON (`body`) and
//! `hash = hex(HMAC-SHA256(key, prev_hash ‖ "\n" ‖ seq ‖ "\n" ‖ body))` (RFC 2104),
//! with `prev_hash` the previous row's hash (64 zeros before the first). The
//! key lives outside the database (`STEWARD_AUDIT_KEY`, or `audit.key_file`,
//! created with mode 0600 when missing), so someone who can write the
//! database but not read the key cannot rewrite history undetected.
//! [`AuditLog::verify`] recomputes the chain and checks the filter columns
//! against the body.
//!
//! **Appends are serialized** across instances: a PostgreSQL transaction
//! advisory lock, or SQLite's `BEGIN IMMEDIATE` write lock.
//!
//! **Fail closed.** A statement's event is written before it runs
//! ([`scope`]); a question's event before its answer is returned. If either
//! write fails, the statement does not run or the answer is withheld.
//!
//! **Retention.** [`AuditLog::purge`] deletes events older than
//! `audit.retention_days` (a prefix of the chain) and appends a `purge` event
//! naming the last deleted event's seq and hash (the anchor the first
//! remaining event must chain from).

pub mod event;
pub mod scope;
mod verify;

use std::path::PathBuf;
use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;
use sqlx::any::AnyRow;

pub use event::{AuditEvent, Cause, Channel, Decisions, EventKind, Filter, StatementOutcome};

use crate::session::SessionStore;

/// `[audit]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Events older than this are purged (days).
    pub retention_days: i64,
    /// How often a running server purges (seconds).
    pub purge_every_secs: u64,
    /// The chain's HMAC key file, used when `STEWARD_AUDIT_KEY` is unset
    /// (created, 32 random bytes in hex, mode 0600, when missing).
    pub key_file: PathBuf,
    /// An admin re-run needs a sign-in at most this old (seconds).
    pub rerun_login_max_age_secs: i64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            retention_days: 30,
            purge_every_secs: 3600,
            key_file: ".steward/audit.key".into(),
            rerun_login_max_age_secs: 600,
        }
    }
}

/// Audit failures. Messages carry no event contents.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The database failed.
    #[error("audit store: {0}")]
    Database(#[from] sqlx::Error),
    /// The key could not be read or created.
    #[error("audit key: {0}")]
    Key(String),
    /// A stored event could not be read back.
    #[error("audit event {0} is unreadable")]
    Corrupt(i64),
}

/// The chain value before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A random event id (128 bits, hex).
pub fn new_id() -> String {
    hex::encode(rand::rng().random::<[u8; 16]>())
}

/// Whether `id` has the shape of a [`new_id`]: 32 hex digits (checked
/// before an id from a request reaches a query).
pub fn is_id(id: &str) -> bool {
    id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// The audit trail.
#[derive(Clone)]
pub struct AuditLog {
    db: SessionStore,
    key: Arc<SecretBox<Vec<u8>>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Events waiting for the next group commit, each with who waits for it.
    pending: Arc<std::sync::Mutex<Vec<Waiter>>>,
    /// Group commits made by this handle (for tests and benchmarks).
    commits: Arc<std::sync::atomic::AtomicU64>,
    settings: AuditSettings,
}

/// An event waiting to be appended, and where its outcome goes.
type Waiter = (
    AuditEvent,
    tokio::sync::oneshot::Sender<Result<AuditEvent, AuditError>>,
);

/// Most events one group commit writes.
const MAX_BATCH: usize = 256;

/// What [`AuditLog::verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// First and last seq.
    pub first_seq: Option<i64>,
    /// Last seq.
    pub last_seq: Option<i64>,
    /// The newest hash (record it elsewhere to detect a rewritten tail).
    pub head: String,
    /// What is wrong, first problems first (empty: intact).
    pub problems: Vec<String>,
}

fn load_key(settings: &AuditSettings) -> Result<Vec<u8>, AuditError> {
    if let Ok(k) = std::env::var("STEWARD_AUDIT_KEY")
        && !k.trim().is_empty()
    {
        return Ok(k.trim().as_bytes().to_vec());
    }
    let path = &settings.key_file;
    match std::fs::read_to_string(path) {
        Ok(k) if !k.trim().is_empty() => return Ok(k.trim().as_bytes().to_vec()),
        Ok(_) => return Err(AuditError::Key(format!("{} is empty", path.display()))),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(AuditError::Key(format!("{}: {e}", path.display())));
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AuditError::Key(e.to_string()))?;
    }
    let key = hex::encode(rand::rng().random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = options.open(path).and_then(|mut f| {
        use std::io::Write;
        f.write_all(key.as_bytes())
    });
    match write {
        Ok(()) => Ok(key.into_bytes()),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key(settings),
        Err(e) => Err(AuditError::Key(format!("{}: {e}", path.display()))),
    }
}

pub(crate) fn chain_hash(key: &[u8], prev: &str, seq: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(prev.as_bytes());
    mac.update(b"\n");
    mac.update(seq.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn tables_column(tables: &[String]) -> String {
    format!(",{},", tables.join(","))
}

pub(crate) const COLUMNS: &str =
    "seq, id, at_ms, kind, parent_id, principal, channel, outcome, tables, body, prev_hash, hash";

impl AuditLog {
    /// The trail in `db` (migrated by [`SessionStore::connect`]).
    ///
    /// # Errors
    /// [`AuditError::Key`] when the key can be neither read nor created.
    pub fn new(db: SessionStore, settings: &AuditSettings) -> Result<AuditLog, AuditError> {
        Ok(AuditLog {
            key: Arc::new(SecretBox::new(Box::new(load_key(settings)?))),
            db,
            lock: Arc::default(),
            pending: Arc::default(),
            commits: Arc::default(),
            settings: settings.clone(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &AuditSettings {
        &self.settings
    }

    /// The database the trail lives in.
    pub fn database(&self) -> &SessionStore {
        &self.db
    }

    /// Appends `event` at the end of the chain, setting its seq and time,
    /// and returns once it is committed.
    ///
    /// Appends are group-committed (as databases do with their logs): an
    /// event joins a queue; whoever holds the writer's turn takes every
    /// queued event (up to 256) and writes them, chained one after another, in one
    /// transaction under the chain's lock, then hands each waiter its
    /// stored event. Concurrent answers thus share one transaction and one
    /// flush, while each caller still returns only after its own event is
    /// committed (so a statement still runs only after its event is stored).
    ///
    /// # Errors
    /// [`AuditError::Database`]: the event is not stored (nor is any event
    /// of its batch), and the caller must not go on as if it were.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditEvent, AuditError> {
        use tokio::sync::oneshot::error::TryRecvError;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.queue().push((event, tx));
        let _turn = self.lock.lock().await;
        loop {
            match rx.try_recv() {
                Ok(done) => return done,
                Err(TryRecvError::Closed) => return Err(lost()),
                Err(TryRecvError::Empty) => {}
            }
            let batch: Vec<Waiter> = {
                let mut queue = self.queue();
                let n = queue.len().min(MAX_BATCH);
                queue.drain(..n).collect()
            };
            if batch.is_empty() {
                return Err(lost());
            }
            let (events, waiters): (Vec<AuditEvent>, Vec<_>) = batch.into_iter().unzip();
            match self.write_batch(events).await {
                Ok(stored) => {
                    for (event, waiter) in stored.into_iter().zip(waiters) {
                        crate::prometheus::audit_event(Some(event.kind.as_str()));
                        let _ = waiter.send(Ok(event));
                    }
                }
                Err(e) => {
                    let reason = e.to_string();
                    for waiter in waiters {
                        crate::prometheus::audit_event(None);
                        let failed = sqlx::Error::Protocol(reason.clone());
                        let _ = waiter.send(Err(AuditError::Database(failed)));
                    }
                }
            }
        }
    }

    /// Transactions that appended events through this handle so far; below
    /// the number of events when concurrent appends were grouped.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes `events` at the end of the chain in one transaction.
    async fn write_batch(
        &self,
        mut events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditEvent>, AuditError> {
        let mut conn = self.db.pool().acquire().await?;
        self.begin_exclusive(&mut conn).await?;
        let result = async {
            let (mut seq, mut prev) = next_link(&mut conn, None).await?;
            let now = chrono::Utc::now().timestamp_millis();
            for event in &mut events {
                event.seq = seq;
                event.at_ms = now;
                prev = self.insert(&mut conn, event, &prev).await?;
                seq += 1;
            }
            Ok::<_, sqlx::Error>(())
        }
        .await;
        let ended = end(&mut conn, result.is_ok()).await;
        result?;
        ended?;
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(events)
    }

    /// Appends the event of a governed action that is not a question:
    /// `kind` ([`EventKind::Board`], [`EventKind::Subscription`],
    /// [`EventKind::Feedback`]) with `outcome` (`created`, `deleted`,
    /// `pinned`, …) by `principal` through `channel`, on the object `subject`
    /// (its id). A creation event takes the object's id as its own, so the
    /// runs the object causes later (deliveries, a pin's runs) name it as
    /// their parent; any other action names it as parent. `detail` holds ids
    /// and names only, redacted.
    ///
    /// # Errors
    /// As [`AuditLog::append`]: the caller must not report the action done.
    pub async fn record_action(
        &self,
        principal: &crate::policy::Principal,
        channel: Channel,
        kind: EventKind,
        outcome: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<AuditEvent, AuditError> {
        let mut event = AuditEvent::new(kind, &principal.user, &principal.roles, channel);
        if outcome == "created" {
            event.id = subject.to_owned();
        } else {
            event.parent = Some(subject.to_owned());
        }
        event.outcome = outcome.to_owned();
        let detail = serde_json::to_string(&detail).unwrap_or_default();
        event.detail = serde_json::from_str(&crate::redact::redact(&detail)).ok();
        self.append(event).await
    }

    /// Starts the one write transaction on the chain allowed at a time, on
    /// every instance: a transaction-scoped advisory lock on PostgreSQL,
    /// SQLite's write lock (`BEGIN IMMEDIATE`) otherwise.
    async fn begin_exclusive(&self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        if self.db.is_postgres() {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
            sqlx::query("SELECT pg_advisory_xact_lock(7415770)")
                .execute(&mut *conn)
                .await?;
        } else {
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn insert(
        &self,
        conn: &mut sqlx::AnyConnection,
        event: &AuditEvent,
        prev: &str,
    ) -> Result<String, sqlx::Error> {
        let body = serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let hash = chain_hash(self.key.expose_secret(), prev, event.seq, &body);
        sqlx::query(self.db.sql(&format!(
            "INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(event.seq)
        .bind(&event.id)
        .bind(event.at_ms)
        .bind(event.kind.as_str())
        .bind(event.parent.clone())
        .bind(&event.principal)
        .bind(event.channel.as_str())
        .bind(&event.outcome)
        .bind(tables_column(&event.tables))
        .bind(body)
        .bind(prev)
        .bind(&hash)
        .execute(conn)
        .await?;
        Ok(hash)
    }

    fn event_of(row: &AnyRow) -> Result<AuditEvent, AuditError> {
        let seq: i64 = row.try_get("seq")?;
        let body: String = row.try_get("body")?;
        serde_json::from_str(&body).map_err(|_| AuditError::Corrupt(seq))
    }

    /// Events matching `filter`, newest first.
    ///
    /// # Errors
    /// Database failures, unreadable events.
    pub async fn list(&self, filter: &Filter) -> Result<Vec<AuditEvent>, AuditError> {
        enum Arg {
            Text(String),
            Int(i64),
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events WHERE 1 = 1");
        let mut args = Vec::new();
        let mut add = |clause: &str, arg: Arg| {
            args.push(arg);
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        for (value, clause) in [
            (&filter.user, " AND principal = ?"),
            (&filter.outcome, " AND outcome = ?"),
            (&filter.kind, " AND kind = ?"),
        ] {
            if let Some(v) = value {
                add(clause, Arg::Text(v.clone()));
            }
        }
        if let Some(t) = &filter.table {
            let t = t.replace(['%', ','], "");
            add(" AND tables LIKE ?", Arg::Text(format!("%,{t},%")));
        }
        if let Some(v) = filter.since_ms {
            add(" AND at_ms >= ?", Arg::Int(v));
        }
        if let Some(v) = filter.until_ms {
            add(" AND at_ms < ?", Arg::Int(v));
        }
        let limit = filter.limit.unwrap_or(100).clamp(1, 1000);
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}"));
        let sql = self.db.sql(&sql);
        let mut q = sqlx::query(sql);
        for arg in args {
            q = match arg {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(self.db.pool()).await?;
        rows.iter().map(Self::event_of).collect()
    }

    /// One event by id.
    ///
    /// # Errors
    /// Database failures, an unreadable event.
    pub async fn get(&self, id: &str) -> Result<Option<AuditEvent>, AuditError> {
        let row = sqlx::query(
            self.db
                .sql(&format!("SELECT {COLUMNS} FROM audit_events WHERE id = $1")),
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(Self::event_of).transpose()
    }

    /// Events whose parent is `id` (a question's statements, a statement's re-runs).
    ///
    /// # Errors
    /// Database failures, unreadable events.
    pub async fn children(&self, id: &str) -> Result<Vec<AuditEvent>, AuditError> {
        let rows = sqlx::query(self.db.sql(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE parent_id = $1 ORDER BY seq"
        )))
        .bind(id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(Self::event_of).collect()
    }

    /// Deletes events older than the retention period at `now_ms` and appends
    /// a `purge` event recording how many and the chain anchor. Returns it.
    ///
    /// # Errors
    /// Database failures (nothing is deleted then).
    pub async fn purge(&self, now_ms: i64) -> Result<AuditEvent, AuditError> {
        let _one_at_a_time = self.lock.lock().await;
        let cutoff = now_ms - self.settings.retention_days.max(0) * 86_400_000;
        let mut conn = self.db.pool().acquire().await?;
        self.begin_exclusive(&mut conn).await?;
        let result: Result<AuditEvent, AuditError> = async {
            let anchor = sqlx::query(self.db.sql(
                "SELECT seq, hash FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events WHERE at_ms < $1)",
            ))
            .bind(cutoff)
            .fetch_optional(&mut *conn)
            .await?
            .map(|row| Ok::<_, sqlx::Error>((row.try_get::<i64, _>("seq")?, row.try_get::<String, _>("hash")?)))
            .transpose()?;
            let mut purged = 0;
            let mut detail = serde_json::json!({ "before_ms": cutoff });
            if let Some((seq, hash)) = &anchor {
                purged = sqlx::query(self.db.sql("DELETE FROM audit_events WHERE seq <= $1"))
                    .bind(*seq)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                detail["anchor_seq"] = (*seq).into();
                detail["anchor_hash"] = hash.clone().into();
            }
            detail["purged"] = purged.into();
            let (seq, prev) = next_link(&mut conn, anchor).await?;
            let mut event = AuditEvent::new(EventKind::Purge, "steward", &[], Channel::Internal);
            event.outcome = "purged".into();
            event.rows = Some(purged);
            event.detail = Some(detail);
            event.seq = seq;
            event.at_ms = chrono::Utc::now().timestamp_millis();
            self.insert(&mut conn, &event, &prev).await?;
            Ok(event)
        }
        .await;
        let ended = end(&mut conn, result.is_ok()).await;
        let event = result?;
        ended?;
        crate::prometheus::audit_event(Some(event.kind.as_str()));
        Ok(event)
    }
}

/// The seq and previous hash for the next event: after the newest stored
/// event, else after `deleted` (the last event a purge just removed), else
/// the start of the chain.
async fn next_link(
    conn: &mut sqlx::AnyConnection,
    deleted: Option<(i64, String)>,
) -> Result<(i64, String), sqlx::Error> {
    let last = sqlx::query("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match (last, deleted) {
        (Some(row), _) => (row.try_get::<i64, _>("seq")? + 1, row.try_get("hash")?),
        (None, Some((seq, hash))) => (seq + 1, hash),
        (None, None) => (1, GENESIS.to_owned()),
    })
}

/// The error of an append whose writer went away before storing it (its
/// task was cancelled mid-commit): the event may not be stored.
fn lost() -> AuditError {
    AuditError::Database(sqlx::Error::Protocol(
        "the audit append was interrupted".into(),
    ))
}

/// Commits (`ok`) or rolls back the transaction.
async fn end(conn: &mut sqlx::AnyConnection, ok: bool) -> Result<(), sqlx::Error> {
    let end = if ok { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end).execute(conn).await.map(|_| ())
}
