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

pub mod regression;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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

/// A thumbs up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rating {
    /// The answer was right.
    Up,
    /// The answer was wrong or unhelpful.
    Down,
}

impl Rating {
    fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }

    fn parse(s: &str) -> Rating {
        if s == "up" { Rating::Up } else { Rating::Down }
    }
}

/// Feedback as submitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// The audit event id of the answered question (`event_id` in the answer).
    pub event_id: String,
    /// Up or down.
    pub rating: Rating,
    /// Free text, at most [`MAX_COMMENT_CHARS`]; stored redacted.
    #[serde(default)]
    pub comment: Option<String>,
    /// A statement that answers the question better (needs `sql`).
    #[serde(default)]
    pub corrected_sql: Option<String>,
}

/// One stored piece of feedback.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    /// Random id (32 hex digits).
    pub id: String,
    /// The question's audit event.
    pub event_id: String,
    /// Who gave it.
    pub user: String,
    /// Up or down.
    pub rating: Rating,
    /// The comment, redacted.
    pub comment: Option<String>,
    /// The corrected statement, if any.
    pub corrected_sql: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
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

/// What feedback led to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackOutcome {
    /// The stored feedback's id.
    pub feedback_id: String,
    /// The candidate it proposed, if it carried SQL.
    pub candidate_id: Option<String>,
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

/// Stores feedback on one of `principal`'s answers and, when it carries
/// SQL, a candidate. The event must be a question `principal` asked;
/// anything else is [`ReviewError::NotFound`], so no one learns of others'
/// questions.
///
/// # Errors
/// [`ReviewError::Invalid`] for a malformed id or an oversized comment or
/// statement; [`ReviewError::Forbidden`] for corrected SQL without `sql`;
/// [`ReviewError::Rejected`] when the guard refuses it; [`ReviewError::Store`].
pub async fn submit_feedback(
    o: &Orchestrator,
    store: &ReviewStore,
    principal: &Principal,
    req: FeedbackRequest,
) -> Result<FeedbackOutcome, ReviewError> {
    if req.event_id.len() != 32 || !req.event_id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ReviewError::Invalid(
            "invalid_event_id",
            "event_id must be the 32 hex digits of an answer's event_id".into(),
        ));
    }
    let comment = req
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if comment.is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS) {
        return Err(ReviewError::Invalid(
            "comment_too_long",
            format!("a comment may hold at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    let grants = o.policy.grants(principal);
    let corrected = match req.corrected_sql.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => {
            if !grants.can(Capability::Sql) {
                return Err(ReviewError::Forbidden(
                    "only roles with sql may propose corrected SQL".into(),
                ));
            }
            Some(check_sql(o, s, &grants)?)
        }
        _ => None,
    };
    let event = o
        .audit
        .get(&req.event_id)
        .await?
        .filter(|e| e.kind == EventKind::Question && e.principal == principal.user)
        .ok_or_else(|| ReviewError::NotFound("no answer of yours has that event_id".into()))?;
    let statements: Vec<String> = o
        .audit
        .children(&event.id)
        .await?
        .into_iter()
        .filter(|c| c.kind == EventKind::Statement)
        .filter_map(|c| c.sql)
        .collect();
    let feedback = Feedback {
        id: crate::audit::new_id(),
        event_id: event.id.clone(),
        user: principal.user.clone(),
        rating: req.rating,
        comment: comment.map(|c| crate::redact::redact(c).into_owned()),
        corrected_sql: corrected.clone(),
        created_at: now_secs(),
    };
    // A thumbs up on an answer that ran exactly one ad-hoc statement
    // proposes that statement, unless the asker's row filters or masks are
    // written into it (the recorded SQL is the guard's rewrite): a verified
    // query must not carry one principal's view of the data.
    let rewritten = !event.decisions.row_filters.is_empty() || !event.decisions.masked.is_empty();
    let proposed = corrected.or_else(|| {
        (req.rating == Rating::Up
            && event.plan.as_deref() == Some("sql")
            && statements.len() == 1
            && !rewritten)
            .then(|| statements[0].clone())
    });
    store.add_feedback(&feedback).await?;
    let candidate_id = match (proposed, &event.question) {
        (Some(sql), Some(question)) => {
            let c = Candidate {
                id: crate::audit::new_id(),
                question: question.clone(),
                sql,
                proposed_by: principal.user.clone(),
                feedback_id: feedback.id.clone(),
                event_id: event.id.clone(),
                seen: serde_json::json!({
                    "kind": event.plan,
                    "statements": statements,
                    "rows": event.rows,
                    "reason": event.detail.as_ref().and_then(|d| d.get("reason")).cloned(),
                }),
                status: "pending".into(),
                reviewed_by: None,
                reviewed_at: None,
                review_note: None,
                created_at: feedback.created_at,
            };
            store.add_candidate(&c).await?;
            Some(c.id)
        }
        _ => None,
    };
    Ok(FeedbackOutcome {
        feedback_id: feedback.id,
        candidate_id,
    })
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

fn check_note(note: Option<&str>) -> Result<Option<String>, ReviewError> {
    match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > MAX_COMMENT_CHARS => Err(ReviewError::Invalid(
            "note_too_long",
            format!("a note may hold at most {MAX_COMMENT_CHARS} characters"),
        )),
        n => Ok(n.map(|n| crate::redact::redact(n).into_owned())),
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
    let note = check_note(req.note.as_deref())?;
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
    let report = Box::pin(regression::run(o, sets, &pair))
        .await
        .map_err(ReviewError::RegressionFailed)?;
    let mut event = AuditEvent::new(
        EventKind::Review,
        &principal.user,
        &principal.roles,
        channel,
    );
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
    let note = check_note(note)?;
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
