//! The review loop: feedback on answers becomes *candidate* verified
//! queries, which only a data steward (capability `steward`) turns into
//! verified queries, and only when a regression run over the labelled
//! question sets shows no previously right question turning wrong.
//!
//! - **Feedback** ([`submit_feedback`]): a thumbs up or down on one of the
//!   asker's own answers (named by its audit event id), an optional comment
//!   (redacted like questions), and for principals with `sql` an optional
//!   corrected statement, which must pass the guard under their grants.
//! - **Candidates**: feedback that carries SQL (a correction, or a thumbs
//!   up on an answer that ran one statement) proposes the pair (the
//!   question as recorded, that SQL), with what the asker saw.
//! - **Approval** ([`approve`]): the steward may edit the question and SQL
//!   and names a role; the SQL must pass the guard under it; then
//!   [`regression::run`] compares the answers with and without the new pair.
//!   Only then is the pair stored as the next version in `verified_queries`,
//!   and an audit event of kind `review` records the decision.
//!
//! Invariant: no verified query exists without a steward's approval that
//! passed the regression run; nothing here trains or changes anything on
//! feedback alone.

mod feedback;
pub mod regression;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use feedback::{Feedback, FeedbackOutcome, FeedbackRequest, Rating, submit_feedback};
pub use store::ReviewStore;

use crate::audit::{AuditEvent, Channel, EventKind};
use crate::orchestrator::Orchestrator;
use crate::orchestrator::verified::VerifiedQuery;
use crate::policy::{Capability, Principal};
use crate::sql::{Origin, validate};

/// Longest feedback comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Longest corrected or edited statement, in bytes.
pub const MAX_SQL_BYTES: usize = 20_000;

/// `[review]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewSettings {
    /// Labelled question sets (`steward eval` files) the regression run
    /// answers before and after an approval; each must be labelled for this
    /// warehouse. A missing file is an error at approval. Default: the
    /// demo's `eval/demo.jsonl`.
    #[serde(default = "default_eval_sets")]
    pub eval_sets: Vec<PathBuf>,
}

fn default_eval_sets() -> Vec<PathBuf> {
    vec![PathBuf::from("eval/demo.jsonl")]
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            eval_sets: default_eval_sets(),
        }
    }
}

/// What an approval's regression run answers: the labelled question sets
/// and the dev users (name → roles) their cases name.
#[derive(Debug, Clone, Default)]
pub struct RegressionSets {
    /// `steward eval` files ([`ReviewSettings::eval_sets`]).
    pub sets: Vec<PathBuf>,
    /// Users the cases ask as.
    pub users: BTreeMap<String, Vec<String>>,
}

/// A proposed verified query awaiting (or past) review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Random id (32 hex digits).
    pub id: String,
    /// The question as the audit trail recorded it (redacted).
    pub question: String,
    /// The proposed statement.
    pub sql: String,
    /// Who proposed it.
    pub proposed_by: String,
    /// The feedback that proposed it.
    pub feedback_id: String,
    /// The question's audit event.
    pub event_id: String,
    /// What the asker saw: `{"kind", "statements": [SQL…], "rows", "reason"}`.
    pub seen: serde_json::Value,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// The steward who decided.
    pub reviewed_by: Option<String>,
    /// When (Unix seconds).
    pub reviewed_at: Option<i64>,
    /// The steward's note.
    pub review_note: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Why a review request failed.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Malformed or oversized input: `(code, message)`.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// The principal lacks a capability.
    #[error("{0}")]
    Forbidden(String),
    /// No such event or candidate (or not the principal's).
    #[error("{0}")]
    NotFound(String),
    /// The guard refused the statement.
    #[error("the SQL guard refused the statement: {0}")]
    Rejected(String),
    /// The candidate was already decided, or a concurrent approval won.
    #[error("{0}")]
    Conflict(String),
    /// Previously right questions turn wrong with this pair.
    #[error("{} previously right question(s) turn wrong with this verified query", .0.turned_wrong.len())]
    Regression(Box<regression::RegressionReport>),
    /// The regression run itself failed (an unreadable set).
    #[error("the regression run failed: {0}")]
    RegressionFailed(String),
    /// steward's database or audit trail failed.
    #[error("steward's database failed: {0}")]
    Store(String),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Store(e.to_string())
    }
}

impl From<crate::audit::AuditError> for ReviewError {
    fn from(e: crate::audit::AuditError) -> Self {
        ReviewError::Store(e.to_string())
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Checks a statement's size and that the guard accepts it for `grants`.
fn check_sql(
    o: &Orchestrator,
    sql: &str,
    grants: &crate::policy::Grants,
) -> Result<String, ReviewError> {
    let sql = sql.trim().trim_end_matches(';').trim();
    if sql.is_empty() {
        return Err(ReviewError::Invalid("empty_sql", "the SQL is empty".into()));
    }
    if sql.len() > MAX_SQL_BYTES {
        return Err(ReviewError::Invalid(
            "sql_too_long",
            format!("the SQL is longer than {MAX_SQL_BYTES} bytes"),
        ));
    }
    validate(sql, o.warehouse.dialect(), &o.policy, grants, Origin::AdHoc)
        .map_err(|r| ReviewError::Rejected(r.to_string()))?;
    Ok(sql.to_owned())
}

/// A steward's approval: optionally edited question and SQL, and the role
/// the SQL is checked under.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The role (from `roles.yaml`) whose grants the guard checks the SQL under.
    pub role: String,
    /// The question as it should be matched (default: the candidate's).
    #[serde(default)]
    pub question: Option<String>,
    /// The statement (default: the candidate's).
    #[serde(default)]
    pub sql: Option<String>,
    /// A note for the record.
    #[serde(default)]
    pub note: Option<String>,
}

/// What an approval stored.
#[derive(Debug, Clone, Serialize)]
pub struct Approved {
    /// The verified query as stored.
    pub verified: VerifiedQuery,
    /// The regression run that allowed it.
    pub regression: regression::RegressionReport,
}

/// Requires the `steward` capability.
///
/// # Errors
/// [`ReviewError::Forbidden`].
pub fn require_steward(o: &Orchestrator, principal: &Principal) -> Result<(), ReviewError> {
    if o.policy.grants(principal).can(Capability::Steward) {
        Ok(())
    } else {
        Err(ReviewError::Forbidden(
            "this needs the steward capability".into(),
        ))
    }
}

/// Optional free text (a comment, a steward's note): trimmed, empty as
/// none, at most [`MAX_COMMENT_CHARS`], stored redacted like questions.
/// `code` and `noun` name it in the error.
fn free_text(
    text: Option<&str>,
    code: &'static str,
    noun: &str,
) -> Result<Option<String>, ReviewError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) if t.chars().count() > MAX_COMMENT_CHARS => Err(ReviewError::Invalid(
            code,
            format!("{noun} may hold at most {MAX_COMMENT_CHARS} characters"),
        )),
        t => Ok(t.map(|t| crate::redact::redact(t).into_owned())),
    }
}

/// Approves candidate `id` as a verified query, after the guard check
/// under `req.role` and a regression run ([`regression::run`]) over
/// `sets` and every approved pair. Stores the pair as the next version, supersedes an
/// earlier pair for the same question, refreshes `o`'s verified set, and
/// writes an audit event of kind `review` through `channel` (outcome
/// `approved`, or `blocked` when the regression run stops it).
///
/// # Errors
/// [`ReviewError::Forbidden`] without `steward`; [`ReviewError::NotFound`];
/// [`ReviewError::Conflict`] when the candidate is not pending;
/// [`ReviewError::Invalid`] for an unknown role or oversized input;
/// [`ReviewError::Rejected`]; [`ReviewError::Regression`] with the diff;
/// [`ReviewError::RegressionFailed`]; [`ReviewError::Store`].
pub async fn approve(
    o: &Orchestrator,
    store: &ReviewStore,
    sets: &RegressionSets,
    principal: &Principal,
    channel: Channel,
    id: &str,
    req: ApproveRequest,
) -> Result<Approved, ReviewError> {
    require_steward(o, principal)?;
    let note = free_text(req.note.as_deref(), "note_too_long", "a note")?;
    let candidate = store
        .candidate(id)
        .await?
        .ok_or_else(|| ReviewError::NotFound("no such candidate".into()))?;
    if candidate.status != "pending" {
        return Err(ReviewError::Conflict(format!(
            "the candidate is already {}",
            candidate.status
        )));
    }
    if !o.policy.roles.contains_key(&req.role) {
        return Err(ReviewError::Invalid(
            "unknown_role",
            format!("no role named {:?} in roles.yaml", req.role),
        ));
    }
    let question = req
        .question
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .unwrap_or(&candidate.question)
        .to_owned();
    if question.chars().count() > MAX_COMMENT_CHARS {
        return Err(ReviewError::Invalid(
            "question_too_long",
            format!("a question may hold at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let grants = o.policy.grants(&Principal {
        user: principal.user.clone(),
        roles: vec![req.role.clone()],
        groups: Vec::new(),
    });
    let sql = check_sql(o, req.sql.as_deref().unwrap_or(&candidate.sql), &grants)?;
    let mut pair = VerifiedQuery::new(question, sql);
    pair.role = Some(req.role.clone());
    pair.owner = Some(principal.user.clone());
    // The regression compares against the pairs in force now; the store
    // refuses the approval if another landed meanwhile (any instance).
    refresh(o, store).await?;
    let baseline = o.verified.approved().0;
    // The review event's id is chosen first: the regression run's events
    // name it as their parent, and the approver as their principal.
    let mut event = AuditEvent::new(
        EventKind::Review,
        &principal.user,
        &principal.roles,
        channel,
    );
    let cause = crate::audit::Cause {
        user: principal.user.clone(),
        channel,
        purpose: "regression".into(),
        parent: Some(event.id.clone()),
    };
    let report = Box::pin(regression::run(o, sets, &pair, &cause))
        .await
        .map_err(ReviewError::RegressionFailed)?;
    event.question = Some(crate::redact::redact(&pair.question).into_owned());
    event.sql = Some(pair.sql.clone());
    event.purpose = Some(format!("candidate {}", candidate.id));
    if !report.turned_wrong.is_empty() {
        event.outcome = "blocked".into();
        event.detail = Some(serde_json::json!({
            "turned_wrong": report.turned_wrong.iter().map(|d| &d.id).collect::<Vec<_>>(),
        }));
        o.audit.append(event).await?;
        return Err(ReviewError::Regression(Box::new(report)));
    }
    let now = now_secs();
    let version = store
        .approve(
            &candidate.id,
            &pair,
            &principal.user,
            note.as_deref(),
            now,
            baseline,
        )
        .await?;
    pair.version = Some(version);
    pair.approved_at = chrono::DateTime::from_timestamp(now, 0).map(|t| t.to_rfc3339());
    event.outcome = "approved".into();
    event.detail = Some(serde_json::json!({ "version": version, "role": req.role }));
    o.audit.append(event).await?;
    refresh(o, store).await?;
    Ok(Approved {
        verified: pair,
        regression: report,
    })
}

/// Rejects candidate `id`, with an optional note; audited.
///
/// # Errors
/// As [`approve`], without the guard and regression.
pub async fn reject(
    o: &Orchestrator,
    store: &ReviewStore,
    principal: &Principal,
    channel: Channel,
    id: &str,
    note: Option<&str>,
) -> Result<Candidate, ReviewError> {
    require_steward(o, principal)?;
    let note = free_text(note, "note_too_long", "a note")?;
    let candidate = store
        .candidate(id)
        .await?
        .ok_or_else(|| ReviewError::NotFound("no such candidate".into()))?;
    if !store
        .decide(
            &candidate.id,
            "rejected",
            &principal.user,
            note.as_deref(),
            now_secs(),
        )
        .await?
    {
        return Err(ReviewError::Conflict(format!(
            "the candidate is already {}",
            candidate.status
        )));
    }
    let mut event = AuditEvent::new(
        EventKind::Review,
        &principal.user,
        &principal.roles,
        channel,
    );
    event.question = Some(candidate.question.clone());
    event.purpose = Some(format!("candidate {}", candidate.id));
    event.outcome = "rejected".into();
    o.audit.append(event).await?;
    store
        .candidate(id)
        .await?
        .ok_or_else(|| ReviewError::NotFound("no such candidate".into()))
}

/// Brings `o`'s approved verified queries up to the database's latest
/// version (one `MAX(version)` query when nothing changed).
///
/// # Errors
/// [`ReviewError::Store`].
pub async fn refresh(o: &Orchestrator, store: &ReviewStore) -> Result<(), ReviewError> {
    let latest = store.max_version().await?;
    if latest != o.verified.approved().0 {
        let pairs = store.approved().await?;
        o.verified.set_approved(latest, pairs);
    }
    Ok(())
}
