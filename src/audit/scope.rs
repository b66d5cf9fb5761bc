//! The audit context of one question, kept per task: who asks and through
//! which channel, and what happened to each statement on the way (for the
//! question's event). [`run_statement`] is the only way orchestration runs
//! SQL: it writes the statement's event first and runs nothing if that
//! fails.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};

use sha2::{Digest, Sha256};

use super::{
    AuditError, AuditEvent, AuditLog, Cause, Channel, Decisions, EventKind, StatementOutcome,
};
use crate::policy::{ColumnClass, Principal};
use crate::sql::ValidatedSql;
use crate::warehouse::{ResultSet, Warehouse, WarehouseError};

/// One question in progress.
#[derive(Debug, Clone)]
pub struct QuestionScope {
    /// The question event's id (statements name it as parent).
    pub id: String,
    /// Who asks.
    pub principal: Principal,
    /// Where from.
    pub channel: Channel,
    /// Who caused the run, when it is not the principal's own question.
    cause: Option<Cause>,
    /// Whether a question event will carry this id (statements then name it as parent).
    question: bool,
    /// Whether statements must run afresh (never served from the result
    /// cache): admins asking for it, and re-runs.
    fresh: bool,
    state: Arc<Mutex<Collected>>,
}

/// What the question's event will record.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Each statement's outcome.
    pub statements: Vec<StatementOutcome>,
    /// Guard refusals.
    pub denied: Vec<String>,
    /// Tables read.
    pub tables: Vec<String>,
    /// Masked columns and row filters applied.
    pub decisions: Decisions,
    /// When the oldest rows used were produced (fresh statements: when they
    /// ran; cached ones: when the warehouse first returned them).
    pub as_of: Option<DateTime<Utc>>,
    /// Whether any statement was served from the result cache.
    pub cached: bool,
    /// Whether work was turned away for lack of capacity (a statement or
    /// model slot did not free up in time): the request is answered with
    /// 503, not with a degraded answer.
    pub overloaded: bool,
}

tokio::task_local! {
    static SCOPE: QuestionScope;
}

impl QuestionScope {
    /// A new scope for `principal` asking through `channel`.
    pub fn new(principal: &Principal, channel: Channel) -> QuestionScope {
        QuestionScope {
            id: super::new_id(),
            principal: principal.clone(),
            channel,
            cause: None,
            question: true,
            fresh: false,
            state: Arc::default(),
        }
    }

    /// A scope for a request that is not a question (a Metrics API query):
    /// its statements carry the principal and channel but no parent.
    pub fn standalone(principal: &Principal, channel: Channel) -> QuestionScope {
        QuestionScope {
            question: false,
            ..QuestionScope::new(principal, channel)
        }
    }

    /// This scope, with every statement run afresh (never from the cache).
    #[must_use]
    pub fn fresh(self, fresh: bool) -> QuestionScope {
        QuestionScope { fresh, ..self }
    }

    /// This scope, attributed to `cause`: its events name the human who
    /// caused the run, the purpose and the parent event, while statements
    /// still run under the principal's grants.
    #[must_use]
    pub fn caused_by(self, cause: Option<Cause>) -> QuestionScope {
        QuestionScope { cause, ..self }
    }

    /// The cause this scope is attributed to, if any.
    pub fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// The user id its events record: the cause's, else the principal's.
    pub fn recorded_user(&self) -> &str {
        self.cause
            .as_ref()
            .map_or(&self.principal.user, |c| &c.user)
    }

    /// The channel its events record: the cause's, else the scope's.
    pub fn recorded_channel(&self) -> Channel {
        self.cause.as_ref().map_or(self.channel, |c| c.channel)
    }

    /// Runs `f` inside this scope.
    pub async fn run<F: std::future::Future>(self, f: F) -> F::Output {
        SCOPE.scope(self, f).await
    }

    /// What was collected so far.
    pub fn collected(&self) -> Collected {
        self.state.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The current task's scope, if any.
pub fn current() -> Option<QuestionScope> {
    SCOPE.try_with(Clone::clone).ok()
}

/// Records a guard refusal in the current question (its one-sentence reason).
pub fn note_denied(reason: &str) {
    let _ = SCOPE.try_with(|s| {
        if let Ok(mut c) = s.state.lock()
            && c.denied.len() < 20
        {
            c.denied.push(reason.to_owned());
        }
    });
}

/// Records in the current question that work was turned away for lack of
/// capacity (see [`Collected::overloaded`]).
pub fn note_overloaded() {
    let _ = SCOPE.try_with(|s| {
        if let Ok(mut c) = s.state.lock() {
            c.overloaded = true;
        }
    });
}

/// Hex SHA-256 of a result's columns and rows as JSON: proves what was
/// returned without storing it.
pub fn result_hash(columns: &[String], rows: &[Vec<serde_json::Value>]) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(columns).unwrap_or_default());
    for r in rows {
        h.update(b"\n");
        h.update(serde_json::to_vec(r).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

/// Why an audited statement did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The statement's event could not be written, so it did not run.
    #[error("the audit trail could not record the statement, so it did not run: {0}")]
    Audit(#[from] AuditError),
    /// The warehouse failed.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

/// Writes `validated`'s statement event (for the current question, or as
/// steward itself outside one), then runs it on `warehouse` and records the
/// outcome in the question. Values of `pii` columns in the result are
/// remembered for redaction ([`crate::redact::remember_pii`]).
///
/// # Errors
/// [`RunError::Audit`] (the statement did not run), [`RunError::Warehouse`].
pub async fn run_statement(
    audit: &AuditLog,
    warehouse: &dyn Warehouse,
    validated: &ValidatedSql,
    purpose: &str,
) -> Result<ResultSet, RunError> {
    let scope = current();
    let (principal, roles, channel) = match &scope {
        Some(s) => (
            s.recorded_user(),
            s.principal.roles.as_slice(),
            s.recorded_channel(),
        ),
        None => ("steward", &[][..], Channel::Internal),
    };
    let mut event = AuditEvent::new(EventKind::Statement, principal, roles, channel);
    let decisions = Decisions {
        classes: validated
            .classes()
            .iter()
            .map(|c| format!("{c:?}").to_lowercase())
            .collect(),
        masked: validated.masked().to_vec(),
        row_filters: validated.row_filters().to_vec(),
        denied: Vec::new(),
    };
    event.parent = scope
        .as_ref()
        .and_then(|s| s.question.then(|| s.id.clone()));
    event.sql = Some(validated.sql().to_owned());
    event.purpose = Some(purpose.to_owned());
    event.tables = validated.tables().iter().cloned().collect();
    event.decisions = decisions.clone();
    let hit = if scope.as_ref().is_some_and(|s| s.fresh) {
        None
    } else {
        warehouse.cached(validated).await
    };
    let started = Instant::now();
    let ran_at = Utc::now();
    let (event, result, cached_at) = match hit {
        Some(hit) => {
            event.outcome = "cached".into();
            event.rows = Some(hit.result.rows.len() as u64);
            event.detail = Some(serde_json::json!({ "as_of": hit.as_of.to_rfc3339() }));
            let event = audit.append(event).await?;
            crate::prometheus::cache_hit(true);
            (event, Ok(hit.result), Some(hit.as_of))
        }
        None => {
            event.outcome = "started".into();
            let event = audit.append(event).await?;
            let result = warehouse.execute(validated).await;
            crate::prometheus::warehouse_time(started.elapsed());
            crate::prometheus::cache_hit(false);
            (event, result, None)
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let outcome = StatementOutcome {
        id: event.id.clone(),
        rows: result.as_ref().ok().map(|r| r.rows.len() as u64),
        result_hash: result
            .as_ref()
            .ok()
            .map(|r| result_hash(&r.columns, &r.rows)),
        duration_ms,
        error: result.as_ref().err().map(|e| e.kind().to_owned()),
        cached_as_of: cached_at.map(|t| t.to_rfc3339()),
    };
    if let Ok(r) = &result
        && validated.classes().contains(&ColumnClass::Pii)
    {
        crate::redact::remember_pii(r.rows.iter().flatten().filter_map(|v| v.as_str()));
    }
    if let Some(s) = &scope
        && let Ok(mut c) = s.state.lock()
    {
        c.statements.push(outcome);
        let tables: Vec<String> = validated.tables().iter().cloned().collect();
        merge(&mut c.tables, &tables);
        let d = &mut c.decisions;
        merge(&mut d.classes, &decisions.classes);
        merge(&mut d.masked, &decisions.masked);
        merge(&mut d.row_filters, &decisions.row_filters);
        match &result {
            Ok(_) => {
                let produced = cached_at.unwrap_or(ran_at);
                c.as_of = Some(c.as_of.map_or(produced, |t| t.min(produced)));
                c.cached |= cached_at.is_some();
            }
            Err(WarehouseError::Busy(_)) => c.overloaded = true,
            Err(_) => {}
        }
    }
    Ok(result?)
}

/// Adds the values of `new` that `all` lacks, keeping order.
fn merge(all: &mut Vec<String>, new: &[String]) {
    for v in new {
        if !all.contains(v) {
            all.push(v.clone());
        }
    }
}
