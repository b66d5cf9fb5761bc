//! An admin's re-run of an audited statement: the stored SQL is validated
//! again by the guard under the admin's *current* grants (PII stays masked
//! unless the admin holds that grant too), runs as a new statement, and the
//! re-run is recorded as its own audit event (`kind = rerun`, `parent` = the
//! original statement, `purpose` = the admin's reason) before the result is
//! returned — to that admin only. Who may re-run (admin role, recent sign-in,
//! a reason) is checked by the caller (HTTP or CLI).

use super::Orchestrator;
use crate::audit::scope::{QuestionScope, RunError, result_hash, run_statement};
use crate::audit::{AuditError, AuditEvent, Channel, EventKind};
use crate::policy::Principal;
use crate::sql::{Origin, Rejection, validate};
use crate::warehouse::{ResultSet, WarehouseError};

/// Why a re-run produced no result.
#[derive(Debug, thiserror::Error)]
pub enum RerunError {
    /// No audit event has that id.
    #[error("no audited statement has that id")]
    NotFound,
    /// The event is not a statement (a question, a purge…).
    #[error("that audit event is a {0}, not a statement; re-run one of its statements")]
    NotAStatement(&'static str),
    /// The guard refuses the SQL under the admin's current grants (recorded).
    #[error("{0}")]
    Denied(Rejection),
    /// The audit trail failed (nothing ran, or the result is withheld).
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The warehouse failed.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
}

impl From<RunError> for RerunError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Audit(a) => RerunError::Audit(a),
            RunError::Warehouse(w) => RerunError::Warehouse(w),
        }
    }
}

/// A re-run's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RerunResult {
    /// The re-run's audit event id.
    pub rerun_id: String,
    /// The statement re-run.
    pub original_id: String,
    /// The SQL as the guard printed it under the admin's grants.
    pub sql: String,
    /// Columns masked for the admin.
    pub masked: Vec<String>,
    /// Column names.
    pub columns: Vec<String>,
    /// Rows (at most the admin's row cap).
    pub rows: Vec<Vec<serde_json::Value>>,
}

impl Orchestrator {
    /// Re-runs statement `id` for `admin` (already authorized by the caller)
    /// with `reason`.
    ///
    /// # Errors
    /// [`RerunError`]; a guard refusal is recorded before it is returned.
    pub async fn rerun(
        &self,
        admin: &Principal,
        channel: Channel,
        id: &str,
        reason: &str,
    ) -> Result<RerunResult, RerunError> {
        let original = self.audit.get(id).await?.ok_or(RerunError::NotFound)?;
        let sql = match (original.kind, &original.sql) {
            (EventKind::Statement, Some(sql)) => sql.clone(),
            (kind, _) => return Err(RerunError::NotAStatement(kind.as_str())),
        };
        // A re-run reads the warehouse as it is now, never a cached result.
        let scope = QuestionScope::new(admin, channel).fresh(true);
        let mut event = AuditEvent::new(EventKind::Rerun, &admin.user, &admin.roles, channel);
        event.id = scope.id.clone();
        event.parent = Some(original.id.clone());
        event.purpose = Some(crate::redact::redact(reason).into_owned());
        event.tables = original.tables.clone();
        let grants = self.policy.grants(admin);
        let validated = match validate(
            &sql,
            self.warehouse.dialect(),
            &self.policy,
            &grants,
            Origin::AdHoc,
        ) {
            Ok(v) => v,
            Err(r) => {
                event.outcome = "denied".into();
                event.decisions.denied = vec![r.to_string()];
                self.audit.append(event).await?;
                return Err(RerunError::Denied(r));
            }
        };
        let handle = scope.clone();
        let started = std::time::Instant::now();
        let result: ResultSet = crate::redact::with_request_scope(scope.run(run_statement(
            &self.audit,
            &*self.warehouse,
            &validated,
            "re-run",
        )))
        .await?;
        let collected = handle.collected();
        event.sql = Some(validated.sql().to_owned());
        event.decisions = collected.decisions;
        event.statements = collected.statements;
        event.rows = Some(result.rows.len() as u64);
        event.result_hash = Some(result_hash(&result.columns, &result.rows));
        event.duration_ms = Some(started.elapsed().as_millis() as u64);
        event.outcome = "ok".into();
        let event = self.audit.append(event).await?;
        Ok(RerunResult {
            rerun_id: event.id,
            original_id: original.id,
            sql: validated.sql().to_owned(),
            masked: validated.masked().to_vec(),
            columns: result.columns,
            rows: result.rows,
        })
    }
}
