//! The language-model path: plan → act → answer with declared tools only.
//!
//! Each step the model proposes one [`Action`] (a schema-constrained JSON
//! plan or a native tool call, per [`PlanMode`]); the agent decides what
//! runs. Documentation and metric actions end with the deterministic
//! answers (extractive quotes, semantic-layer numbers); `run_sql` goes
//! through the guard, and only its result is handed back to the model to
//! be written up as prose, which the grounding check then verifies. A guard
//! rejection, SQL error or malformed step is fed back for at most
//! `max_repairs` corrections; the whole question may use at most
//! `max_steps` planning calls.

use async_openai::types::chat::ChatCompletionRequestMessage;
use serde::Serialize;
use serde_json::json;

use super::conversation::Turn;
use super::progress::{self, Progress};
use super::tools::{Action, Toolbox, parse_call, parse_plan, tidy};
use super::{Answer, AnswerKind, DataTable, KeyNumber, Orchestrator, StepError, planner, prompt};
use crate::llm::messages::{self as msg, Echo};
use crate::llm::{Format, LlmClient, LlmError, PlanMode, Usage};
use crate::policy::{Capability, Grants, Principal};
use crate::sql::{Origin, ValidatedSql, validate};
use crate::warehouse::ResultSet;

/// Rows of a result shown to the model when it writes the answer.
pub const ROWS_FOR_PROSE: usize = 20;
/// The LIMIT the prompt asks for on long lists.
pub const PROMPT_ROW_LIMIT: usize = 50;

/// How the model was used for one answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlmUse {
    /// Model name.
    pub model: String,
    /// Plan mode.
    pub mode: PlanMode,
    /// Model calls made (plan steps and the answer).
    pub calls: u32,
    /// Tools the model used, in order.
    pub tools: Vec<&'static str>,
    /// Corrections fed back (guard rejections, SQL errors, malformed steps).
    pub repairs: u32,
    /// Tokens and cost.
    pub usage: Usage,
    /// SQL candidates the model wrote (the `sql` path; 0 on the plan path).
    pub candidates: u32,
    /// Share of candidates whose result equals the answer's (the `sql` path).
    pub agreement: Option<f64>,
    /// Statements the guard or the warehouse refused this turn.
    pub failed: u32,
}

impl LlmUse {
    /// A record of a question's model use: nothing yet but `tools`.
    pub fn start(settings: &crate::llm::LlmSettings, tools: Vec<&'static str>) -> LlmUse {
        LlmUse {
            model: settings.model.clone(),
            mode: settings.mode,
            calls: 0,
            tools,
            repairs: 0,
            usage: Usage::default(),
            candidates: 0,
            agreement: None,
            failed: 0,
        }
    }
}

impl Orchestrator {
    /// Answers `question` with the model. Never returns an ungrounded
    /// answer on its own: the caller applies the grounding check.
    ///
    /// # Errors
    /// [`LlmError`] when the model cannot be reached or its prompts cannot
    /// be rendered; the caller degrades to the deterministic planner.
    pub(super) async fn agent(
        &self,
        llm: &LlmClient,
        principal: &Principal,
        grants: &Grants,
        question: &str,
        history: &[Turn],
    ) -> Result<Answer, LlmError> {
        let settings = llm.settings();
        let mut trace = LlmUse::start(settings, Vec::new());
        let can_sql = grants.can(Capability::Sql);
        let linked: String = history
            .iter()
            .map(|t| t.question.as_str())
            .chain([question])
            .collect::<Vec<_>>()
            .join(" ");
        let tables = prompt::allowed_tables(&self.policy, grants, &linked, &[]);
        let mut toolbox = Toolbox {
            metrics: self.semantic.metrics().map(|m| m.name.clone()).collect(),
            tables: tables.iter().map(|t| t.name.clone()).collect(),
            sql: can_sql,
            // The same ACL groups documentation search filters by.
            docs: self.docs.any_readable(&principal.acl_groups()),
            used: Vec::new(),
        };
        // Statements the guard or the warehouse already refused this turn:
        // never sent again, whatever the model proposes.
        let mut refused: Vec<String> = Vec::new();
        let dialect = self.warehouse.dialect();
        let verified = self.verified.all();
        let examples = if can_sql {
            prompt::pick_examples(&verified, question, |sql| {
                validate(sql, dialect, &self.policy, grants, Origin::AdHoc).is_ok()
            })
        } else {
            Vec::new()
        };
        let render = |name: &str, ctx: serde_json::Value| {
            self.prompts.render(name, ctx).map_err(LlmError::Failed)
        };
        let system = render(
            "system",
            json!({
                "user": principal.user,
                "roles": principal.roles,
                "today": self.as_of.to_string(),
                "dialect": dialect.to_string(),
                "dialect_notes": prompt::dialect_notes(dialect),
                "can_sql": can_sql,
                "row_limit": PROMPT_ROW_LIMIT,
                "metrics": prompt::metric_catalogue(&self.semantic),
                "docs": toolbox.docs,
                "tables": tables,
            }),
        )?;
        let opening = render(
            "question",
            json!({ "question": question, "history": history, "examples": examples }),
        )?;
        let mut messages = vec![msg::system(system), msg::user(opening)];
        for step in 1..=settings.max_steps {
            let format = match settings.mode {
                PlanMode::Json => Format::Json {
                    name: "plan_step",
                    schema: toolbox.plan_schema(),
                },
                PlanMode::Tools => Format::Tools(toolbox.specs()),
            };
            progress::report(Progress::Thinking { step });
            let reply = llm.complete(&messages, &format).await?;
            trace.calls += 1;
            trace.usage.add(&reply.usage);
            let (parsed, echo) = match (settings.mode, reply.tool_calls.into_iter().next()) {
                (PlanMode::Tools, Some(call)) => (parse_call(&call), Echo::Call(call)),
                (_, _) => {
                    let text = reply.content.unwrap_or_default();
                    (parse_plan(&text), Echo::Text(text))
                }
            };
            let call_id = match &echo {
                Echo::Call(c) => Some(c.id.clone()),
                Echo::Text(_) => None,
            };
            messages.push(msg::assistant(echo));
            let action = match parsed {
                Ok(a) => tidy(a),
                Err(e) => {
                    tracing::info!(step, "llm step malformed");
                    if !self.feed_back(
                        &mut messages,
                        &mut trace,
                        "plan",
                        &e,
                        call_id,
                        settings.max_repairs,
                    )? {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(step, tool = action.name(), "llm step");
            trace.tools.push(action.name());
            toolbox.record(&action);
            let (result, failed) = match action {
                Action::Refuse { reason } => {
                    let mut a = Answer::refusal(
                        format!("I can't answer that: {}", reason.trim_end_matches('.')),
                        reason,
                    );
                    a.suggestions = self.suggestions();
                    return Ok(with_trace(a, trace));
                }
                Action::ListMetrics {} => (self.metric_list(), false),
                Action::DescribeSchema { table } => {
                    match prompt::allowed_tables(&self.policy, grants, "", &[])
                        .into_iter()
                        .find(|t| t.name == table)
                    {
                        Some(t) => (serde_json::to_string(&t).unwrap_or_default(), false),
                        None => (
                            format!("there is no table named {table:?} that you can read"),
                            true,
                        ),
                    }
                }
                Action::SearchDocs { query } => {
                    let a = self.docs_answer(principal, grants, &query).await;
                    if a.kind == AnswerKind::Docs {
                        return Ok(with_trace(a, trace));
                    }
                    ("no document covers that".to_owned(), false)
                }
                Action::QueryMetric {
                    metric,
                    period,
                    group_by,
                    grain,
                } => {
                    let ctx = self.plan_context();
                    match planner::metric_call(
                        &ctx,
                        question,
                        &metric,
                        period.as_deref(),
                        group_by.as_deref(),
                        grain.as_deref(),
                    ) {
                        Ok(plan) => {
                            let a = self.metric(grants, &plan).await;
                            return Ok(with_trace(a, trace));
                        }
                        Err(e) => (e, true),
                    }
                }
                Action::RunSql { sql } if refused.contains(&normalized_sql(&sql)) => (
                    "that statement was already refused; write a different one or refuse".into(),
                    true,
                ),
                Action::RunSql { sql } => match self.run_sql(grants, &sql).await {
                    Ok((validated, result)) => {
                        let a = self
                            .sql_answer(Some(llm), question, &validated, result, Some(&mut trace))
                            .await;
                        return Ok(with_trace(a, trace));
                    }
                    Err(e) => {
                        // A failing audit trail is not the model's to repair.
                        if trace.repairs >= settings.max_repairs || matches!(e, StepError::Audit(_))
                        {
                            trace.failed += u32::from(!matches!(e, StepError::Audit(_)));
                            let a = self.step_failed(Answer::new(AnswerKind::Sql, ""), e);
                            return Ok(with_trace(a, trace));
                        }
                        refused.push(normalized_sql(&sql));
                        trace.failed += 1;
                        (repair_hint(&e), true)
                    }
                },
            };
            let tool = trace.tools.last().copied().unwrap_or("tool");
            if failed {
                if !self.feed_back(
                    &mut messages,
                    &mut trace,
                    tool,
                    &result,
                    call_id,
                    settings.max_repairs,
                )? {
                    break;
                }
            } else {
                let text = render(
                    "tool_result",
                    json!({ "tool": tool, "result": result, "error": false, "repairs_left": 0 }),
                )?;
                messages.push(msg::tool_result(text, call_id));
            }
        }
        let mut a = Answer::refusal(
            "I could not work out how to answer that from the data I can read. Try naming a metric, a table or a period.",
            "the language model found no answer within its step and correction budget",
        );
        a.suggestions = self.suggestions();
        Ok(with_trace(a, trace))
    }

    /// The answer to a verified question asked as written (ignoring case and
    /// punctuation): its checked SQL runs through the guard under the asker's
    /// grants, with prose from the model when there is one. `None` when no
    /// verified question matches, the asker may not run SQL, or the guard
    /// refuses it for them.
    pub(super) async fn verified_answer(
        &self,
        llm: Option<&LlmClient>,
        grants: &Grants,
        question: &str,
    ) -> Option<Answer> {
        if !grants.can(Capability::Sql) {
            return None;
        }
        let v = self.verified.find(question)?;
        let (validated, result) = self.run_sql(grants, &v.sql).await.ok()?;
        tracing::info!("verified query matched");
        let mut trace = llm.map(|l| LlmUse::start(l.settings(), vec!["verified_query"]));
        let mut a = self
            .sql_answer(llm, question, &validated, result, trace.as_mut())
            .await;
        a.queries[0].purpose = "verified query".into();
        a.llm = trace;
        Some(a)
    }

    /// Feeds an error back for a correction; `false` when the budget is spent.
    fn feed_back(
        &self,
        messages: &mut Vec<ChatCompletionRequestMessage>,
        trace: &mut LlmUse,
        tool: &str,
        error: &str,
        call_id: Option<String>,
        max_repairs: u32,
    ) -> Result<bool, LlmError> {
        if trace.repairs >= max_repairs {
            return Ok(false);
        }
        trace.repairs += 1;
        let text = self
            .prompts
            .render(
                "tool_result",
                json!({
                    "tool": tool,
                    "result": error,
                    "error": true,
                    "repairs_left": max_repairs - trace.repairs,
                }),
            )
            .map_err(LlmError::Failed)?;
        messages.push(msg::tool_result(text, call_id));
        Ok(true)
    }

    /// The answer to a statement that ran: the table, and prose the model
    /// writes from the first [`ROWS_FOR_PROSE`] rows (a plain sentence when
    /// the model fails or the result is empty).
    pub(super) async fn sql_answer(
        &self,
        llm: Option<&LlmClient>,
        question: &str,
        validated: &ValidatedSql,
        result: ResultSet,
        trace: Option<&mut LlmUse>,
    ) -> Answer {
        let mut a = Answer::new(AnswerKind::Sql, String::new());
        a.ran(
            "SQL proposed by the language model",
            validated,
            result.rows.len(),
        );
        a.interpretation = super::interpret::of_sql(validated.sql(), validated.dialect());
        if let ([value], [row]) = (result.columns.as_slice(), result.rows.as_slice())
            && let Some(v) = row.first().and_then(serde_json::Value::as_f64)
        {
            a.key_numbers.push(KeyNumber {
                label: value.clone(),
                value: v,
                formatted: super::format_value(v, crate::semantic::ValueFormat::Number),
            });
        }
        a.data = DataTable {
            columns: result.columns,
            rows: result.rows,
        };
        if a.data.rows.is_empty() {
            a.answer = "The query returned no rows, so there is nothing to report for that.".into();
            return a;
        }
        let Some(llm) = llm else {
            a.answer = match a.key_numbers.first() {
                Some(k) if a.data.rows.len() == 1 => format!("The result is {}.", k.formatted),
                _ if a.data.rows.len() == 1 => "The query returned one row.".into(),
                _ => format!("The query returned {} rows.", a.data.rows.len()),
            };
            return a;
        };
        let table = csv_preview(&a.data, ROWS_FOR_PROSE);
        let rendered = self.prompts.render("answer", ()).and_then(|system| {
            let input = self.prompts.render(
                "answer_input",
                json!({
                    "question": question,
                    "table": table,
                    "total_rows": a.data.rows.len(),
                    "shown_rows": a.data.rows.len().min(ROWS_FOR_PROSE),
                }),
            )?;
            Ok((system, input))
        });
        progress::report(Progress::Writing);
        let prose = match rendered {
            Ok((system, input)) => {
                let messages = [msg::system(system), msg::user(input)];
                match llm.stream_text(&messages, |_| {}).await {
                    Ok(reply) => {
                        if let Some(t) = trace {
                            t.calls += 1;
                            t.usage.add(&reply.usage);
                        }
                        reply.content.unwrap_or_default().trim().to_owned()
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "answer prose failed; showing the table");
                        String::new()
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "answer prompt failed");
                String::new()
            }
        };
        a.answer = if prose.is_empty() {
            "Here is the result of the query.".into()
        } else {
            prose
        };
        a
    }

    /// The metric catalogue, one line per metric (the system prompt already
    /// describes each; this keeps the look-up short for small models).
    fn metric_list(&self) -> String {
        prompt::metric_catalogue(&self.semantic)
            .iter()
            .map(|m| format!("{}: dimensions {}", m.name, m.dimensions.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the model is told about a failed statement: the guard's or
/// warehouse's reason, which names tables, columns and rules, never values.
pub(super) fn repair_hint(e: &StepError) -> String {
    match e {
        StepError::Guard(r) => format!("the SQL guard rejected the statement: {r}"),
        StepError::Semantic(s) => format!("the metric query failed: {s}"),
        StepError::Warehouse(w) => format!("the warehouse reported an error: {w}"),
        StepError::Audit(_) => "the statement could not be recorded, so it did not run".into(),
    }
}

/// A statement with whitespace runs collapsed, for recognising a resubmission.
pub(super) fn normalized_sql(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn with_trace(mut a: Answer, trace: LlmUse) -> Answer {
    a.llm = Some(trace);
    a
}

/// The first `n` rows as CSV-like lines (values as JSON scalars).
fn csv_preview(data: &DataTable, n: usize) -> String {
    let mut out = data.columns.join(",");
    for row in data.rows.iter().take(n) {
        out.push('\n');
        let cells: Vec<String> = row
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.replace(['\n', ','], " "),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        out.push_str(&cells.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_is_bounded_and_flattens_text() {
        let data = DataTable {
            columns: vec!["a".into(), "b".into()],
            rows: (0..30)
                .map(|i| vec![serde_json::json!(i), serde_json::json!("x,\ny")])
                .collect(),
        };
        let p = csv_preview(&data, 5);
        assert_eq!(p.lines().count(), 6);
        assert_eq!(p.lines().nth(1), Some("0,x  y"));
    }
}
