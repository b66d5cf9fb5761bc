//! Feedback on an answer ([`submit_feedback`]): stored with the question's
//! audit event id, and, when it carries SQL, a candidate for the review
//! queue. See the module above for the loop.

use serde::{Deserialize, Serialize};

use super::{Candidate, ReviewError, ReviewStore, check_sql, free_text, now_secs};
use crate::audit::EventKind;
use crate::orchestrator::Orchestrator;
use crate::policy::{Capability, Principal};

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
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Rating::Up => "up",
            Rating::Down => "down",
        }
    }

    pub(super) fn parse(s: &str) -> Rating {
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

/// What feedback led to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackOutcome {
    /// The stored feedback's id.
    pub feedback_id: String,
    /// The candidate it proposed, if it carried SQL.
    pub candidate_id: Option<String>,
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
/// The feedback is an audit event of kind `feedback` (its id the event's).
pub async fn submit_feedback(
    o: &Orchestrator,
    store: &ReviewStore,
    principal: &Principal,
    channel: crate::audit::Channel,
    req: FeedbackRequest,
) -> Result<FeedbackOutcome, ReviewError> {
    if !crate::audit::is_id(&req.event_id) {
        return Err(ReviewError::Invalid(
            "invalid_event_id",
            "event_id must be the 32 hex digits of an answer's event_id".into(),
        ));
    }
    let comment = free_text(req.comment.as_deref(), "comment_too_long", "a comment")?;
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
        comment,
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
    let detail = serde_json::json!({
        "feedback": feedback.id, "answer": event.id, "rating": feedback.rating,
        "corrected_sql": feedback.corrected_sql.is_some(), "candidate": candidate_id,
    });
    o.audit
        .record_action(
            principal,
            channel,
            EventKind::Feedback,
            "created",
            &feedback.id,
            detail,
        )
        .await?;
    Ok(FeedbackOutcome {
        feedback_id: feedback.id,
        candidate_id,
    })
}
