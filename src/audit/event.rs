//! The audit event: what is stored, hashed and shown.

use serde::{Deserialize, Serialize};

/// Where a question came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// The web chat (a session cookie).
    Web,
    /// Slack.
    Slack,
    /// The HTTP API (bearer token or dev header).
    Api,
    /// The command line.
    Cli,
    /// steward itself (start-up catalogue queries, retention purges).
    Internal,
    /// A subscription's scheduled run, answered for its recipient.
    Subscription,
}

impl Channel {
    /// The lower-case name stored and filtered on.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Slack => "slack",
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Internal => "internal",
            Channel::Subscription => "subscription",
        }
    }
}

/// The human an internal run is attributed to: a regression run for the
/// steward who approved, a delivery for its subscriber, a pin's run for the
/// viewer who opened the board. The run still executes under the grants it
/// names (a stated role, the recipient's own); its events carry this user,
/// channel, purpose and parent, never another user's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// User id of the human who caused the run.
    pub user: String,
    /// The channel they acted through.
    pub channel: Channel,
    /// Why steward runs it: `regression`, `delivery`, `board`.
    pub purpose: String,
    /// The event it follows from (the approval, the subscription, the pin).
    pub parent: Option<String>,
}

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A question and its answer (written before the answer is returned).
    Question,
    /// A statement about to run (written before it runs; results are in the
    /// question event's `statements`).
    Statement,
    /// An admin's re-run of an audited statement.
    Rerun,
    /// A retention purge.
    Purge,
    /// A data steward's decision on a proposed verified query (approved,
    /// rejected, or blocked by the regression run).
    Review,
    /// A board created or deleted, or an answer pinned to it or unpinned.
    Board,
    /// A subscription created, paused, resumed or deleted.
    Subscription,
    /// Feedback submitted on an answer.
    Feedback,
}

impl EventKind {
    /// The snake-case name stored and filtered on.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Question => "question",
            EventKind::Statement => "statement",
            EventKind::Rerun => "rerun",
            EventKind::Purge => "purge",
            EventKind::Review => "review",
            EventKind::Board => "board",
            EventKind::Subscription => "subscription",
            EventKind::Feedback => "feedback",
        }
    }
}

/// What the policy decided for a statement or question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decisions {
    /// Column classes read (`public`, `sensitive`, `pii`).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Columns returned masked (`table.column`).
    #[serde(default)]
    pub masked: Vec<String>,
    /// Row filters applied (`table: predicate`).
    #[serde(default)]
    pub row_filters: Vec<String>,
    /// Statements the guard refused, with its one-sentence reason.
    #[serde(default)]
    pub denied: Vec<String>,
}

/// The outcome of one statement, recorded in its question's event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementOutcome {
    /// The statement event's id.
    pub id: String,
    /// Rows returned.
    pub rows: Option<u64>,
    /// Hex SHA-256 of the result (columns and rows as JSON) — never the rows.
    pub result_hash: Option<String>,
    /// Milliseconds in the warehouse.
    pub duration_ms: u64,
    /// The failure kind, when it failed.
    pub error: Option<String>,
    /// When served from the result cache: when the warehouse produced the
    /// rows (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_as_of: Option<String>,
}

/// Language model use for a question.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUse {
    /// Model name.
    pub model: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
}

/// One audit event. Serialized (field order as declared) it is the `body`
/// that the hash chain covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Random id (32 hex digits).
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// What it records.
    pub kind: EventKind,
    /// The question a statement belongs to; the original statement of a re-run.
    pub parent: Option<String>,
    /// User id of the principal.
    pub principal: String,
    /// The principal's roles.
    pub roles: Vec<String>,
    /// Where it came from.
    pub channel: Channel,
    /// The question, with personal data redacted.
    pub question: Option<String>,
    /// The plan or answer kind (`metric`, `sql`, `docs`, `overview`, `refusal`).
    pub plan: Option<String>,
    /// Tools the language model used.
    pub tools: Vec<String>,
    /// The validated SQL as it ran (the guard's normalized printing).
    pub sql: Option<String>,
    /// Why the statement ran ("dau, last week"), or the admin's reason for a re-run.
    pub purpose: Option<String>,
    /// Tables read.
    pub tables: Vec<String>,
    /// Policy decisions.
    pub decisions: Decisions,
    /// For questions: each statement's outcome.
    pub statements: Vec<StatementOutcome>,
    /// Rows in the answer's main table (questions) or returned (re-runs).
    pub rows: Option<u64>,
    /// Hex SHA-256 of the answer's main table or the re-run's result.
    pub result_hash: Option<String>,
    /// Milliseconds from question to answer.
    pub duration_ms: Option<u64>,
    /// Language model use.
    pub llm: Option<ModelUse>,
    /// `answered`, `refused`, `started`, `ok`, `error`, `denied`, `purged`.
    pub outcome: String,
    /// Why (a refusal's reason, a purge's anchor).
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    /// A new event of `kind` for `principal` (seq and time are set on append).
    pub fn new(kind: EventKind, principal: &str, roles: &[String], channel: Channel) -> Self {
        AuditEvent {
            seq: 0,
            id: super::new_id(),
            at_ms: 0,
            kind,
            parent: None,
            principal: principal.to_owned(),
            roles: roles.to_vec(),
            channel,
            question: None,
            plan: None,
            tools: Vec::new(),
            sql: None,
            purpose: None,
            tables: Vec::new(),
            decisions: Decisions::default(),
            statements: Vec::new(),
            rows: None,
            result_hash: None,
            duration_ms: None,
            llm: None,
            outcome: String::new(),
            detail: None,
        }
    }
}

/// Which events to list. Every field narrows; none lists all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Principal user id.
    pub user: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<i64>,
    /// A table the event read.
    pub table: Option<String>,
    /// Outcome.
    pub outcome: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}
