//! The grounding check: every number in an answer's prose must come from this
//! turn's tool results (DESIGN.md invariant 4).
//!
//! A number is grounded when, at the precision it is written with, it equals
//! a number that is: in a result table; a headline number the code computed
//! from results; a difference, ratio or percentage change of two such
//! numbers; or a number written in the question itself ("last 30 days").
//! Dates (`2026-11-09`) and ordinals inside them are not quantities and are
//! skipped. The check is deliberately conservative: an answer that fails it
//! is reduced to its result table with a plain sentence.

use std::sync::LazyLock;

use regex::Regex;

use super::Answer;

static DATE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d{4}-\d{2}-\d{2}").expect("date pattern compiles"));
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?\d[\d,]*(?:\.\d+)?").expect("number pattern compiles"));

/// A number found in prose, with the precision it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// The value.
    pub value: f64,
    /// Half a unit of the last written digit (0.5 for "12", 0.05 for "1.2").
    pub tolerance: f64,
    /// The text as written.
    pub text: String,
}

/// Numbers written in `text`, dates excluded, and digits that continue a
/// name (`T2.teacher_id`, `col_3`, `Q3`) too. Digits followed by letters
/// (`12M`) are numbers and are checked.
pub fn written_numbers(text: &str) -> Vec<Written> {
    let without_dates = DATE.replace_all(text, " ");
    let in_name = |c: Option<char>| c.is_some_and(|c| c.is_alphabetic() || c == '_');
    NUMBER
        .find_iter(&without_dates)
        .filter(|m| !in_name(without_dates[..m.start()].chars().next_back()))
        .filter_map(|m| {
            let t = m.as_str().trim_end_matches(',');
            let clean = t.replace(',', "");
            let value: f64 = clean.parse().ok()?;
            let decimals = clean.split_once('.').map_or(0, |(_, f)| f.len());
            Some(Written {
                value,
                tolerance: 0.5 * 10f64.powi(-(decimals as i32)) + 1e-9,
                text: t.to_owned(),
            })
        })
        .collect()
}

/// Every number the answer may state: single values (results, computed
/// headline numbers, row counts, the question's and the queries' own numbers,
/// and any of them as a percentage), plus differences and percentage changes
/// of two values *in the same result row, the same column of a metric table
/// (one quantity per column), or among the headline numbers* — not of any two
/// numbers, which would make most small integers "derivable" by coincidence.
fn allowed(answer: &Answer, question: &str) -> Vec<f64> {
    let mut singles: Vec<f64> = Vec::new();
    let rows: Vec<Vec<f64>> = answer
        .data
        .rows
        .iter()
        .map(|r| r.iter().filter_map(serde_json::Value::as_f64).collect())
        .collect();
    singles.extend(rows.iter().flatten());
    let keys: Vec<f64> = answer.key_numbers.iter().map(|k| k.value).collect();
    singles.extend(keys.iter().copied());
    for q in &answer.queries {
        singles.push(q.rows as f64);
        // The window a query covered ("the last 7 days") is context, not a claim.
        singles.extend(written_numbers(&q.purpose).iter().map(|w| w.value));
    }
    singles.extend(written_numbers(question).iter().map(|w| w.value));
    let mut out: Vec<f64> = singles.iter().flat_map(|v| [*v, v * 100.0]).collect();

    // A column (and the headline numbers) hold one quantity only in a metric
    // answer; the overview's columns mix metrics, so only its rows are compared.
    let width = if answer.kind == super::AnswerKind::Metric {
        answer.data.columns.len()
    } else {
        0
    };
    let columns: Vec<Vec<f64>> = (0..width)
        .map(|c| {
            answer
                .data
                .rows
                .iter()
                .filter_map(|r| r.get(c)?.as_f64())
                .collect()
        })
        .collect();
    let key_pairs = if width > 0 { vec![keys] } else { Vec::new() };
    for group in rows.iter().chain(columns.iter()).chain(key_pairs.iter()) {
        let group = &group[..group.len().min(200)];
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                out.push(a - b);
                if *b != 0.0 {
                    out.push((a - b) / b * 100.0);
                }
                if *a != 0.0 {
                    out.push((b - a) / a * 100.0);
                }
            }
        }
    }
    out
}

/// The numbers in the answer's prose that no tool result supports. Notes
/// (metric definitions, caveats) are not claims about data and are not checked.
pub fn ungrounded(answer: &Answer, question: &str) -> Vec<String> {
    let written = written_numbers(&answer.answer);
    if written.is_empty() {
        return Vec::new();
    }
    let allowed = allowed(answer, question);
    written
        .into_iter()
        .filter(|w| {
            let v = w.value.abs();
            !allowed
                .iter()
                .any(|a| (a.abs() - v).abs() <= w.tolerance.max(v * 1e-9))
        })
        .map(|w| w.text)
        .collect()
}

/// Applies the check: an answer with ungrounded numbers keeps its data and
/// SQL but its prose is replaced by a plain sentence pointing at the table.
/// Documentation answers are verbatim quotes of cited passages and pass as is.
pub fn enforce(mut answer: Answer, question: &str) -> Answer {
    if answer.kind == super::AnswerKind::Docs {
        return answer;
    }
    let bad = ungrounded(&answer, question);
    if bad.is_empty() {
        return answer;
    }
    tracing::warn!(
        count = bad.len(),
        "answer reduced: numbers not found in tool results"
    );
    answer.answer = if answer.data.rows.is_empty() {
        "I could not state that with figures I can trace to the data, so I am not answering it."
            .to_owned()
    } else {
        "Here is the result table; I could not trace every figure of a written summary to it, so none is given."
            .to_owned()
    };
    answer.notes.clear();
    answer.key_numbers.clear();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::{AnswerKind, DataTable, KeyNumber};

    fn answer(text: &str, rows: Vec<Vec<serde_json::Value>>) -> Answer {
        let mut a = Answer::new(AnswerKind::Metric, text);
        a.data = DataTable {
            columns: vec!["period".into(), "value".into()],
            rows,
        };
        a
    }

    #[test]
    fn numbers_are_read_at_their_written_precision() {
        let w = written_numbers("DAU was 1,909.4 on 2026-11-09, up 3.8% ($12,000).");
        let values: Vec<f64> = w.iter().map(|x| x.value).collect();
        assert_eq!(values, vec![1909.4, 3.8, 12000.0]);
        assert!((w[0].tolerance - 0.05).abs() < 1e-6);
        // Digits continuing a name are not figures; digits before a unit are.
        let w = written_numbers("column T2.teacher_id and col_3 in Q3; about 12M users");
        let values: Vec<f64> = w.iter().map(|x| x.value).collect();
        assert_eq!(values, vec![12.0]);
    }

    #[test]
    fn stated_results_and_derived_changes_are_grounded() {
        let a = answer(
            "DAU was 1,909 last week and 1,839.4 the week before: +69.6 (+3.8%).",
            vec![
                vec!["last week".into(), 1909.0.into()],
                vec!["before".into(), 1839.4.into()],
            ],
        );
        assert!(
            ungrounded(&a, "dau last week vs the week before").is_empty(),
            "{:?}",
            ungrounded(&a, "")
        );
    }

    #[test]
    fn invented_numbers_are_caught_and_the_prose_is_replaced() {
        let a = answer(
            "Revenue was $2,500,000, about 12% above the industry benchmark of 40%.",
            vec![vec!["october".into(), 1_252_457.0.into()]],
        );
        let bad = ungrounded(&a, "revenue in october");
        assert_eq!(bad, vec!["2,500,000", "12", "40"]);
        let reduced = enforce(a, "revenue in october");
        assert!(
            !reduced.answer.chars().any(|c| c.is_ascii_digit()),
            "{}",
            reduced.answer
        );
        assert_eq!(reduced.data.rows.len(), 1, "the table stays");
    }

    #[test]
    fn numbers_from_the_question_and_computed_key_numbers_are_allowed() {
        let mut a = answer(
            "Signups for the last 30 days were 812, an average of 27.1 a day.",
            vec![],
        );
        a.key_numbers.push(KeyNumber {
            label: "signups".into(),
            value: 812.0,
            formatted: "812".into(),
        });
        a.key_numbers.push(KeyNumber {
            label: "per day".into(),
            value: 27.0667,
            formatted: "27.1".into(),
        });
        assert!(ungrounded(&a, "signups in the last 30 days").is_empty());
    }
}
