//! Orchestration: plan → act → answer.
//!
//! The deterministic [`planner`] recognises metric questions, the KPI
//! overview, listings and documentation questions; with a language model
//! configured, the rest go to the [`agent`] (or, with `llm.route =
//! "always"`, everything does). Either way this module runs the plan
//! through the semantic layer, the guard and the warehouse and writes the
//! answer. Every number in an answer is read from a query result or
//! computed from such numbers (deltas, shares), which [`grounding`] checks;
//! when a query returns nothing the answer says so instead of guessing.
//! With no model, or the model down, the planner answers what it can and
//! says what would need the model.

mod agent;
mod answer;
mod catalogue;
pub mod conversation;
mod docs;
mod drop;
pub mod grounding;
pub mod interpret;
mod listing;
mod meaning;
mod metric;
mod overview;
pub mod planner;
pub mod progress;
pub mod prompt;
mod record;
pub mod rerun;
pub mod sqlgen;
pub use sqlgen::link;
mod subject;
pub mod timephrase;
pub mod tools;
pub mod verified;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

pub use agent::LlmUse;
pub use answer::{
    Answer, AnswerKind, Citation, DataTable, KeyNumber, QueryRun, format_value, group_digits,
};
use planner::Plan;

use crate::audit::scope::{RunError, run_statement};
use crate::audit::{AuditError, AuditLog, Cause, Channel};
use crate::llm::{LlmClient, LlmError, Route};
use crate::policy::{Grants, Policy, Principal};
use crate::retrieval::Retriever;
use crate::semantic::{CompiledQuery, MetricQuery, SemanticError, SemanticLayer};
use crate::sql::{Origin, Rejection, ValidatedSql, validate};
use crate::warehouse::{ResultSet, Warehouse, WarehouseError};

/// Dimensions with more distinct values than this are not catalogued.
pub const MAX_DIMENSION_VALUES: u64 = 100;

/// Metrics shown by the KPI overview, when defined.
const OVERVIEW_METRICS: [&str; 6] = [
    "dau",
    "signups",
    "revenue",
    "checkout_conversion_rate",
    "active_customers",
    "tickets_opened",
];

/// Why one step of a plan failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The guard refused the statement.
    #[error(transparent)]
    Guard(#[from] Rejection),
    /// The semantic layer could not compile the query.
    #[error(transparent)]
    Semantic(#[from] SemanticError),
    /// The warehouse failed.
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    /// The audit trail could not record the statement, so it did not run.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

impl From<RunError> for StepError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Audit(a) => StepError::Audit(a),
            RunError::Warehouse(w) => StepError::Warehouse(w),
        }
    }
}

/// Why a question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// The question's audit event could not be written, so the answer is
    /// withheld (no answer leaves that the audit trail lacks).
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A statement or model slot did not free up within the queue timeout;
    /// the client should retry after about this many seconds.
    #[error("steward is busy; try again in {retry_after_secs} s")]
    Overloaded {
        /// Seconds to wait before retrying.
        retry_after_secs: u64,
    },
}

/// How often an instance asks steward's database for verified queries
/// approved elsewhere (one `MAX(version)` query).
const VERIFIED_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything needed to answer questions.
pub struct Orchestrator {
    /// The access policy.
    pub policy: Arc<Policy>,
    /// Metrics.
    pub semantic: Arc<SemanticLayer>,
    /// Where validated statements run.
    pub warehouse: Arc<dyn Warehouse>,
    /// Documentation search.
    pub docs: Arc<Retriever>,
    /// What "today" means.
    pub as_of: NaiveDate,
    /// Distinct values of public categorical dimensions (see
    /// [`Orchestrator::load_dimension_values`]), for recognising filters.
    pub dimension_values: BTreeMap<String, Vec<String>>,
    /// Conversation state for follow-ups (in steward's database).
    pub conversations: conversation::ConversationStore,
    /// The language model, if configured.
    pub llm: Option<Arc<LlmClient>>,
    /// Prompt templates.
    pub prompts: Arc<prompt::Prompts>,
    /// Verified question → SQL pairs: the file's and those approved in the
    /// review queue (answers to questions asked as written, and few-shot
    /// examples).
    pub verified: Arc<verified::VerifiedSet>,
    /// The audit trail every statement and question is written to first.
    pub audit: AuditLog,
    /// Sampled public values and column kinds for text-to-SQL prompts,
    /// read on first use.
    pub samples: tokio::sync::OnceCell<link::SchemaSample>,
    /// What a question turned away as busy tells the client to wait, in
    /// seconds (`Retry-After`).
    pub retry_after_secs: u64,
}

/// Questions that ask for figures (counts, rankings, totals) rather than
/// meanings; without a metric they need SQL, so the model.
pub(super) static DATA_QUESTION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(
    || {
        regex::Regex::new(
        r"(?i)\b(how many|how much|number of|count|total|sum of|average|avg|mean|median|top \d+|most|least|highest|lowest|biggest|largest|smallest|per|by|each|list|show|which \w+ (have|has|had|did|are|is|were))\b",
    )
    .expect("valid regex")
    },
);

/// Breakdown and ranking words; a metric plan that captured no dimension or
/// grain for them has probably missed part of the question.
static BREAKDOWN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(each|per|by|which|who|top|most|least|highest|lowest|rank|ranking|list)\b",
    )
    .expect("valid regex")
});

impl Orchestrator {
    /// A copy that answers with `verified` in force and no language model
    /// (the review loop's regression run, [`crate::review::regression`]);
    /// it shares the warehouse, audit trail and everything else.
    pub fn variant(&self, verified: verified::VerifiedSet) -> Orchestrator {
        Orchestrator {
            policy: self.policy.clone(),
            semantic: self.semantic.clone(),
            warehouse: self.warehouse.clone(),
            docs: self.docs.clone(),
            as_of: self.as_of,
            dimension_values: self.dimension_values.clone(),
            conversations: self.conversations.clone(),
            llm: None,
            prompts: self.prompts.clone(),
            verified: Arc::new(verified),
            audit: self.audit.clone(),
            samples: self.samples.clone(),
            retry_after_secs: self.retry_after_secs,
        }
    }

    /// Answers a one-off question for a principal asking through `channel`.
    /// Problems become refusals or plain error sentences in the answer.
    ///
    /// # Errors
    /// [`AskError::Audit`] when the question's audit event cannot be written:
    /// the answer is withheld (no answer leaves that the audit trail lacks);
    /// [`AskError::Overloaded`] when work was turned away for lack of capacity.
    pub async fn ask(
        &self,
        principal: &Principal,
        channel: Channel,
        question: &str,
    ) -> Result<Answer, AskError> {
        self.audited(principal, channel, question, None, false, None)
            .await
    }

    /// Answers a question as the next turn of a conversation: a follow-up
    /// ("and the week before?") continues the previous metric question.
    ///
    /// # Errors
    /// As [`Orchestrator::ask`].
    pub async fn ask_in(
        &self,
        principal: &Principal,
        channel: Channel,
        conversation: &str,
        question: &str,
    ) -> Result<Answer, AskError> {
        self.audited(
            principal,
            channel,
            question,
            Some(conversation),
            false,
            None,
        )
        .await
    }

    /// [`Orchestrator::ask_in`], where `fresh` runs every statement on the
    /// warehouse instead of serving it from the result cache (for admins:
    /// callers check who may ask for it).
    ///
    /// # Errors
    /// As [`Orchestrator::ask`].
    pub async fn ask_fresh_in(
        &self,
        principal: &Principal,
        channel: Channel,
        conversation: &str,
        question: &str,
        fresh: bool,
    ) -> Result<Answer, AskError> {
        self.audited(
            principal,
            channel,
            question,
            Some(conversation),
            fresh,
            None,
        )
        .await
    }

    /// Answers `question` under `principal`'s grants for a run someone else
    /// caused (a regression run, a delivery, a pin's run): every event of it
    /// names `cause`'s user, channel, purpose and parent instead of the
    /// principal ([`Cause`]).
    ///
    /// # Errors
    /// As [`Orchestrator::ask`].
    pub async fn ask_caused(
        &self,
        principal: &Principal,
        cause: &Cause,
        conversation: Option<&str>,
        question: &str,
    ) -> Result<Answer, AskError> {
        self.audited(
            principal,
            cause.channel,
            question,
            conversation,
            false,
            Some(cause),
        )
        .await
    }

    #[tracing::instrument(name = "orchestrator.ask", skip_all, fields(user = %principal.user))]
    async fn answer(
        &self,
        principal: &Principal,
        question: &str,
        conversation: Option<&str>,
    ) -> Answer {
        let grants = self.policy.grants(principal);
        if self.verified.due(VERIFIED_REFRESH) {
            let store = crate::review::ReviewStore::new(self.audit.database().clone());
            if let Err(e) = crate::review::refresh(self, &store).await {
                tracing::warn!(error = %e, "approved verified queries not refreshed");
            }
        }
        if let Some(a) = self
            .verified_answer(self.llm.as_deref(), &grants, question)
            .await
        {
            return grounding::enforce(a, question);
        }
        let remembered = match conversation {
            Some(c) => self.conversations.get(&principal.user, c).await,
            None => conversation::Conversation::default(),
        };
        let history: Vec<conversation::Turn> = remembered.turns.iter().cloned().collect();
        let previous = remembered.metric;
        let ctx = self.plan_context();
        let mut plan = planner::plan(question, &ctx, previous.as_ref());
        if let Plan::Unclear {
            words,
            plan: Some(metric_plan),
            ..
        } = &plan
            && self.adds_nothing(question, words, metric_plan).await
        {
            plan = Plan::Metric((**metric_plan).clone());
        }
        tracing::info!(
            plan = plan_name(&plan),
            follow_up = previous.is_some(),
            "planned"
        );
        progress::report(progress::Progress::Planned {
            plan: plan_name(&plan),
        });
        let route = self.llm.as_ref().map(|l| l.settings().route);
        let after_model = history.last().is_some_and(|t| t.by_model);
        // "How is cost per acquisition calculated?" asks what a figure
        // means, "which dashboard shows revenue by plan?" where to see it:
        // neither asks for the figure.
        let data_question = DATA_QUESTION.is_match(question)
            && !planner::REFERENCE.is_match(&planner::normalize(question));
        let to_model = match (&plan, route) {
            (_, Some(Route::Always)) => true,
            (Plan::Unclear { .. }, Some(_)) => data_question,
            (Plan::Docs, _) => data_question || (after_model && route.is_some()),
            (Plan::Metric(m), _) => {
                m.group_by.is_none() && m.grain.is_none() && BREAKDOWN.is_match(question)
            }
            _ => false,
        };
        let metric_plan = match &plan {
            Plan::Metric(m) => Some(m.clone()),
            _ => None,
        };
        let mut answer = if to_model {
            self.model_or_degrade(principal, &grants, question, &history, data_question)
                .await
        } else {
            match plan {
                Plan::Refuse(reason) => {
                    let mut a = Answer::refusal(format!("I can't answer that: {reason}."), reason);
                    a.suggestions = self.suggestions();
                    a
                }
                Plan::Overview => self.overview(&grants).await,
                Plan::Metric(m) => self.metric(&grants, &m).await,
                Plan::Drop { metric, day } => drop::explain(self, &grants, &metric, day).await,
                Plan::List(l) => listing::list(self, &grants, &l).await,
                Plan::Docs => self.docs_answer(principal, &grants, question).await,
                // Not asking for figures ("when is the signup event
                // tracked?"): the documentation may answer it.
                Plan::Unclear { metric, words, .. } => {
                    let docs = if data_question {
                        None
                    } else {
                        Some(self.docs_answer(principal, &grants, question).await)
                    };
                    if let Some(docs) = docs.filter(|d| d.kind == AnswerKind::Docs) {
                        docs
                    } else if route.is_some() {
                        self.model_or_degrade(principal, &grants, question, &history, data_question)
                            .await
                    } else {
                        self.unclear(&metric, &words)
                    }
                }
            }
        };
        if route.is_some() && !to_model && answer.reason.as_deref() == Some(docs::NO_COVERAGE) {
            answer = self
                .model_or_degrade(principal, &grants, question, &history, data_question)
                .await;
        }
        if let Some(c) = conversation {
            let turn = conversation::Turn {
                question: question.to_owned(),
                sql: answer.queries.last().map(|q| q.sql.clone()),
                by_model: answer.llm.is_some(),
            };
            let metric = match (metric_plan, &answer.llm) {
                (Some(m), None) => Some(Some(m)),
                (_, Some(_)) => Some(None),
                (None, None) => None,
            };
            self.conversations
                .record_turn(&principal.user, c, turn, metric)
                .await;
        }
        grounding::enforce(answer, question)
    }

    /// Context for the deterministic planner.
    fn plan_context(&self) -> planner::PlanContext<'_> {
        planner::PlanContext {
            today: self.as_of,
            policy: &self.policy,
            layer: &self.semantic,
            values: &self.dimension_values,
        }
    }

    /// The model's answer, or — with no model or the model failing — the
    /// documentation's (not for questions asking for figures) or a refusal
    /// saying what would have needed the model.
    async fn model_or_degrade(
        &self,
        principal: &Principal,
        grants: &Grants,
        question: &str,
        history: &[conversation::Turn],
        data_question: bool,
    ) -> Answer {
        let why = match &self.llm {
            Some(llm) => match self.model(llm, principal, grants, question, history).await {
                Ok(a) => return a,
                Err(e) => {
                    tracing::warn!(error = %e, "language model failed; degrading");
                    e
                }
            },
            None => LlmError::NotConfigured,
        };
        let mut fallback = self.docs_answer(principal, grants, question).await;
        if !data_question && fallback.kind != AnswerKind::Refusal {
            fallback.notes.push(match why {
                LlmError::NotConfigured => "Answered from the documentation only: no language model is configured to write a query.".to_owned(),
                _ => "Answered from the documentation only: the language model is unavailable.".to_owned(),
            });
            return fallback;
        }
        let mut a = Answer::refusal(
            format!(
                "I can't answer that right now: it needs a query written for it, and {}. I can still answer questions about named metrics and the documentation.",
                match why {
                    LlmError::NotConfigured => "no language model is configured",
                    _ => "the language model is unavailable",
                }
            ),
            "needs the language model",
        );
        a.suggestions = self.suggestions();
        a
    }

    /// The model's answer by the configured path: text-to-SQL for askers
    /// with the `sql` capability when `llm.path = "sql"`, else tool plans.
    async fn model(
        &self,
        llm: &LlmClient,
        principal: &Principal,
        grants: &Grants,
        question: &str,
        history: &[conversation::Turn],
    ) -> Result<Answer, LlmError> {
        let sql_path = llm.settings().path == crate::llm::LlmPath::Sql
            && grants.can(crate::policy::Capability::Sql);
        // A question about something the asker cannot read is refused
        // before a model writes a query for it (`subject.rs`); on the plan
        // path, where the model may also search the documentation, a
        // subject a readable document names is not refused. Follow-ups
        // take their subject from the conversation.
        if history.is_empty()
            && let Some(subject) = self.unmatched_subject(grants, question).await
            && (sql_path || !self.documented(principal, &subject).await)
        {
            return Ok(subject::refusal(self, &subject));
        }
        // Boxed: both state machines are large (debug builds especially),
        // and every future awaiting this one would carry them inline.
        if sql_path {
            Box::pin(self.sqlgen(llm, grants, question, history)).await
        } else {
            Box::pin(self.agent(llm, principal, grants, question, history)).await
        }
    }

    /// The refusal for a question that names a metric but asks more than
    /// it: which words steward did not understand, what the metric is, and
    /// questions about it steward can answer.
    fn unclear(&self, metric: &str, words: &[String]) -> Answer {
        let Some(def) = self.semantic.metric(metric) else {
            return Answer::refusal(
                "I have no data on that.",
                format!("no metric named {metric}"),
            );
        };
        let label = def.label().to_lowercase();
        let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        let mut a = Answer::refusal(
            format!(
                "I can't answer that exactly: I know {label}, but not what {} means here, and answering with {label} alone would answer a different question. It needs a query written for it, and no language model is configured.",
                quoted.join(", ")
            ),
            format!(
                "the question asks more than the metric {metric}: {}",
                words.join(", ")
            ),
        );
        let mut suggestions = vec![format!("{label} last week")];
        for d in self.semantic.dimensions_of(def).iter().take(2) {
            suggestions.push(format!("{label} by {} last month", d.words()[0]));
        }
        a.suggestions = suggestions;
        a
    }

    /// Questions people can ask, for refusals and the UI: the saved
    /// queries' questions the chat answers, then "<metric> last week".
    pub fn suggestions(&self) -> Vec<String> {
        let saved = self
            .semantic
            .saved_queries()
            .iter()
            .filter(|s| s.plan().is_ok())
            .map(|s| s.question.clone());
        let metrics = self
            .semantic
            .metrics()
            .map(|m| format!("{} last week", m.label().to_lowercase()));
        saved.chain(metrics).take(6).collect()
    }

    /// Compiles, validates and runs a metric query for `grants`.
    ///
    /// # Errors
    /// [`StepError`] from the semantic layer, the guard or the warehouse.
    pub async fn run_metric(
        &self,
        grants: &Grants,
        q: &MetricQuery,
    ) -> Result<(CompiledQuery, ValidatedSql, ResultSet), StepError> {
        progress::report(progress::Progress::RunningSql {
            what: q.metric.clone(),
        });
        let compiled = self.semantic.compile(q, self.warehouse.dialect())?;
        let validated = validate(
            &compiled.sql,
            self.warehouse.dialect(),
            &self.policy,
            grants,
            Origin::Metric,
        )
        .inspect(|_| crate::prometheus::guard_decision(true))
        .inspect_err(|r| {
            crate::prometheus::guard_decision(false);
            crate::audit::scope::note_denied(&r.to_string());
        })?;
        let mut result =
            run_statement(&self.audit, &*self.warehouse, &validated, &q.metric).await?;
        if result.columns.is_empty() {
            result.columns = compiled.columns.clone();
        }
        tracing::info!(metric.name = %q.metric, rows = result.rows.len(), "metric query done");
        Ok((compiled, validated, result))
    }

    /// Validates and runs ad-hoc SQL for `grants`.
    ///
    /// # Errors
    /// [`StepError`] from the guard or the warehouse.
    pub async fn run_sql(
        &self,
        grants: &Grants,
        sql: &str,
    ) -> Result<(ValidatedSql, ResultSet), StepError> {
        self.run_sql_within(grants, sql, None).await
    }

    /// [`Orchestrator::run_sql`] with the statement's timeout and row cap
    /// lowered to `limits` (milliseconds, rows) when given.
    ///
    /// # Errors
    /// As [`Orchestrator::run_sql`].
    pub(crate) async fn run_sql_within(
        &self,
        grants: &Grants,
        sql: &str,
        limits: Option<(u64, u64)>,
    ) -> Result<(ValidatedSql, ResultSet), StepError> {
        progress::report(progress::Progress::RunningSql {
            what: "listing".into(),
        });
        let validated = validate(
            sql,
            self.warehouse.dialect(),
            &self.policy,
            grants,
            Origin::AdHoc,
        )
        .inspect(|_| crate::prometheus::guard_decision(true))
        .inspect_err(|r| {
            crate::prometheus::guard_decision(false);
            crate::audit::scope::note_denied(&r.to_string());
        })?;
        let validated = match limits {
            Some((ms, rows)) => validated.tightened(ms, rows),
            None => validated,
        };
        let result = run_statement(&self.audit, &*self.warehouse, &validated, "ad-hoc SQL").await?;
        tracing::info!(rows = result.rows.len(), "sql query done");
        Ok((validated, result))
    }

    pub(crate) fn step_failed(&self, mut answer: Answer, e: StepError) -> Answer {
        // Guard and semantic errors name tables, columns and roles only;
        // warehouse messages may quote values, so only their kind is logged.
        match &e {
            StepError::Warehouse(w) => tracing::warn!(error.kind = w.kind(), "plan step failed"),
            StepError::Audit(a) => {
                tracing::error!(error = %a, "audit trail unavailable; statement not run")
            }
            other => tracing::warn!(error = %other, "plan step failed"),
        }
        let (text, reason) = match &e {
            StepError::Guard(r) => (format!("I can't run that for you: {r}."), r.to_string()),
            StepError::Semantic(s) => (format!("I can't compute that: {s}."), s.to_string()),
            StepError::Warehouse(WarehouseError::Timeout(_)) => (
                "The query took too long and was stopped.".into(),
                e.to_string(),
            ),
            StepError::Warehouse(_) => (
                "The warehouse could not answer right now; please try again later.".into(),
                "warehouse error".into(),
            ),
            StepError::Audit(_) => (
                "I could not record this query in the audit trail, so I did not run it. Please try again later.".into(),
                "audit trail unavailable".into(),
            ),
        };
        answer.kind = AnswerKind::Refusal;
        answer.answer = text;
        answer.reason = Some(reason);
        answer.key_numbers.clear();
        answer
    }
}

fn plan_name(p: &Plan) -> &'static str {
    match p {
        Plan::Metric(_) => "metric",
        Plan::Drop { .. } => "drop",
        Plan::Overview => "overview",
        Plan::List(_) => "list",
        Plan::Docs => "docs",
        Plan::Refuse(_) => "refuse",
        Plan::Unclear { .. } => "unclear",
    }
}
