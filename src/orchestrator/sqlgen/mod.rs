//! Text-to-SQL for small models (`llm.path = "sql"`).
//!
//! The prompt holds the readable schema as the database declares it
//! (every table when it fits the budget, else the linked ones; see
//! [`schema`] and [`link`]), the verified queries most like the question
//! that the asker may run, and the dates the question's time phrases mean.
//! The model writes SQL in a fenced block. Several candidates come back
//! from one greedy and one sampled request, seeded (`llm.seed`); each
//! distinct statement goes through the guard and the warehouse under the
//! audit trail, failures are dropped, and the rest are grouped by equal
//! results: the largest group wins, ties to the statement joining fewer
//! tables
//! ([`select`]; execution-guided self-consistency: Wang et al. 2023,
//! "Self-Consistency Improves Chain of Thought Reasoning"; applied to SQL
//! by e.g. DIN-SQL and CHASE-SQL). When every candidate fails, one repair
//! round shows the model the error and, for a column on the wrong table,
//! the table that has it and the joins that reach it; a repair that
//! repeats a statement already refused is not run. The share of candidates
//! agreeing with the answer is reported, and a low share is labelled or
//! refused per `llm.low_agreement`.

use async_openai::types::chat::ChatCompletionRequestMessage;
use serde_json::json;

mod baseline;
pub mod link;
mod proposal;
mod sample;
pub mod schema;
mod select;

pub use proposal::{Proposal, read_proposal};

use crate::llm::messages as msg;
use crate::llm::{LlmClient, LlmError, LowAgreement};
use crate::orchestrator::agent::{LlmUse, normalized_sql as normalized};
use crate::orchestrator::conversation::Turn;
use crate::orchestrator::progress::{self, Progress};
use crate::orchestrator::{Answer, Orchestrator, StepError, planner, prompt, timephrase};
use crate::policy::{Access, ColumnClass, Grants};
use crate::sql::{Origin, validate};
use link::{ColumnInfo, TableInfo};
use sample::about;
use select::{Tried, distinct_proposals, largest_group};

/// Characters of `CREATE TABLE` text in one prompt (about 1,000 tokens).
pub const SCHEMA_BUDGET: usize = 3_600;
/// Verified examples in one prompt.
const EXAMPLES: usize = 2;

impl Orchestrator {
    /// The schema the text-to-SQL prompt for `linking_text` shows an asker
    /// with `grants` (see [`link::link`] and [`schema::prompt_schema`]).
    pub(super) async fn prompt_schema(
        &self,
        grants: &Grants,
        linking_text: &str,
    ) -> schema::PromptSchema {
        let sample = self.schema_sample().await;
        let tables = self.link_tables(grants);
        let keys = link::join_keys(&tables, self.policy.foreign_keys(), sample);
        let meaning = if sample.vectors.is_empty() {
            None
        } else {
            match self.docs.embed(vec![linking_text.to_owned()]).await {
                Some(Ok(mut v)) => v.pop(),
                _ => None,
            }
        };
        let linked = link::link(linking_text, meaning.as_deref(), &tables, &keys, sample);
        schema::prompt_schema(&tables, &linked, &keys, sample, SCHEMA_BUDGET)
    }

    /// The tables a text-to-SQL prompt for `question` would show an asker
    /// with `grants`, best-linked first (for scoring schema linking in
    /// `steward eval`).
    pub async fn prompt_tables(&self, grants: &Grants, question: &str) -> Vec<String> {
        self.prompt_schema(grants, question).await.tables
    }

    /// The readable schema as the linker sees it: denied columns left out,
    /// values shown only for public columns the asker reads in full.
    pub(super) fn link_tables(&self, grants: &Grants) -> Vec<TableInfo> {
        self.policy
            .visible_schema(grants)
            .into_iter()
            .filter(|(_, cols)| !cols.is_empty())
            .map(|(name, cols)| {
                let def = &self.policy.schema.tables[name];
                TableInfo {
                    name: name.to_owned(),
                    about: about(&def.description, &def.synonyms),
                    columns: cols
                        .into_iter()
                        .map(|(c, d)| ColumnInfo {
                            name: c.to_owned(),
                            about: about(&d.description, &d.synonyms),
                            masked: grants.access(d.class) != Access::Allow,
                            show_values: d.class == ColumnClass::Public
                                && grants.access(d.class) == Access::Allow,
                        })
                        .collect(),
                }
            })
            .collect()
    }

    /// Answers `question` by text-to-SQL with candidates (module docs).
    ///
    /// # Errors
    /// [`LlmError`] when the model cannot be reached or the prompt cannot be
    /// rendered; the caller degrades to the deterministic planner.
    pub(super) async fn sqlgen(
        &self,
        llm: &LlmClient,
        grants: &Grants,
        question: &str,
        history: &[Turn],
    ) -> Result<Answer, LlmError> {
        let settings = llm.settings();
        let mut trace = LlmUse::start(settings, vec!["write_sql"]);
        let messages = self.sql_prompt(grants, question, history).await?;
        let texts = self.sql_candidates(llm, &messages, &mut trace).await?;
        let total = texts.len().max(1) as u32;
        let (mut tried, cannot) = distinct_proposals(&texts);
        if cannot.len() as u32 * 2 > total {
            let why = cannot
                .into_iter()
                .find(|w| !w.is_empty())
                .unwrap_or_else(|| "the tables you can read do not hold that".to_owned());
            return Ok(self.cannot_answer(&why, trace));
        }
        let limits = (settings.candidate_timeout_ms, settings.candidate_max_rows);
        if let Err(a) = self.run_tried(grants, &mut tried, limits, &mut trace).await {
            return Ok(with_trace(a, trace));
        }
        let (chosen, votes, total) = match largest_group(&tried) {
            Some((pick, votes)) => (tried.swap_remove(pick), votes, total),
            None => match self
                .repair(llm, grants, &messages, &tried, limits, &mut trace)
                .await?
            {
                Ok(chosen) => chosen,
                Err(a) => return Ok(with_trace(a, trace)),
            },
        };
        let agreement = f64::from(votes) / f64::from(total);
        trace.agreement = Some(agreement);
        tracing::info!(
            candidates = trace.candidates,
            distinct = tried.len() + 1,
            agreement,
            "sql candidates run"
        );
        let low = agreement < settings.min_agreement;
        if low && settings.low_agreement == LowAgreement::Refuse {
            let a = Answer::refusal(
                "I'm not confident enough to answer that: the queries I tried disagreed. Try rephrasing it, or name the table or columns you mean.",
                format!("low agreement between candidate queries ({votes} of {total})"),
            );
            return Ok(with_trace(a, trace));
        }
        let Ok((validated, result)) = chosen.outcome else {
            unreachable!("the chosen candidate ran");
        };
        // Candidates were read only to the candidate row cap; the answer is
        // read in full.
        let (validated, result) = if result.truncated && validated.max_rows() < self.policy.max_rows
        {
            match self.run_sql(grants, &chosen.sql).await {
                Ok(full) => full,
                Err(e) => {
                    let a =
                        self.step_failed(Answer::new(crate::orchestrator::AnswerKind::Sql, ""), e);
                    return Ok(with_trace(a, trace));
                }
            }
        } else {
            (validated, result)
        };
        // No prose from a small model: the table, the interpretation and a
        // plain sentence say what ran, and nothing can be misstated.
        let mut a = self
            .sql_answer(None, question, &validated, result, None)
            .await;
        if low {
            a.notes.push(format!(
                "Low confidence: only {votes} of {total} candidate queries agreed on this result. Check the SQL before relying on it."
            ));
        }
        Ok(with_trace(a, trace))
    }

    /// The system and user messages: the linked schema, examples, the
    /// dates the question's time phrases mean, the previous turn.
    async fn sql_prompt(
        &self,
        grants: &Grants,
        question: &str,
        history: &[Turn],
    ) -> Result<Vec<ChatCompletionRequestMessage>, LlmError> {
        let dialect = self.warehouse.dialect();
        let previous = history.last();
        let linking_text = match previous {
            Some(p) => format!("{} {question}", p.question),
            None => question.to_owned(),
        };
        let schema = self.prompt_schema(grants, &linking_text).await.text;
        let verified = self.verified.all();
        let mut examples = prompt::pick_examples(&verified, question, |sql| {
            validate(sql, dialect, &self.policy, grants, Origin::AdHoc).is_ok()
        });
        examples.truncate(EXAMPLES);
        let periods: Vec<serde_json::Value> =
            timephrase::find_ranges_after(&planner::normalize(question), self.as_of, None)
                .into_iter()
                .map(|r| {
                    json!({"label": r.label, "start": r.range.start.to_string(), "end": r.range.end.to_string()})
                })
                .collect();
        // Date handling notes only when the question names a period.
        let notes = if periods.is_empty() {
            ""
        } else {
            prompt::dialect_notes(dialect)
        };
        let render = |name: &str, ctx: serde_json::Value| {
            self.prompts.render(name, ctx).map_err(LlmError::Failed)
        };
        let system = render(
            "sql_system",
            json!({"dialect": dialect.to_string(), "dialect_notes": notes}),
        )?;
        let user = render(
            "sql",
            json!({
                "schema": schema,
                "examples": examples,
                "periods": periods,
                "previous": previous,
                "question": question,
            }),
        )?;
        Ok(vec![msg::system(system), msg::user(user)])
    }

    /// The model's replies: one greedy, and `llm.candidates - 1` sampled in
    /// one request at the same time; `true` marks the greedy one. A failing
    /// sampled request leaves the greedy reply alone.
    async fn sql_candidates(
        &self,
        llm: &LlmClient,
        messages: &[ChatCompletionRequestMessage],
        trace: &mut LlmUse,
    ) -> Result<Vec<(String, bool)>, LlmError> {
        let settings = llm.settings();
        progress::report(Progress::Thinking { step: 1 });
        let sampled = settings.candidates.saturating_sub(1);
        let (greedy, others) = tokio::join!(llm.samples(messages, 1, 0.0), async {
            if sampled == 0 {
                return None;
            }
            Some(
                llm.samples(messages, sampled, settings.sample_temperature)
                    .await,
            )
        });
        let greedy = greedy?;
        trace.calls += 1;
        trace.usage.add(&greedy.usage);
        let mut texts: Vec<(String, bool)> = greedy.texts.into_iter().map(|t| (t, true)).collect();
        match others {
            Some(Ok(s)) => {
                trace.calls += 1;
                trace.usage.add(&s.usage);
                texts.extend(s.texts.into_iter().map(|t| (t, false)));
            }
            Some(Err(e)) => tracing::warn!(error = %e, "sampled candidates failed; greedy only"),
            None => {}
        }
        trace.candidates = texts.len() as u32;
        Ok(texts)
    }

    /// Runs each distinct statement through the guard and the warehouse
    /// under the audit trail, within the candidate `limits` (milliseconds,
    /// rows). `Err` with the answer when the audit trail fails (nothing
    /// more may run).
    async fn run_tried(
        &self,
        grants: &Grants,
        tried: &mut [Tried],
        limits: (u64, u64),
        trace: &mut LlmUse,
    ) -> Result<(), Answer> {
        let readable = self.link_tables(grants);
        let sample = self.schema_sample().await;
        let keys = link::join_keys(&readable, self.policy.foreign_keys(), sample);
        let dialect = self.warehouse.dialect();
        for t in tried.iter_mut() {
            progress::report(Progress::RunningSql {
                what: "candidate".into(),
            });
            let mut outcome = self.run_sql_within(grants, &t.sql, Some(limits)).await;
            // A column on the wrong alias is moved to the one table that
            // has it, and the moved statement goes through the guard again.
            let moved = match &outcome {
                Err(StepError::Guard(crate::sql::Rejection::UnknownColumn(_))) => {
                    link::requalify(&t.sql, &*dialect.parser(), &readable)
                }
                _ => None,
            };
            if let Some(moved) = moved {
                match self.run_sql_within(grants, &moved, Some(limits)).await {
                    Ok(ok) => {
                        tracing::info!("a candidate's column was moved to the table that has it");
                        t.sql = moved;
                        outcome = Ok(ok);
                    }
                    Err(e @ StepError::Audit(_)) => outcome = Err(e),
                    // The first reason stays the one the repair sees.
                    Err(_) => {}
                }
            }
            t.outcome = match outcome {
                Ok(ok) => Ok(ok),
                Err(StepError::Audit(a)) => {
                    return Err(self.step_failed(
                        Answer::new(crate::orchestrator::AnswerKind::Sql, ""),
                        StepError::Audit(a),
                    ));
                }
                Err(e) => {
                    trace.failed += 1;
                    let join =
                        |owner: &str| link::join_hint(&t.sql, &*dialect.parser(), &keys, owner);
                    Err(candidate_hint(&readable, &e, &join))
                }
            };
        }
        Ok(())
    }

    /// The one repair round when every candidate failed: the model sees
    /// the greedy (else first) statement and its error, and answers with a
    /// new set of candidates (greedy and sampled, as in the first round).
    /// Statements already refused are not run again; the rest run and are
    /// grouped as before. `Ok(Ok((chosen, votes, candidates)))`, or
    /// `Ok(Err(answer))` ending the question with that answer.
    async fn repair(
        &self,
        llm: &LlmClient,
        grants: &Grants,
        messages: &[ChatCompletionRequestMessage],
        tried: &[Tried],
        limits: (u64, u64),
        trace: &mut LlmUse,
    ) -> Result<Result<(Tried, u32, u32), Answer>, LlmError> {
        let Some(failed) = tried.iter().find(|t| t.greedy).or(tried.first()) else {
            return Ok(Err(self.cannot_answer_text("the model wrote no statement")));
        };
        let error = failed.outcome.as_ref().err().cloned().unwrap_or_default();
        let mut repair = messages.to_vec();
        repair.push(msg::assistant(msg::Echo::Text(format!(
            "```sql\n{}\n```",
            failed.sql
        ))));
        repair.push(msg::user(format!(
            "That statement failed: {error}. Write a corrected statement, in a ```sql block."
        )));
        trace.repairs += 1;
        progress::report(Progress::Thinking { step: 2 });
        let before = trace.candidates;
        let texts = self.sql_candidates(llm, &repair, trace).await?;
        let total = texts.len().max(1) as u32;
        trace.candidates += before;
        let (mut fresh, cannot) = distinct_proposals(&texts);
        let proposed = fresh.len();
        fresh.retain(|f| {
            !tried
                .iter()
                .any(|t| normalized(&t.sql) == normalized(&f.sql))
        });
        if fresh.is_empty() {
            if proposed > 0 {
                tracing::info!("the repair repeated refused statements; not run");
                return Ok(Err(Answer::refusal(
                    "I could not write a query for that which runs on the data you can read. Try naming the table or columns you mean.",
                    "every candidate statement failed and the repair repeated them",
                )));
            }
            let why = cannot
                .into_iter()
                .find(|w| !w.is_empty())
                .unwrap_or_else(|| "the model wrote no statement".to_owned());
            return Ok(Err(self.cannot_answer_text(&why)));
        }
        if let Err(a) = self.run_tried(grants, &mut fresh, limits, trace).await {
            return Ok(Err(a));
        }
        match largest_group(&fresh) {
            Some((pick, votes)) => Ok(Ok((fresh.swap_remove(pick), votes, total))),
            None => {
                let first = fresh.swap_remove(0);
                let why = first.outcome.err().unwrap_or_default();
                Ok(Err(Answer::refusal(
                    "I could not write a query for that which runs on the data you can read. Try naming the table or columns you mean.",
                    format!("every candidate statement failed, after one repair round: {why}"),
                )))
            }
        }
    }

    fn cannot_answer(&self, why: &str, trace: LlmUse) -> Answer {
        with_trace(self.cannot_answer_text(why), trace)
    }

    fn cannot_answer_text(&self, why: &str) -> Answer {
        let why = why.trim().trim_end_matches('.');
        let mut a = Answer::refusal(
            format!("I can't answer that from the data you can read: {why}."),
            why.to_owned(),
        );
        a.suggestions = self.suggestions();
        a
    }
}

/// What the repair round tells the model about a failed candidate: the
/// reason, and for a column the statement's tables lack, which readable
/// tables do have it (small models put a column on the wrong alias) and,
/// from `join`, the joins that reach such a table from the statement's
/// own tables. `readable` holds only columns the asker may read, so
/// nothing else is named.
fn candidate_hint(
    readable: &[TableInfo],
    e: &StepError,
    join: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut hint = crate::orchestrator::agent::repair_hint(e);
    if let StepError::Guard(crate::sql::Rejection::UnknownColumn(shown)) = e {
        let name = shown.split(" (").next().unwrap_or(shown);
        let column = name
            .rsplit('.')
            .next()
            .unwrap_or(name)
            .trim_matches(['"', '`', '[', ']'])
            .to_ascii_lowercase();
        let owners: Vec<&str> = readable
            .iter()
            .filter(|t| t.columns.iter().any(|c| c.name == column))
            .map(|t| t.name.as_str())
            .collect();
        if owners.is_empty() {
            hint.push_str(&format!(
                "; no table you can read has a column named {column}"
            ));
        } else {
            hint.push_str(&format!("; {column} is a column of {}", owners.join(", ")));
            if let [owner] = owners.as_slice()
                && let Some(path) = join(owner)
            {
                hint.push_str(&format!(", which the statement reaches with {path}"));
            }
        }
    }
    hint
}

fn with_trace(mut a: Answer, trace: LlmUse) -> Answer {
    a.llm = Some(trace);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_on_the_wrong_table_is_pointed_to_its_readable_tables() {
        let t = TableInfo::plain;
        let readable = [
            t("course", &["course_id", "course"]),
            t("course_arrange", &["course_id", "teacher_id"]),
        ];
        let unknown = |s: &str| StepError::Guard(crate::sql::Rejection::UnknownColumn(s.into()));
        let none = |_: &str| None;
        let hint = candidate_hint(&readable, &unknown("T2.course"), &none);
        assert!(
            hint.ends_with(
                "column T2.course is not in the allow-list; course is a column of course"
            ),
            "{hint}"
        );
        // With a key path, the hint says how to reach the column's table.
        let keys = [crate::policy::ForeignKey {
            table: "course_arrange".into(),
            column: "course_id".into(),
            ref_table: "course".into(),
            ref_column: "course_id".into(),
        }];
        let parser = sqlparser::dialect::SQLiteDialect {};
        let sql = "SELECT T2.course FROM course_arrange AS T2";
        let join = |owner: &str| link::join_hint(sql, &parser, &keys, owner);
        let hint = candidate_hint(&readable, &unknown("T2.course"), &join);
        assert!(
            hint.ends_with(
                "course is a column of course, which the statement reaches with JOIN course ON course_arrange.course_id = course.course_id"
            ),
            "{hint}"
        );
        // A statement that already reads the table gets no path.
        let reads = "SELECT T2.course FROM course_arrange AS T2 JOIN course AS T3 ON 1 = 1";
        assert_eq!(link::join_hint(reads, &parser, &keys, "course"), None);
        // A column no readable table has (denied, or made up) is named as missing.
        let hint = candidate_hint(&readable, &unknown("T1.salary"), &none);
        assert!(
            hint.ends_with("; no table you can read has a column named salary"),
            "{hint}"
        );
        let other = StepError::Guard(crate::sql::Rejection::Function("load_extension".into()));
        assert_eq!(
            candidate_hint(&readable, &other, &none),
            crate::orchestrator::agent::repair_hint(&other)
        );
    }
}
