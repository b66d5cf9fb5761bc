//! The benchmark baseline (`steward eval --baseline`).

use super::proposal::{Proposal, read_proposal};
use super::with_trace;
use super::{link, schema};
use crate::llm::LlmClient;
use crate::llm::messages as msg;
use crate::orchestrator::agent::LlmUse;
use crate::orchestrator::{Answer, Orchestrator, StepError};
use crate::policy::Grants;

impl Orchestrator {
    /// The benchmark baseline for `steward eval --baseline`, not a way
    /// steward answers, and the strongest simple method measured on
    /// Spider (docs/benchmarks.md): every readable table as the database
    /// declares it ([`schema::plain_schema`]: declared types, primary and
    /// foreign keys; no descriptions, values, inferred keys, examples or
    /// linking), the question, one greedy call answered in a fenced block,
    /// and the statement run through the guard and the audit trail.
    ///
    /// # Errors
    /// [`crate::audit::AuditError`] when the audit trail fails.
    pub async fn single_shot(
        &self,
        llm: &LlmClient,
        grants: &Grants,
        question: &str,
    ) -> Result<Answer, crate::audit::AuditError> {
        let sample = self.schema_sample().await;
        let tables = self.link_tables(grants);
        let keys = link::declared_keys(&tables, self.policy.foreign_keys(), sample);
        let schema = schema::plain_schema(&tables, &keys, sample);
        let dialect = self.warehouse.dialect();
        let messages = [
            msg::system(format!(
                "Write one {dialect} SELECT statement that answers the question. Reply with the SQL in a ```sql block."
            )),
            msg::user(format!(
                "{schema}
-- Question: {question}"
            )),
        ];
        let mut trace = LlmUse::start(llm.settings(), vec!["single_shot"]);
        trace.calls = 1;
        trace.candidates = 1;
        let proposal = match llm.samples(&messages, 1, 0.0).await {
            Ok(s) => {
                trace.usage = s.usage;
                s.texts.first().map(|t| read_proposal(t))
            }
            Err(e) => {
                let a = Answer::refusal(format!("The model failed: {e}"), e.to_string());
                return Ok(with_trace(a, trace));
            }
        };
        let Some(Proposal::Sql(sql)) = proposal else {
            return Ok(self.cannot_answer("the model wrote no statement", trace));
        };
        let a = match self.run_sql(grants, &sql).await {
            Ok((validated, result)) => {
                self.sql_answer(None, question, &validated, result, None)
                    .await
            }
            Err(StepError::Audit(a)) => return Err(a),
            Err(e) => {
                trace.failed = 1;
                self.step_failed(Answer::new(crate::orchestrator::AnswerKind::Sql, ""), e)
            }
        };
        Ok(with_trace(a, trace))
    }
}
