//! The regression run an approval must pass: every labelled question (the
//! configured `steward eval` sets, plus one case per approved verified
//! query and one for the candidate itself) is answered twice, with the
//! verified queries in force and with the candidate added, and scored as
//! `steward eval` scores it. A question right before and wrong after blocks
//! the approval.
//!
//! Both runs use steward's deterministic path (no language model): that is
//! where a verified query changes answers (a question asked as written runs
//! it), and it makes the two runs comparable; a model's sampled answers
//! would differ between runs for reasons that have nothing to do with the
//! candidate. Each case runs under the grants of the role or dev user it
//! names, but every event of the run is attributed to the steward who
//! approved ([`Cause`]: their user id and channel, purpose `regression`, the
//! approval's review event as parent), never to the users the cases name.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::audit::Cause;
use crate::eval::{self, Case, CaseResult};
use crate::orchestrator::verified::VerifiedQuery;
use crate::orchestrator::{AnswerKind, Orchestrator};

/// One question's outcome in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    /// The answer's kind.
    pub kind: AnswerKind,
    /// Right kind, and the gold result where there is one.
    pub right: bool,
    /// The last statement that ran.
    pub sql: Option<String>,
}

/// A question whose outcome changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The case id (`set:id`, `verified:vN` or `candidate`).
    pub id: String,
    /// The question.
    pub question: String,
    /// Without the candidate.
    pub before: Outcome,
    /// With it.
    pub after: Outcome,
}

/// What the regression run found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionReport {
    /// Each set run and its number of questions.
    pub sets: Vec<(String, usize)>,
    /// Questions answered in each run.
    pub questions: usize,
    /// Right without the candidate.
    pub right_before: usize,
    /// Right with it.
    pub right_after: usize,
    /// Right before, wrong after: these block the approval.
    pub turned_wrong: Vec<Change>,
    /// Wrong before, right after.
    pub turned_right: Vec<Change>,
    /// Wall time of both runs, in milliseconds.
    pub duration_ms: u64,
}

/// The synthetic user a role's regression cases run as.
fn role_user(role: &str) -> String {
    format!("role:{role}")
}

fn case(id: String, pair: &VerifiedQuery) -> Case {
    Case {
        id,
        question: pair.question.clone(),
        user: role_user(pair.role.as_deref().unwrap_or_default()),
        expect: AnswerKind::Sql,
        metric: None,
        gold_sql: Some(pair.sql.clone()),
        conversation: None,
        near_miss: false,
    }
}

fn outcome(r: &CaseResult) -> Outcome {
    Outcome {
        kind: r.kind,
        right: r.routed && r.executed != Some(false),
        sql: r.sql.clone(),
    }
}

/// Runs the regression for `candidate` (its `role` set) on `o`, its events
/// attributed to `cause`.
///
/// # Errors
/// An unreadable or invalid set (`path: reason`), or a case the runner
/// cannot answer (an unknown user, a failing audit trail).
pub async fn run(
    o: &Orchestrator,
    sets: &super::RegressionSets,
    candidate: &VerifiedQuery,
    cause: &Cause,
) -> Result<RegressionReport, String> {
    let mut cases = Vec::new();
    let mut counts = Vec::new();
    for path in &sets.sets {
        let text = read_set(path)?;
        let set = eval::parse_cases(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        counts.push((name.clone(), set.len()));
        cases.extend(set.into_iter().map(|mut c| {
            c.id = format!("{name}:{}", c.id);
            c
        }));
    }
    // Approved pairs stay right, except one the candidate replaces.
    let (_, approved) = o.verified.approved();
    for pair in approved.iter() {
        if !crate::text::same_question(&pair.question, &candidate.question) {
            let v = pair.version.unwrap_or_default();
            cases.push(case(format!("verified:v{v}"), pair));
        }
    }
    cases.push(case("candidate".into(), candidate));
    let started = std::time::Instant::now();
    let mut users = sets.users.clone();
    for role in o.policy.roles.keys() {
        users.insert(role_user(role), vec![role.clone()]);
    }
    let before = answer_all(&o.variant(o.verified.snapshot()), &users, &cases, cause).await?;
    let after = answer_all(
        &o.variant(o.verified.with(candidate.clone())),
        &users,
        &cases,
        cause,
    )
    .await?;
    let mut report = RegressionReport {
        sets: counts,
        questions: cases.len(),
        right_before: 0,
        right_after: 0,
        turned_wrong: Vec::new(),
        turned_right: Vec::new(),
        duration_ms: started.elapsed().as_millis() as u64,
    };
    for (b, a) in before.iter().zip(&after) {
        let (ob, oa) = (outcome(b), outcome(a));
        report.right_before += usize::from(ob.right);
        report.right_after += usize::from(oa.right);
        let change = |before: Outcome, after: Outcome| Change {
            id: b.id.clone(),
            question: b.question.clone(),
            before,
            after,
        };
        match (ob.right, oa.right) {
            (true, false) => report.turned_wrong.push(change(ob, oa)),
            (false, true) => report.turned_right.push(change(ob, oa)),
            _ => {}
        }
    }
    Ok(report)
}

/// The demo's labelled set, compiled in: the default set is found wherever
/// steward runs (an installed binary, the container image).
const DEMO_SET: &str = include_str!("../../eval/demo.jsonl");

/// A set's text: the file, or for the default `eval/demo.jsonl` when no
/// such file is here, the compiled-in copy.
fn read_set(path: &std::path::Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && super::default_eval_sets().iter().any(|d| d == path) =>
        {
            Ok(DEMO_SET.to_owned())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Answers every case on `o`, each run's conversations apart from the
/// other's and from earlier runs.
async fn answer_all(
    o: &Orchestrator,
    users: &BTreeMap<String, Vec<String>>,
    cases: &[Case],
    cause: &Cause,
) -> Result<Vec<CaseResult>, String> {
    let run = crate::audit::new_id();
    let cases: Vec<Case> = cases
        .iter()
        .cloned()
        .map(|mut c| {
            c.conversation = c.conversation.map(|id| format!("review-{run}-{id}"));
            c
        })
        .collect();
    // Boxed: a whole eval run's future is large in debug builds, and
    // nesting it inline under an HTTP handler overflowed a 2 MiB stack.
    let (results, _) = Box::pin(eval::run(o, users, &cases, false, Some(cause), |_| {})).await?;
    Ok(results)
}
