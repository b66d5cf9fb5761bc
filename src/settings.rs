//! Typed configuration: defaults → `steward.toml` → `STEWARD_*` environment
//! variables (nested keys with `__`, e.g. `STEWARD_AUTH__MODE`), via figment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Identity settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `dev`: users named by the `X-Steward-Dev-User` header (loopback only),
    /// plus sign-in and bearer tokens when `oidc` is set; `oidc`: only sign-in
    /// sessions and bearer tokens (any bind address).
    pub mode: String,
    /// Dev users and their roles.
    pub dev_users: BTreeMap<String, Vec<String>>,
    /// The OpenID Provider: web sign-in, bearer tokens, back-channel logout.
    #[serde(default)]
    pub oidc: Option<crate::auth::oidc::OidcSettings>,
}

/// Request limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Longest accepted question, in characters.
    pub max_question_chars: usize,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Time a client has to send a request's headers, in milliseconds.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Most HTTP connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most questions (chat and Metrics API) answered at once; more wait up
    /// to `queue_timeout_ms`, then get 503 with `Retry-After`.
    #[serde(default = "default_max_concurrent_answers")]
    pub max_concurrent_answers: usize,
    /// Most warehouse statements running at once, over all questions.
    #[serde(default = "default_max_concurrent_statements")]
    pub max_concurrent_statements: usize,
    /// How long a question waits for a turn, and a statement for a slot, in
    /// milliseconds, before the question is turned away with 503 and
    /// `Retry-After`.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Questions (chat and Metrics API queries) one user may ask per minute,
    /// sustained; 0 turns the limit off. Past it: 429 with `Retry-After`.
    #[serde(default = "default_questions_per_minute")]
    pub questions_per_minute: u32,
    /// Questions one user may ask in a burst above the sustained rate.
    #[serde(default = "default_question_burst")]
    pub question_burst: u32,
    /// On SIGTERM or Ctrl-C: seconds in-flight requests get to finish
    /// before the process exits anyway.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
}

fn default_max_concurrent_answers() -> usize {
    8
}

fn default_max_concurrent_statements() -> usize {
    8
}

fn default_queue_timeout_ms() -> u64 {
    3_000
}

fn default_questions_per_minute() -> u32 {
    120
}

fn default_question_burst() -> u32 {
    30
}

fn default_shutdown_grace_secs() -> u64 {
    25
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_max_connections() -> usize {
    512
}

/// All settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Listen address for `serve`.
    pub bind: String,
    /// Warehouse URL (`sqlite://PATH`).
    pub warehouse: String,
    /// Run every warehouse statement as the database role of the steward role
    /// the guard validated it under (`SET LOCAL ROLE steward_<role>`), so the
    /// database enforces the policy too. Needs `steward policy apply` first;
    /// PostgreSQL only.
    #[serde(default)]
    pub enforce_in_database: bool,
    /// Policy directory (schema.yaml, roles.yaml, semantic/).
    pub policies: PathBuf,
    /// Documentation corpus, indexed in memory at start-up when `index_dir`
    /// holds no index (`steward ingest` builds one there).
    pub docs: PathBuf,
    /// Where `steward ingest` keeps the docs index.
    pub index_dir: PathBuf,
    /// What "today" means; default: the demo warehouse's as-of date, else today.
    pub as_of: Option<NaiveDate>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Identity.
    pub auth: AuthSettings,
    /// Request limits.
    pub limits: Limits,
    /// Prompt template directory (templates missing there use the built-in ones).
    pub prompts: PathBuf,
    /// The language model (off unless `llm.url` is set).
    pub llm: crate::llm::LlmSettings,
    /// Documentation retrieval: embedding model, vector store, chunking.
    #[serde(default)]
    pub retrieval: crate::retrieval::RetrievalSettings,
    /// Sign-in sessions: database and timeouts.
    #[serde(default)]
    pub sessions: crate::session::SessionSettings,
    /// The Slack app (`/slack/events`, `/slack/commands`).
    #[serde(default)]
    pub slack: crate::slack::SlackSettings,
    /// The audit trail: retention, key, re-run rules.
    #[serde(default)]
    pub audit: crate::audit::AuditSettings,
    /// The result cache.
    #[serde(default)]
    pub cache: crate::warehouse::cache::CacheSettings,
    /// Where the semantic layer comes from (default: `policies/semantic/`).
    #[serde(default)]
    pub semantic: SemanticSettings,
    /// The review loop: the question sets an approval's regression run answers.
    #[serde(default)]
    pub review: crate::review::ReviewSettings,
    /// Subscriptions: how often the scheduler looks for due runs.
    #[serde(default)]
    pub subscriptions: SubscriptionSettings,
}

/// `[subscriptions]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionSettings {
    /// Seconds between looks for due runs (default 30; 0 turns this
    /// instance's scheduler off, e.g. for an instance that only serves).
    #[serde(default = "default_tick_secs")]
    pub tick_secs: u64,
    /// A recipient's roles are the identity provider's last word only while
    /// it is younger than this (seconds, default 7 days, as for Slack):
    /// older, the run sends a notice asking them to sign in, not data.
    #[serde(default = "default_identity_max_age_secs")]
    pub identity_max_age_secs: i64,
    /// Delivered runs are kept this many days, then purged (default 90).
    #[serde(default = "default_inbox_keep_days")]
    pub inbox_keep_days: i64,
    /// A Slack channel with more members than this is not posted to
    /// (default 50): each member's grants are checked at every run.
    #[serde(default = "default_max_channel_members")]
    pub max_channel_members: usize,
}

fn default_tick_secs() -> u64 {
    30
}

fn default_identity_max_age_secs() -> i64 {
    7 * 24 * 3600
}

fn default_inbox_keep_days() -> i64 {
    90
}

fn default_max_channel_members() -> usize {
    50
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        SubscriptionSettings {
            tick_secs: default_tick_secs(),
            identity_max_age_secs: default_identity_max_age_secs(),
            inbox_keep_days: default_inbox_keep_days(),
            max_channel_members: default_max_channel_members(),
        }
    }
}

/// `[semantic]`: read the semantic layer from a dbt project instead of the
/// policy directory's `semantic/`. At most one of the two may be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticSettings {
    /// A dbt project directory (holding `dbt_project.yml`): its semantic
    /// models, metrics and saved queries, read from the YAML as written.
    #[serde(default)]
    pub dbt_project: Option<PathBuf>,
    /// `target/semantic_manifest.json` as `dbt parse` writes it.
    #[serde(default)]
    pub manifest: Option<PathBuf>,
}

impl Settings {
    /// Where the semantic layer is read from: the dbt project or manifest
    /// when set, else `policies/semantic/`.
    ///
    /// # Errors
    /// Both `semantic.dbt_project` and `semantic.manifest` are set.
    pub fn semantic_source(&self) -> Result<crate::semantic::SemanticSource, String> {
        self.semantic_source_in(&self.policies)
    }

    /// [`Settings::semantic_source`] for the policy directory `dir` (a
    /// command's `--policies` override).
    ///
    /// # Errors
    /// Both `semantic.dbt_project` and `semantic.manifest` are set.
    pub fn semantic_source_in(
        &self,
        dir: &Path,
    ) -> Result<crate::semantic::SemanticSource, String> {
        use crate::semantic::SemanticSource;
        match (&self.semantic.dbt_project, &self.semantic.manifest) {
            (Some(_), Some(_)) => {
                Err("set semantic.dbt_project or semantic.manifest, not both".to_owned())
            }
            (Some(p), None) => Ok(SemanticSource::DbtProject(p.clone())),
            (None, Some(m)) => Ok(SemanticSource::Manifest(m.clone())),
            (None, None) => Ok(SemanticSource::Dir(dir.join("semantic"))),
        }
    }
}

/// Secrets read straight from the environment by their users, never
/// through settings (figment keys of `STEWARD_SNOWFLAKE_PASSWORD`,
/// `STEWARD_LLM_API_KEY`, `STEWARD_OIDC_CLIENT_SECRET`, `STEWARD_SLACK_SIGNING_SECRET`,
/// `STEWARD_SLACK_BOT_TOKEN`, `STEWARD_AUDIT_KEY`, `STEWARD_METRICS_TOKEN`). `STEWARD_TEST_*` variables belong to the test
/// suites and are skipped too; every other `STEWARD_*` variable is a setting,
/// so tools use other names (`LOCAL_LLM_CACHE`, `CI_LLM_PORT`).
/// `STEWARD_SKIP_WEB_BUILD` is read by `build.rs`, not a setting: a shell
/// that builds and then runs steward keeps it set.
const BUILD_ENV_KEY: &str = "skip_web_build";

const SECRET_ENV_KEYS: [&str; 7] = [
    "metrics_token",
    "snowflake_password",
    "llm_api_key",
    "oidc_client_secret",
    "slack_signing_secret",
    "slack_bot_token",
    "audit_key",
];

/// The default demo warehouse path.
pub const DEMO_WAREHOUSE: &str = ".steward/demo.sqlite";

impl Default for Settings {
    fn default() -> Self {
        let users = [
            ("alice", "analyst"),
            ("bob", "admin"),
            ("carol", "compliance"),
            ("dave", "viewer"),
            ("erin", "analyst_emea"),
            ("sam", "support"),
        ];
        Settings {
            bind: "127.0.0.1:8080".into(),
            warehouse: format!("sqlite://{DEMO_WAREHOUSE}"),
            enforce_in_database: false,
            policies: "policies".into(),
            docs: "ingest/docs".into(),
            index_dir: ".steward/index".into(),
            as_of: None,
            log_format: LogFormat::Text,
            auth: AuthSettings {
                mode: "dev".into(),
                dev_users: users
                    .iter()
                    .map(|(u, r)| ((*u).to_owned(), vec![(*r).to_owned()]))
                    .collect(),
                oidc: None,
            },
            limits: Limits {
                max_question_chars: 2000,
                max_body_bytes: 64 * 1024,
                header_read_timeout_ms: default_header_read_timeout_ms(),
                max_connections: default_max_connections(),
                max_concurrent_answers: default_max_concurrent_answers(),
                max_concurrent_statements: default_max_concurrent_statements(),
                queue_timeout_ms: default_queue_timeout_ms(),
                questions_per_minute: default_questions_per_minute(),
                question_burst: default_question_burst(),
                shutdown_grace_secs: default_shutdown_grace_secs(),
            },
            prompts: "prompts".into(),
            llm: crate::llm::LlmSettings::default(),
            retrieval: crate::retrieval::RetrievalSettings::default(),
            sessions: crate::session::SessionSettings::default(),
            slack: crate::slack::SlackSettings::default(),
            review: crate::review::ReviewSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            audit: crate::audit::AuditSettings::default(),
            cache: crate::warehouse::cache::CacheSettings::default(),
            semantic: SemanticSettings::default(),
        }
    }
}

impl Settings {
    /// Loads settings from defaults, then `config` (if it exists), then the
    /// environment.
    ///
    /// # Errors
    /// A message naming the offending key when a value has the wrong type or
    /// a key is unknown.
    pub fn load(config: &Path) -> Result<Settings, String> {
        let mut settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(Toml::file(config))
            .merge(
                Env::prefixed("STEWARD_")
                    .filter(|key| {
                        let key = key.as_str().to_ascii_lowercase();
                        !SECRET_ENV_KEYS.contains(&key.as_str())
                            && !key.starts_with("test_")
                            && key != BUILD_ENV_KEY
                    })
                    .split("__"),
            )
            .extract()
            .map_err(|e| format!("invalid configuration: {e}"))?;
        // Labelled sets named in a configuration file are read relative to
        // that file, so an approval works from any working directory.
        if let Some(dir) = config.parent().filter(|_| config.is_file()) {
            for set in &mut settings.review.eval_sets {
                if set.is_relative() && dir.join(&*set).is_file() {
                    *set = dir.join(&*set);
                }
            }
        }
        Ok(settings)
    }

    /// Whether the warehouse is the default demo one (generated on first run).
    pub fn demo_warehouse_path(&self) -> Option<PathBuf> {
        let path = self.warehouse.strip_prefix("sqlite://")?;
        (path == DEMO_WAREHOUSE).then(|| PathBuf::from(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_define_the_four_dev_users() {
        let s = Settings::default();
        assert_eq!(s.auth.dev_users["carol"], vec!["compliance"]);
        assert_eq!(s.auth.dev_users["dave"], vec!["viewer"]);
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Error, in the Jail closure signature
    fn test_and_secret_variables_are_not_settings_but_others_are() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("STEWARD_TEST_LLM_URL", "http://127.0.0.1:1/v1");
            jail.set_env("STEWARD_SKIP_WEB_BUILD", "1");
            jail.set_env("STEWARD_LLM_API_KEY", "sk-secret");
            jail.set_env("STEWARD_SNOWFLAKE_PASSWORD", "hunter2");
            jail.set_env("STEWARD_LLM__MODEL", "m");
            let s = Settings::load(Path::new("none.toml")).map_err(|e| e.to_string())?;
            assert_eq!(s.llm.model, "m");
            assert!(s.llm.url.is_none());
            Ok(())
        });
    }

    #[test]
    fn labelled_sets_named_in_a_file_are_read_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sets")).unwrap();
        std::fs::write(dir.path().join("sets/ours.jsonl"), "").unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(
            &path,
            "[review]\neval_sets = [\"sets/ours.jsonl\", \"elsewhere.jsonl\"]\n",
        )
        .unwrap();
        let s = Settings::load(&path).unwrap();
        assert_eq!(s.review.eval_sets[0], dir.path().join("sets/ours.jsonl"));
        // A name that is not beside the file stays as written (the working
        // directory's, or an error naming it at approval).
        assert_eq!(s.review.eval_sets[1], PathBuf::from("elsewhere.jsonl"));
    }

    #[test]
    fn file_overrides_defaults_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:9999\"\n").unwrap();
        assert_eq!(Settings::load(&path).unwrap().bind, "127.0.0.1:9999");
        std::fs::write(&path, "bnid = \"x\"\n").unwrap();
        let err = Settings::load(&path).unwrap_err();
        assert!(err.contains("bnid"), "{err}");
    }
}
