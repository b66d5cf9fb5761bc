//! `steward eval`: runs a labelled question set through the orchestrator
//! and reports routing accuracy, execution accuracy (Spider-style, see
//! [`compare`]), refusal precision and recall, grounding violations, PII
//! leaks, latency percentiles and tokens.
//!
//! Question file: JSON Lines, one object per line:
//! ```json
//! {"id": "d01", "question": "…", "user": "alice", "expect": "sql",
//!  "metric": null, "gold_sql": "SELECT …", "conversation": null}
//! ```
//! `expect` is the answer kind (`metric`, `sql`, `docs`, `overview`,
//! `refusal`); `metric` the metric a metric answer must use; `gold_sql` a
//! statement whose result the answer's table must equal (run through the
//! guard as the same user, so both see the same masked, filtered data);
//! `conversation` groups follow-up questions, which run in file order.

pub mod compare;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Channel;
use crate::orchestrator::{Answer, AnswerKind, Orchestrator, StepError, grounding};
use crate::policy::{Access, ColumnClass, Grants, Principal};

/// One labelled question.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Identifier for reports.
    pub id: String,
    /// The question.
    pub question: String,
    /// Dev user asking.
    pub user: String,
    /// Expected answer kind.
    pub expect: AnswerKind,
    /// Expected metric, for metric answers.
    #[serde(default)]
    pub metric: Option<String>,
    /// Gold SQL whose result the answer's table must equal.
    #[serde(default)]
    pub gold_sql: Option<String>,
    /// Conversation id for follow-ups.
    #[serde(default)]
    pub conversation: Option<String>,
    /// A near-miss question: it names a metric but asks something else
    /// ("average revenue per customer"). Any answer but a metric answer is
    /// of the right kind (a refusal without a model, SQL with one).
    #[serde(default)]
    pub near_miss: bool,
}

/// Reads a JSON Lines question file.
///
/// # Errors
/// `line N: reason` for a malformed line, an empty file, or a duplicate id.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with("//") {
            continue;
        }
        let case: Case = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if cases.iter().any(|c| c.id == case.id) {
            return Err(format!("line {}: duplicate id {:?}", i + 1, case.id));
        }
        cases.push(case);
    }
    if cases.is_empty() {
        return Err("no questions in the file".into());
    }
    Ok(cases)
}

/// Every `n`-th case (the first, then each `n` on), keeping whole any
/// conversation one of them belongs to; for quick runs with slow models.
pub fn every_nth(cases: Vec<Case>, n: usize) -> Vec<Case> {
    if n <= 1 {
        return cases;
    }
    let picked: Vec<bool> = (0..cases.len()).map(|i| i % n == 0).collect();
    let conversations: Vec<String> = cases
        .iter()
        .zip(&picked)
        .filter(|(_, p)| **p)
        .filter_map(|(c, _)| c.conversation.clone())
        .collect();
    cases
        .into_iter()
        .zip(picked)
        .filter(|(c, p)| {
            *p || c
                .conversation
                .as_ref()
                .is_some_and(|x| conversations.contains(x))
        })
        .map(|(c, _)| c)
        .collect()
}

/// The outcome of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// The question.
    pub question: String,
    /// Expected kind.
    pub expect: AnswerKind,
    /// Kind answered.
    pub kind: AnswerKind,
    /// Whether the kind (and metric, when given) matched.
    pub routed: bool,
    /// A near-miss case (see [`Case::near_miss`]).
    pub near_miss: bool,
    /// Whether the result matched the gold SQL's (`None`: no gold SQL).
    pub executed: Option<bool>,
    /// Whether the prose was reduced by the grounding check.
    pub grounding_fallback: bool,
    /// Ungrounded numbers left in the final prose (should be none).
    pub ungrounded: usize,
    /// PII values found in an answer to a user not allowed to read them.
    pub pii_leaks: usize,
    /// Wall time, milliseconds.
    pub ms: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Gold SQL that failed in the warehouse (the case is broken, not the
    /// system; left out of execution accuracy).
    pub gold_error: Option<String>,
    /// The guard refused the gold SQL for this user: the case stays in
    /// execution accuracy (scored wrong unless the answer matches anyway)
    /// and is counted apart.
    pub gold_rejected: bool,
    /// The SQL of the answer's last statement, if one ran.
    pub sql: Option<String>,
    /// Model calls made (0 without the model).
    pub model_calls: u32,
    /// SQL candidates the model wrote (text-to-SQL path).
    pub candidates: u32,
    /// Share of candidates agreeing with the answer (text-to-SQL path).
    pub agreement: Option<f64>,
    /// The answer is a refusal because the statements written for it failed
    /// (guard or warehouse), not a decision to refuse.
    pub failed_to_run: bool,
    /// Why the answer is a refusal (the answer's recorded reason), for
    /// sorting refusals by cause; `None` for an answer.
    pub refusal_reason: Option<String>,
    /// For a case expecting SQL or a refusal (and whose gold SQL, if any,
    /// ran): the question's subject when nothing in it matches what the
    /// asker may read, so a model would not be asked (see
    /// [`Orchestrator::unmatched_subject`]): a false refusal on a case
    /// expecting SQL, a true one on a case expecting a refusal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched_subject: Option<String>,
    /// Schema linking, for a case whose gold SQL ran: whether the
    /// text-to-SQL prompt for the question would show every table the gold
    /// statement reads (the guard's bound tables). Measured whether or not
    /// the answer used that path.
    pub linked: Option<bool>,
    /// Tables that prompt would show.
    pub prompt_tables: Vec<String>,
}

/// Aggregate scores.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Questions run.
    pub questions: usize,
    /// Share of answers of the expected kind (and metric).
    pub routing_accuracy: f64,
    /// Cases with gold SQL.
    pub execution_cases: usize,
    /// Share of those whose result matched.
    pub execution_accuracy: f64,
    /// Of the answers that refused, the share that should have.
    pub refusal_precision: f64,
    /// Of the cases that should refuse, the share that did.
    pub refusal_recall: f64,
    /// Answers whose prose the grounding check replaced.
    pub grounding_fallbacks: usize,
    /// Final answers still holding untraceable numbers (must be 0).
    pub grounding_violations: usize,
    /// Answers holding PII their asker may not read (must be 0).
    pub pii_leaks: usize,
    /// Median latency, milliseconds.
    pub latency_p50_ms: u64,
    /// 95th-percentile latency, milliseconds.
    pub latency_p95_ms: u64,
    /// Prompt tokens, total.
    pub prompt_tokens: u64,
    /// Completion tokens, total.
    pub completion_tokens: u64,
    /// Cases whose gold SQL failed.
    pub broken_cases: Vec<String>,
    /// Execution cases whose gold SQL the guard refused for the asker (in
    /// the execution denominator).
    pub gold_rejected: usize,
    /// Share of questions whose statements all failed to run.
    pub failed_to_run: f64,
    /// Share of questions refused.
    pub refused: f64,
    /// Model calls per question, mean.
    pub model_calls_per_question: f64,
    /// Prompt tokens per question that used the model, mean.
    pub prompt_tokens_per_model_question: f64,
    /// Near-miss cases.
    pub near_miss_cases: usize,
    /// Near-miss cases answered with a metric (a different measure than
    /// asked; must be 0).
    pub near_miss_answered_as_metric: usize,
    /// Cases whose gold SQL ran, so schema linking could be scored.
    pub linking_cases: usize,
    /// Of those, the share whose text-to-SQL prompt would show every table
    /// the gold statement reads (schema-linking recall).
    pub linking_recall: f64,
    /// Tables per text-to-SQL prompt, mean over those cases.
    pub prompt_tables_per_question: f64,
    /// Of those cases, how many have a subject that matches nothing the
    /// asker may read (refused before a model would be asked): false
    /// refusals.
    pub subject_unmatched: usize,
    /// Cases expecting a refusal that the subject check refuses (true
    /// refusals made without a model call).
    pub subject_refusals_expected: usize,
}

/// Runs every case; `progress` is called after each. With `baseline`,
/// each question is answered by [`Orchestrator::single_shot`] instead of
/// steward's pipeline (a plain `CREATE TABLE` prompt, one greedy call),
/// scored the same way. With a `cause` (an approval's regression run),
/// every question's events are attributed to it ([`Orchestrator::ask_caused`]).
///
/// # Errors
/// A message naming the case for an unknown user, a failing audit trail,
/// or a baseline run without a model.
pub async fn run(
    o: &Orchestrator,
    users: &std::collections::BTreeMap<String, Vec<String>>,
    cases: &[Case],
    baseline: bool,
    cause: Option<&crate::audit::Cause>,
    mut progress: impl FnMut(&CaseResult),
) -> Result<(Vec<CaseResult>, Report), String> {
    if baseline && o.llm.is_none() {
        return Err("--baseline needs a language model (--llm URL)".into());
    }
    let pii = pii_values(o).await;
    let mut results = Vec::new();
    for case in cases {
        let roles = users
            .get(&case.user)
            .ok_or_else(|| format!("{}: unknown user {:?}", case.id, case.user))?;
        let principal = Principal {
            user: case.user.clone(),
            roles: roles.clone(),
            groups: roles.clone(),
        };
        let grants = o.policy.grants(&principal);
        let started = Instant::now();
        let answer = match (&case.conversation, &o.llm, cause) {
            (_, Some(llm), _) if baseline => o
                .single_shot(llm, &grants, &case.question)
                .await
                .map_err(Into::into),
            (c, _, Some(cause)) => {
                o.ask_caused(&principal, cause, c.as_deref(), &case.question)
                    .await
            }
            (Some(c), _, None) => o.ask_in(&principal, Channel::Cli, c, &case.question).await,
            (None, _, None) => o.ask(&principal, Channel::Cli, &case.question).await,
        }
        .map_err(|e| format!("{}: {e}", case.id))?;
        let ms = started.elapsed().as_millis() as u64;
        let result = score(o, case, &grants, &answer, ms, &pii).await;
        progress(&result);
        results.push(result);
    }
    let report = summarize(&results);
    Ok((results, report))
}

async fn score(
    o: &Orchestrator,
    case: &Case,
    grants: &Grants,
    answer: &Answer,
    ms: u64,
    pii: &[String],
) -> CaseResult {
    let routed = if case.near_miss {
        answer.kind != AnswerKind::Metric
    } else {
        answer.kind == case.expect
            && case
                .metric
                .as_ref()
                .is_none_or(|m| answer.metric.as_ref() == Some(m))
    };
    let (mut executed, mut gold_error, mut gold_rejected) = (None, None, false);
    let (mut linked, mut prompt_tables, mut unmatched_subject) = (None, Vec::new(), None);
    // Only an answer with a result can match: a refusal or a documentation
    // quote is wrong however empty the gold result is.
    let has_result = matches!(answer.kind, AnswerKind::Sql | AnswerKind::Metric);
    if let Some(gold) = &case.gold_sql {
        match gold_rows(o, grants, gold).await {
            Ok((tables, rows)) => {
                let ordered = gold.to_ascii_uppercase().contains("ORDER BY");
                executed =
                    Some(has_result && compare::results_match(&rows, &answer.data.rows, ordered));
                prompt_tables = o.prompt_tables(grants, &case.question).await;
                linked = Some(tables.iter().all(|t| prompt_tables.contains(t)));
            }
            Err(GoldError::Rejected) => {
                gold_rejected = true;
                executed = Some(false);
            }
            Err(GoldError::Failed(e)) => gold_error = Some(e),
        }
    }
    if gold_error.is_none() && matches!(case.expect, AnswerKind::Sql | AnswerKind::Refusal) {
        unmatched_subject = o.unmatched_subject(grants, &case.question).await;
    }
    let may_read_pii = grants.access(ColumnClass::Pii) == Access::Allow;
    let text = serde_json::to_string(answer).unwrap_or_default();
    let pii_leaks = if may_read_pii {
        0
    } else {
        pii.iter().filter(|v| text.contains(v.as_str())).count()
    };
    let usage = answer.llm.as_ref().map(|l| l.usage).unwrap_or_default();
    CaseResult {
        id: case.id.clone(),
        question: case.question.clone(),
        near_miss: case.near_miss,
        expect: case.expect,
        kind: answer.kind,
        routed,
        executed,
        grounding_fallback: answer.answer.contains("could not trace")
            || answer.answer.contains("could not state that"),
        // Documentation answers quote passages verbatim and are exempt, as in
        // `grounding::enforce`.
        ungrounded: if answer.kind == AnswerKind::Docs {
            0
        } else {
            grounding::ungrounded(answer, &case.question).len()
        },
        pii_leaks,
        ms,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        gold_error,
        gold_rejected,
        sql: answer.queries.last().map(|q| q.sql.clone()),
        model_calls: answer.llm.as_ref().map_or(0, |l| l.calls),
        candidates: answer.llm.as_ref().map_or(0, |l| l.candidates),
        agreement: answer.llm.as_ref().and_then(|l| l.agreement),
        failed_to_run: answer.kind == AnswerKind::Refusal
            && answer.llm.as_ref().is_some_and(|l| l.failed > 0),
        refusal_reason: (answer.kind == AnswerKind::Refusal)
            .then(|| answer.reason.clone())
            .flatten(),
        linked,
        prompt_tables,
        unmatched_subject,
    }
}

/// Why gold SQL gave no rows to compare with.
enum GoldError {
    /// The guard refused it for the asker.
    Rejected,
    /// The warehouse failed on it.
    Failed(String),
}

/// Runs gold SQL through the guard as the same user: the tables it reads
/// and its rows.
async fn gold_rows(
    o: &Orchestrator,
    grants: &Grants,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Value>>), GoldError> {
    match o.run_sql(grants, sql).await {
        Ok((validated, result)) => Ok((validated.tables().iter().cloned().collect(), result.rows)),
        Err(StepError::Guard(_)) => Err(GoldError::Rejected),
        Err(StepError::Warehouse(e)) => {
            Err(GoldError::Failed(format!("gold SQL failed: {}", e.kind())))
        }
        Err(e) => Err(GoldError::Failed(format!("gold SQL failed: {e}"))),
    }
}

/// Values of `pii` columns (at least 6 characters), read through the guard
/// with every role's grants, to look for in answers. A value that also
/// occurs inside a text value of a column that is not `pii` (a customer
/// named "Fernanda" and the artist "Fernanda Porto") is left out: finding
/// it in an answer proves nothing, and counting it made public data look
/// like a leak.
async fn pii_values(o: &Orchestrator) -> Vec<String> {
    let everyone = o.policy.every_role();
    let mut values = Vec::new();
    let mut public = Vec::new();
    for (table, def) in &o.policy.schema.tables {
        for (column, c) in &def.columns {
            let sql = format!("SELECT DISTINCT {column} FROM {table} LIMIT 5000");
            let Ok((_, r)) = o.run_sql(&everyone, &sql).await else {
                continue;
            };
            let texts = r
                .rows
                .into_iter()
                .filter_map(|row| row.into_iter().next()?.as_str().map(str::to_owned));
            if c.class == ColumnClass::Pii {
                values.extend(texts.filter(|s| s.chars().count() >= 6));
            } else {
                public.extend(texts);
            }
        }
    }
    unambiguous(values, &public)
}

/// The `values` that occur inside none of the `public` texts, found in one
/// pass over them with every value at once (Aho-Corasick).
fn unambiguous(values: Vec<String>, public: &[String]) -> Vec<String> {
    let Ok(matcher) = aho_corasick::AhoCorasick::new(&values) else {
        return values;
    };
    let mut ambiguous = vec![false; values.len()];
    for text in public {
        for m in matcher.find_overlapping_iter(text) {
            ambiguous[m.pattern().as_usize()] = true;
        }
    }
    values
        .into_iter()
        .zip(ambiguous)
        .filter(|(_, a)| !a)
        .map(|(v, _)| v)
        .collect()
}

fn summarize(results: &[CaseResult]) -> Report {
    let n = results.len();
    let share = |hit: usize, of: usize| if of == 0 { 0.0 } else { hit as f64 / of as f64 };
    let exec: Vec<bool> = results.iter().filter_map(|r| r.executed).collect();
    let refused = results.iter().filter(|r| r.kind == AnswerKind::Refusal);
    let should = results.iter().filter(|r| r.expect == AnswerKind::Refusal);
    let both = results
        .iter()
        .filter(|r| r.kind == AnswerKind::Refusal && r.expect == AnswerKind::Refusal)
        .count();
    let mut ms: Vec<u64> = results.iter().map(|r| r.ms).collect();
    ms.sort_unstable();
    let linking: Vec<&CaseResult> = results.iter().filter(|r| r.linked.is_some()).collect();
    Report {
        linking_cases: linking.len(),
        linking_recall: share(
            linking.iter().filter(|r| r.linked == Some(true)).count(),
            linking.len(),
        ),
        subject_unmatched: linking
            .iter()
            .filter(|r| r.unmatched_subject.is_some())
            .count(),
        subject_refusals_expected: results
            .iter()
            .filter(|r| r.expect == AnswerKind::Refusal && r.unmatched_subject.is_some())
            .count(),
        prompt_tables_per_question: share(
            linking.iter().map(|r| r.prompt_tables.len()).sum(),
            linking.len(),
        ),
        questions: n,
        routing_accuracy: share(results.iter().filter(|r| r.routed).count(), n),
        execution_cases: exec.len(),
        execution_accuracy: share(exec.iter().filter(|x| **x).count(), exec.len()),
        refusal_precision: share(both, refused.count()),
        refusal_recall: share(both, should.count()),
        grounding_fallbacks: results.iter().filter(|r| r.grounding_fallback).count(),
        grounding_violations: results.iter().filter(|r| r.ungrounded > 0).count(),
        pii_leaks: results.iter().map(|r| r.pii_leaks).sum(),
        latency_p50_ms: percentile(&ms, 0.50),
        latency_p95_ms: percentile(&ms, 0.95),
        prompt_tokens: results.iter().map(|r| r.prompt_tokens).sum(),
        completion_tokens: results.iter().map(|r| r.completion_tokens).sum(),
        broken_cases: results
            .iter()
            .filter(|r| r.gold_error.is_some())
            .map(|r| r.id.clone())
            .collect(),
        gold_rejected: results.iter().filter(|r| r.gold_rejected).count(),
        near_miss_cases: results.iter().filter(|r| r.near_miss).count(),
        near_miss_answered_as_metric: results
            .iter()
            .filter(|r| r.near_miss && r.kind == AnswerKind::Metric)
            .count(),
        failed_to_run: share(results.iter().filter(|r| r.failed_to_run).count(), n),
        refused: share(
            results
                .iter()
                .filter(|r| r.kind == AnswerKind::Refusal)
                .count(),
            n,
        ),
        model_calls_per_question: share(results.iter().map(|r| r.model_calls as usize).sum(), n),
        prompt_tokens_per_model_question: {
            let used: Vec<&CaseResult> = results.iter().filter(|r| r.model_calls > 0).collect();
            share(
                used.iter().map(|r| r.prompt_tokens as usize).sum(),
                used.len(),
            )
        },
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_files_fail_with_the_line_number() {
        let ok = "{\"id\":\"a\",\"question\":\"q\",\"user\":\"alice\",\"expect\":\"metric\",\"metric\":\"dau\"}\n";
        assert_eq!(parse_cases(ok).unwrap().len(), 1);
        let e = parse_cases(&format!("{ok}{{\"id\":\"b\"}}\n")).unwrap_err();
        assert!(e.starts_with("line 2"), "{e}");
        let e = parse_cases(&format!("{ok}{ok}")).unwrap_err();
        assert!(e.contains("duplicate"), "{e}");
        assert!(parse_cases("\n\n").is_err());
        let bad_kind = ok.replace("metric\",\"metric", "nonsense\",\"metric");
        assert!(parse_cases(&bad_kind).is_err());
    }

    #[test]
    fn sampling_keeps_conversations_whole() {
        let line = |id: &str, conv: Option<&str>| Case {
            id: id.into(),
            question: "q".into(),
            user: "alice".into(),
            expect: AnswerKind::Docs,
            metric: None,
            gold_sql: None,
            conversation: conv.map(str::to_owned),
            near_miss: false,
        };
        let cases = vec![
            line("0", Some("c")),
            line("1", Some("c")),
            line("2", None),
            line("3", None),
            line("4", None),
        ];
        let ids: Vec<String> = every_nth(cases, 3).into_iter().map(|c| c.id).collect();
        assert_eq!(ids, ["0", "1", "3"]);
    }

    #[test]
    fn personal_values_inside_public_text_are_not_counted_as_leaks() {
        let values = vec![
            "Fernanda".to_owned(),
            "fernanda.porto@mail.example".to_owned(),
            "Richard".to_owned(),
        ];
        let public = vec!["Fernanda Porto".to_owned(), "Jack Johnson".to_owned()];
        assert_eq!(
            unambiguous(values, &public),
            ["fernanda.porto@mail.example", "Richard"]
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.95), 95);
        assert_eq!(percentile(&[7], 0.95), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn refusal_precision_and_recall_count_the_right_cells() {
        let r = |expect, kind| CaseResult {
            id: "x".into(),
            question: "q".into(),
            near_miss: false,
            expect,
            kind,
            routed: expect == kind,
            executed: None,
            grounding_fallback: false,
            ungrounded: 0,
            pii_leaks: 0,
            ms: 1,
            prompt_tokens: 0,
            completion_tokens: 0,
            gold_error: None,
            gold_rejected: false,
            sql: None,
            model_calls: 0,
            candidates: 0,
            agreement: None,
            failed_to_run: false,
            refusal_reason: None,
            unmatched_subject: None,
            linked: None,
            prompt_tables: Vec::new(),
        };
        use AnswerKind::{Refusal, Sql};
        let report = summarize(&[
            r(Refusal, Refusal),
            r(Sql, Refusal),
            r(Refusal, Sql),
            r(Sql, Sql),
        ]);
        assert!((report.refusal_precision - 0.5).abs() < 1e-9);
        assert!((report.refusal_recall - 0.5).abs() < 1e-9);
        assert!((report.routing_accuracy - 0.5).abs() < 1e-9);
        assert_eq!(report.linking_cases, 0);
        // Schema linking counts only cases whose gold SQL ran.
        let linked = |ok: bool, tables: &[&str]| CaseResult {
            linked: Some(ok),
            prompt_tables: tables.iter().map(|t| (*t).to_owned()).collect(),
            ..r(Sql, Sql)
        };
        let report = summarize(&[
            linked(true, &["a", "b"]),
            linked(false, &["a"]),
            r(Sql, Sql),
        ]);
        assert_eq!(report.linking_cases, 2);
        assert!((report.linking_recall - 0.5).abs() < 1e-9);
        assert!((report.prompt_tables_per_question - 1.5).abs() < 1e-9);
    }
}
