//! Command-line interface (clap): `serve`, `ask`, `demo init`, `ingest`.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::llm::{LlmPath, PlanMode, Route};
use crate::settings::Settings;

/// steward: answers questions about company data, only from data the asker may see.
#[derive(Debug, Parser)]
#[command(name = "steward", version)]
pub struct Cli {
    /// Configuration file (TOML); missing is fine.
    #[arg(long, global = true, default_value = "steward.toml")]
    pub config: PathBuf,
    /// More logging on stderr: one-shot commands log warnings only, `-v`
    /// adds info, `-vv` debug (`serve` logs info; `RUST_LOG` overrides both).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by commands that answer questions.
#[derive(Debug, Args)]
pub struct Sources {
    /// Warehouse URL, e.g. sqlite://path/to/db.sqlite.
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Policy directory (schema.yaml, roles.yaml, semantic/).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// What "today" means, YYYY-MM-DD.
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// Read the semantic layer from this dbt project (its YAML as written)
    /// instead of the policy directory's semantic/.
    #[arg(long, value_name = "PATH", conflicts_with = "dbt_manifest")]
    pub dbt_project: Option<PathBuf>,
    /// Read the semantic layer from this target/semantic_manifest.json.
    #[arg(long, value_name = "PATH")]
    pub dbt_manifest: Option<PathBuf>,
    /// OpenAI-compatible API base URL, e.g. http://127.0.0.1:8091/v1
    /// (the key, if any, comes from STEWARD_LLM_API_KEY).
    #[arg(long, value_name = "URL")]
    pub llm: Option<String>,
    /// Model name sent to the API.
    #[arg(long, value_name = "NAME")]
    pub llm_model: Option<String>,
    /// How the model plans: json (schema-constrained plan) or tools (native tool calls).
    #[arg(long, value_name = "MODE", value_parser = ["json", "tools"])]
    pub llm_mode: Option<String>,
    /// Which questions go to the model: fallback (what the planner cannot answer) or always.
    #[arg(long, value_name = "ROUTE", value_parser = ["fallback", "always"])]
    pub llm_route: Option<String>,
    /// How the model answers questions needing SQL: sql (text-to-SQL with
    /// candidates, for small models) or plan (tool plans).
    #[arg(long, value_name = "PATH", value_parser = ["sql", "plan"])]
    pub llm_path: Option<String>,
}

impl Sources {
    /// Applies the flags over loaded settings.
    pub fn apply(&self, s: &mut Settings) {
        if let Some(w) = &self.warehouse {
            s.warehouse = if w.contains("://") {
                w.clone()
            } else {
                format!("sqlite://{w}")
            };
        }
        if let Some(p) = &self.policies {
            s.policies = p.clone();
        }
        if self.as_of.is_some() {
            s.as_of = self.as_of;
        }
        if let Some(p) = &self.dbt_project {
            s.semantic.dbt_project = Some(p.clone());
            s.semantic.manifest = None;
        }
        if let Some(m) = &self.dbt_manifest {
            s.semantic.manifest = Some(m.clone());
            s.semantic.dbt_project = None;
        }
        if let Some(url) = &self.llm {
            s.llm.url = Some(url.clone());
        }
        if let Some(m) = &self.llm_model {
            s.llm.model = m.clone();
        }
        match self.llm_mode.as_deref() {
            Some("tools") => s.llm.mode = PlanMode::Tools,
            Some("json") => s.llm.mode = PlanMode::Json,
            _ => {}
        }
        match self.llm_path.as_deref() {
            Some("sql") => s.llm.path = LlmPath::Sql,
            Some("plan") => s.llm.path = LlmPath::Plan,
            _ => {}
        }
        match self.llm_route.as_deref() {
            Some("always") => s.llm.route = Route::Always,
            Some("fallback") => s.llm.route = Route::Fallback,
            _ => {}
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and web chat.
    Serve {
        /// Listen address (loopback by default).
        #[arg(long)]
        bind: Option<String>,
        /// Where the data and policies come from.
        #[command(flatten)]
        sources: Sources,
    },
    /// Answer one question on the command line.
    Ask {
        /// Dev user asking.
        #[arg(long)]
        user: String,
        /// Print the full JSON answer.
        #[arg(long)]
        json: bool,
        /// Where the data and policies come from.
        #[command(flatten)]
        sources: Sources,
        /// The question.
        question: String,
    },
    /// Demo warehouse.
    Demo {
        /// Demo action.
        #[command(subcommand)]
        action: DemoAction,
    },
    /// Policy tools.
    Policy {
        /// Policy action.
        #[command(subcommand)]
        action: PolicyAction,
    },
    /// Read, check and purge the audit trail; re-run an audited statement.
    Audit {
        /// Audit action.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// List or revoke sign-in sessions (the configured session database).
    Sessions {
        /// Session action.
        #[command(subcommand)]
        action: SessionsAction,
    },
    /// Verified queries: export those approved in the review queue.
    Verified {
        /// Verified-query action.
        #[command(subcommand)]
        action: VerifiedAction,
    },
    /// Run a labelled question set and report routing and execution accuracy,
    /// refusal precision and recall, grounding violations, PII leaks, latency
    /// and tokens. Exit 0 when it ran, 2 for a bad file.
    Eval {
        /// Question set (JSON Lines; see the README, "Evaluation").
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Also write every case's result here (JSON Lines).
        #[arg(long)]
        results: Option<PathBuf>,
        /// Run only every N-th question (whole conversations kept), for slow models.
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// Answer with the single-shot baseline instead of steward's pipeline
        /// (every readable table as plain CREATE TABLE text, one greedy model
        /// call), scored the same way; needs --llm.
        #[arg(long)]
        baseline: bool,
        /// Where the data and policies come from.
        #[command(flatten)]
        sources: Sources,
    },
    /// Index documentation for search (incremental: only what changed).
    Ingest {
        /// Files or directories of Markdown, HTML and text documents
        /// (default: the configured corpus). The index afterwards holds
        /// exactly these documents.
        paths: Vec<PathBuf>,
        /// Index directory (default: the configured one).
        #[arg(long)]
        index: Option<PathBuf>,
        /// Keep running and re-ingest whenever a document changes.
        #[arg(long)]
        watch: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Embedding model directory, `auto` or `off` (default: configured).
        #[arg(long)]
        model: Option<String>,
        /// Keep vectors in the Qdrant server at this gRPC URL.
        #[arg(long)]
        qdrant: Option<String>,
    },
    /// Search the documentation index as a set of groups would.
    Search {
        /// The query.
        query: String,
        /// A group (role) the searcher holds; repeatable. Default: none
        /// (public documents only).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Ranking: hybrid, bm25 or dense (default: the best available).
        #[arg(long)]
        mode: Option<String>,
        /// Results.
        #[arg(short, default_value_t = 5)]
        k: usize,
        /// Index directory (default: the configured one).
        #[arg(long)]
        index: Option<PathBuf>,
    },
    /// Score retrieval on a labelled set: recall@k and MRR per ranking.
    EvalRetrieval {
        /// JSONL cases: `{"question": …, "relevant": [chunk ids], "groups": […]}`.
        file: PathBuf,
        /// The k of recall@k.
        #[arg(short, default_value_t = 5)]
        k: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Index directory (default: index the configured corpus in memory).
        #[arg(long)]
        index: Option<PathBuf>,
    },
}

/// `steward sessions …`
#[derive(Debug, Subcommand)]
pub enum SessionsAction {
    /// Live sessions, newest first (id, user, roles, created, last seen, expiry).
    List {
        /// Include ended sessions (revoked or expired) and why they ended.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// End sessions at once: one by id, or every session of a user.
    Revoke {
        /// Session id (from `sessions list`).
        id: Option<String>,
        /// Revoke every session of this user instead.
        #[arg(long, conflicts_with = "id")]
        user: Option<String>,
        /// Recorded with the revocation.
        #[arg(long, default_value = "revoked by an administrator")]
        reason: String,
    },
}

/// `steward verified …`
#[derive(Debug, Subcommand)]
pub enum VerifiedAction {
    /// Write the verified queries in force as `verified_queries.yaml`: the
    /// policy directory's file, with the pairs approved in the review queue
    /// (steward's database) added or replacing those for the same question,
    /// each with its owner, role, version and approval time.
    Export {
        /// Write here (atomically) instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Policy directory whose `verified_queries.yaml` is the base.
        #[arg(long)]
        policies: Option<std::path::PathBuf>,
    },
}

/// `steward audit …`
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Events, newest first.
    List {
        /// Only this user's events.
        #[arg(long)]
        user: Option<String>,
        /// From this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
        /// Before this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long)]
        until: Option<String>,
        /// Only events that read this table.
        #[arg(long)]
        table: Option<String>,
        /// Only this outcome (answered, refused, started, ok, denied, purged).
        #[arg(long)]
        outcome: Option<String>,
        /// Only this kind (question, statement, rerun, purge).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many (1-1000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One event and the events under it.
    Show {
        /// Event id.
        id: String,
    },
    /// Recompute the hash chain; exit 1 if it is broken.
    Verify {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete events older than `audit.retention_days` now (the purge is itself audited).
    Purge,
    /// Re-run an audited statement as an admin (needs a sign-in within
    /// `audit.rerun_login_max_age_secs`: an access token with a recent `auth_time`).
    Rerun {
        /// The statement's event id.
        id: String,
        /// Why (recorded in the audit trail; 3-500 characters).
        #[arg(long)]
        reason: String,
        /// File holding the admin's access token from the identity provider
        /// (`-`: standard input), so it appears in no command line or history.
        #[arg(long)]
        token_file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `steward demo …`
#[derive(Debug, Subcommand)]
pub enum DemoAction {
    /// Generate the deterministic demo warehouse.
    Init {
        /// Output SQLite file.
        #[arg(long, default_value = crate::settings::DEMO_WAREHOUSE)]
        out: PathBuf,
        /// Last day + 1 of the data (default: today).
        #[arg(long)]
        as_of: Option<NaiveDate>,
        /// Size factor (1.0 ≈ 1.3 million events).
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
        /// Also copy the demo into this (empty) PostgreSQL database.
        #[arg(long)]
        postgres: Option<String>,
    },
}

/// `steward policy apply`: where and how the policy is applied.
#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// PostgreSQL URL of a role that may create roles and schemas.
    #[arg(long, conflicts_with = "snowflake")]
    pub postgres: Option<String>,
    /// Print the Snowflake SQL for an operator to run (steward cannot reach Snowflake here).
    #[arg(long)]
    pub snowflake: bool,
    /// Schema holding the warehouse tables.
    #[arg(long, default_value = "public")]
    pub schema: String,
    /// The login role steward's warehouse URL uses (default: its user).
    #[arg(long)]
    pub reader: Option<String>,
    /// Print the SQL instead of running it.
    #[arg(long)]
    pub print: bool,
    /// Policy directory.
    #[arg(long)]
    pub policies: Option<PathBuf>,
}

/// `steward policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyAction {
    /// Show the guard's decision for a statement: allowed or denied, why, and
    /// the rewritten SQL. Exit 0 when allowed, 3 when denied, 2 for bad input.
    Check {
        /// Dev user whose roles apply.
        #[arg(long)]
        user: String,
        /// Print the decision as JSON.
        #[arg(long)]
        json: bool,
        /// Policy directory.
        #[arg(long)]
        policies: Option<PathBuf>,
        /// SQL dialect: sqlite, postgres or snowflake.
        #[arg(long, default_value = "sqlite")]
        dialect: String,
        /// The statement.
        sql: String,
    },
    /// Make the database enforce the policy too: a database role per steward
    /// role, with views of exactly the columns and rows it may read (masks
    /// and row filters applied). Run it again after every policy change; with
    /// `enforce_in_database = true` steward runs each statement as that role.
    Apply(ApplyArgs),
    /// Write a starter policy for a database: every table and column, with
    /// column classes proposed from names and sampled values. Review it before use.
    Init {
        /// Warehouse URL (sqlite://PATH or postgres://…).
        #[arg(long)]
        warehouse: String,
        /// Output directory; must not already hold policy files.
        #[arg(long, default_value = "policies.draft")]
        out: PathBuf,
    },
}
