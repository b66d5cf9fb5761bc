//! Test harness: one demo warehouse per test process, apps on port 0.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::NaiveDate;
use serde_json::Value;
use steward::settings::Settings;
use steward::startup::Application;

pub const AS_OF: &str = "2026-11-21";

/// A docs index directory of its own for one app or command (under
/// `target/test-index/`, emptied when the test process first asks), so
/// concurrent tests never share an index.
pub fn fresh_index_dir() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let base = BASE.get_or_init(|| {
        let base = root().join("target/test-index");
        let _ = std::fs::remove_dir_all(&base);
        base
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    base.join(format!("{}-{n}", std::process::id()))
}

/// The `steward` binary, run from the repository root with quiet logs, no
/// embedding model, a fresh docs index and a database of its own (so results
/// do not depend on what this machine has installed, ingested or recorded).
pub fn steward_command() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_steward"));
    let own = fresh_index_dir();
    cmd.current_dir(root())
        .env("RUST_LOG", "warn")
        .env("STEWARD_RETRIEVAL__MODEL", "off")
        .env("STEWARD_INDEX_DIR", fresh_index_dir())
        .env(
            "STEWARD_SESSIONS__DATABASE",
            format!("sqlite://{}", own.join("steward.db").display()),
        )
        .env("STEWARD_AUDIT__KEY_FILE", own.join("audit.key"));
    cmd
}

/// Runs `steward ARGS` (see [`steward_command`]) to completion.
pub fn steward(args: &[&str]) -> std::process::Output {
    steward_command().args(args).output().unwrap()
}

pub fn as_of() -> NaiveDate {
    NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap()
}

pub fn root() -> PathBuf {
    // Read at run time (cargo sets it for test processes): a test binary
    // reused from a shared target directory may have been compiled in
    // another checkout, whose path `env!` would have baked in.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// A demo warehouse generated once per test process (scale 0.1).
pub fn demo_db() -> &'static Path {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("steward-test-{}", std::process::id()));
        let path = dir.join("demo.sqlite");
        let p = path.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(steward::demo::generate(&p, as_of(), 0.1))
                .unwrap();
        })
        .join()
        .unwrap();
        path
    })
}

pub fn demo_settings() -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        warehouse: format!("sqlite://{}", demo_db().display()),
        policies: root().join("policies"),
        docs: root().join("ingest/docs"),
        index_dir: fresh_index_dir(),
        as_of: Some(as_of()),
        // BM25 only, so answers do not depend on whether this machine has the
        // embedding model; tests/api/retrieval.rs turns it on where it is.
        retrieval: steward::retrieval::RetrievalSettings {
            model: "off".into(),
            ..Default::default()
        },
        sessions: steward::session::SessionSettings {
            database: format!(
                "sqlite://{}",
                fresh_index_dir().join("sessions.db").display()
            ),
            ..Default::default()
        },
        audit: steward::audit::AuditSettings {
            key_file: fresh_index_dir().join("audit.key"),
            ..Default::default()
        },
        // Tests ask many questions as one user quickly; tests/api/load.rs
        // turns the per-user limit on where it is what is tested.
        limits: steward::settings::Limits {
            questions_per_minute: 0,
            ..Settings::default().limits
        },
        ..Settings::default()
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
}

/// Everything the test process logs through `tracing`, for leak checks.
pub static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// The whole suite's log, scanned for personal data by `tests/log_scan.rs`
/// (which cargo runs after this binary). Its first line names the demo
/// warehouse the suite generated.
pub fn suite_log_path() -> PathBuf {
    root().join("target/test-logs/api.log")
}

static SUITE_LOG: std::sync::LazyLock<Option<std::sync::Mutex<std::fs::File>>> =
    std::sync::LazyLock::new(|| {
        let path = suite_log_path();
        std::fs::create_dir_all(path.parent()?).ok()?;
        let mut f = std::fs::File::create(&path).ok()?;
        use std::io::Write;
        writeln!(f, "# demo={}", demo_db().display()).ok()?;
        Some(std::sync::Mutex::new(f))
    });

#[derive(Clone, Copy)]
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        if let Some(f) = SUITE_LOG.as_ref() {
            let _ = f.lock().unwrap_or_else(|e| e.into_inner()).write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a global subscriber writing every log line, at trace
/// level for steward, through steward's redacting writer (as `serve` does)
/// into [`LOGS`] and the suite log.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,steward=trace"))
            .with_writer(steward::redact::RedactingWriter(|| Capture))
            .with_ansi(false)
            .try_init();
    });
}

pub async fn spawn(settings: Settings) -> TestApp {
    capture_logs();
    let app = Application::build(&settings).await.expect("app builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
    }
}

pub async fn spawn_demo() -> TestApp {
    spawn(demo_settings()).await
}

impl TestApp {
    /// Asks as `user`; returns (status, body).
    pub async fn ask(&self, user: &str, question: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/api/chat", self.base))
            .header("X-Steward-Dev-User", user)
            .json(&serde_json::json!({ "question": question }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Asks as `user` within a conversation.
    pub async fn ask_in(&self, user: &str, conversation: &str, question: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/api/chat", self.base))
            .header("X-Steward-Dev-User", user)
            .json(&serde_json::json!({ "question": question, "conversation_id": conversation }))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a JSON body as `user` (none: unauthenticated); returns (status, body).
    pub async fn post(&self, user: Option<&str>, path: &str, body: &Value) -> (u16, Value) {
        let mut req = self.client.post(format!("{}{path}", self.base)).json(body);
        if let Some(u) = user {
            req = req.header("X-Steward-Dev-User", u);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// DELETEs `path` as `user`; returns the status.
    pub async fn delete(&self, user: Option<&str>, path: &str) -> u16 {
        let mut req = self.client.delete(format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.header("X-Steward-Dev-User", u);
        }
        req.send().await.unwrap().status().as_u16()
    }

    pub async fn get(&self, user: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{path}", self.base));
        if let Some(u) = user {
            req = req.header("X-Steward-Dev-User", u);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Runs hand-written SQL directly on a SQLite file (test oracle only).
pub async fn oracle(db: &Path, sql: &'static str) -> Vec<f64> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let row = sqlx::query(sql).fetch_one(&mut conn).await.unwrap();
    (0..row.len())
        .map(|i| row.try_get::<f64, _>(i).unwrap())
        .collect()
}

/// Runs `f` with the URL of a new, empty PostgreSQL database named
/// `{prefix}_{pid}`, dropped afterwards even when `f` panics. Panics when
/// PostgreSQL is not running (`.ci/run` starts it; `STEWARD_TEST_PG_URL`
/// overrides the server).
pub async fn with_postgres_database<F, Fut>(prefix: &str, f: F)
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use futures_util::FutureExt;
    use sqlx::Connection;
    let admin = std::env::var("STEWARD_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL must be running for this test (.ci/run starts it): {e}")
        });
    let db = format!("{prefix}_{}", std::process::id());
    let run = |sql: String| sqlx::raw_sql(sqlx::AssertSqlSafe(sql));
    run(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    run(format!("CREATE DATABASE {db}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&db);
    let outcome = std::panic::AssertUnwindSafe(f(url.to_string()))
        .catch_unwind()
        .await;
    run(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A session for `user` with `roles`, whose sign-in was `age` seconds ago;
/// returns (cookie header, CSRF token).
pub async fn session(
    db: &steward::session::SessionStore,
    user: &str,
    roles: &[&str],
    age: i64,
) -> (String, String) {
    let now = chrono::Utc::now().timestamp();
    let issued = db
        .create(
            steward::session::NewSession {
                user: user.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                auth_time: Some(now - age),
                ..steward::session::NewSession::default()
            },
            now,
        )
        .await
        .unwrap();
    (format!("steward_session={}", issued.token), issued.csrf)
}
