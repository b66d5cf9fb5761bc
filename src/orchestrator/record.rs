//! The question's audit event: [`Orchestrator::audited`] answers inside a
//! question scope (each statement's event is written as it runs) and writes
//! the question's event before the answer may leave.

use super::{Answer, AnswerKind, AskError, Orchestrator};
use crate::audit::scope::{QuestionScope, result_hash};
use crate::audit::{AuditEvent, Cause, Channel, EventKind};
use crate::policy::Principal;

impl Orchestrator {
    /// Answers inside a question scope (statements are audited as they run)
    /// and writes the question's audit event before returning the answer.
    /// When work was turned away for lack of capacity, the event's outcome is
    /// `overloaded` and no answer is returned. With a `cause`, the events
    /// name the human who caused the run, its purpose and parent event
    /// ([`Cause`]); the answer is still computed under `principal`'s grants.
    pub(super) async fn audited(
        &self,
        principal: &Principal,
        channel: Channel,
        question: &str,
        conversation: Option<&str>,
        fresh: bool,
        cause: Option<&Cause>,
    ) -> Result<Answer, AskError> {
        let scope = QuestionScope::new(principal, channel)
            .fresh(fresh)
            .caused_by(cause.cloned());
        let handle = scope.clone();
        let started = std::time::Instant::now();
        let work = async {
            let mut answer = self.answer(principal, question, conversation).await;
            let collected = handle.collected();
            answer.as_of = collected.as_of;
            answer.cached = collected.cached;
            answer.event_id = Some(handle.id.clone());
            let mut event = AuditEvent::new(
                EventKind::Question,
                handle.recorded_user(),
                &principal.roles,
                handle.recorded_channel(),
            );
            event.id = handle.id.clone();
            if let Some(c) = handle.cause() {
                event.purpose = Some(c.purpose.clone());
                event.parent = c.parent.clone();
            }
            event.question = Some(crate::redact::redact(question).into_owned());
            event.plan = serde_json::to_value(answer.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            event.tables = collected.tables;
            event.decisions = collected.decisions;
            event.decisions.denied = collected.denied;
            event.statements = collected.statements;
            event.rows = Some(answer.data.rows.len() as u64);
            event.result_hash = Some(result_hash(&answer.data.columns, &answer.data.rows));
            event.duration_ms = Some(started.elapsed().as_millis() as u64);
            if let Some(llm) = &answer.llm {
                crate::prometheus::llm_tokens(llm.usage.prompt_tokens, llm.usage.completion_tokens);
                event.tools = llm.tools.iter().map(|t| (*t).to_owned()).collect();
                event.llm = Some(crate::audit::event::ModelUse {
                    model: llm.model.clone(),
                    prompt_tokens: llm.usage.prompt_tokens,
                    completion_tokens: llm.usage.completion_tokens,
                });
            }
            event.outcome = if collected.overloaded {
                "overloaded".into()
            } else if answer.kind == AnswerKind::Refusal {
                "refused".into()
            } else {
                "answered".into()
            };
            event.detail = answer
                .reason
                .as_deref()
                .map(|r| serde_json::json!({ "reason": crate::redact::redact(r) }));
            self.audit.append(event).await?;
            if collected.overloaded {
                crate::prometheus::shed("busy");
                return Err(AskError::Overloaded {
                    retry_after_secs: self.retry_after_secs,
                });
            }
            Ok(answer)
        };
        crate::redact::with_request_scope(scope.run(work)).await
    }
}
