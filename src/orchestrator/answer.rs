//! The answer shape returned to every channel, and number formatting.

use serde::{Deserialize, Serialize};

use crate::policy::ColumnClass;
use crate::semantic::ValueFormat;
use crate::sql::ValidatedSql;

/// What kind of answer this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerKind {
    /// From a named metric.
    Metric,
    /// From guarded ad-hoc SQL.
    Sql,
    /// From the documentation.
    Docs,
    /// Headline metrics.
    Overview,
    /// Refused; see `reason`.
    Refusal,
    /// A subscription was created ("send me … every Monday at 9:00"); no data.
    Subscription,
}

/// A result table: column names and rows of JSON scalars.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DataTable {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A document passage the answer relies on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Citation {
    /// Chunk id (`source#section`).
    pub id: String,
    /// Source path.
    pub source: String,
    /// The document's URL, when its metadata gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Document title.
    pub title: String,
    /// Section path.
    pub section: String,
    /// The passage quoted (at most a few sentences).
    pub snippet: String,
}

/// A headline number, always taken from (or computed from) a query result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyNumber {
    /// What it is ("DAU, last week").
    pub label: String,
    /// The value.
    pub value: f64,
    /// The value as shown in the answer.
    pub formatted: String,
}

/// One statement that ran for this answer, with what the guard decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueryRun {
    /// Why it ran ("dau, last week").
    pub purpose: String,
    /// The validated SQL that ran.
    pub sql: String,
    /// Rows returned.
    pub rows: usize,
    /// Column classes the statement read (`pii` means the result holds personal data).
    pub classes: Vec<ColumnClass>,
    /// Columns returned masked (`table.column`).
    pub masked: Vec<String>,
    /// Row filters applied (`table: predicate`).
    pub row_filters: Vec<String>,
}

/// steward's answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    /// The answer in prose.
    pub answer: String,
    /// Kind of answer.
    pub kind: AnswerKind,
    /// The main result table (empty when there is none).
    pub data: DataTable,
    /// The SQL that ran, statements separated by blank lines; `None` if none ran.
    pub sql: Option<String>,
    /// Each statement that ran.
    pub queries: Vec<QueryRun>,
    /// Documentation passages cited.
    pub citations: Vec<Citation>,
    /// For refusals: why, in one sentence.
    pub reason: Option<String>,
    /// Headline numbers.
    pub key_numbers: Vec<KeyNumber>,
    /// The metric answered, if any.
    pub metric: Option<String>,
    /// Caveats ("correlation, not cause").
    pub notes: Vec<String>,
    /// What the user can ask instead (for refusals).
    pub suggestions: Vec<String>,
    /// How the language model was used, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<super::LlmUse>,
    /// How steward read the question (data answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpretation: Option<super::interpret::Interpretation>,
    /// When the warehouse produced the oldest rows this answer uses (UTC);
    /// `None` when no statement ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether any of those rows came from the result cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// The id of the question's audit event (32 hex digits), which feedback
    /// on this answer names (`POST /api/feedback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl Answer {
    /// An answer of `kind` with prose and nothing else.
    pub fn new(kind: AnswerKind, answer: impl Into<String>) -> Answer {
        Answer {
            answer: answer.into(),
            kind,
            data: DataTable::default(),
            sql: None,
            queries: Vec::new(),
            citations: Vec::new(),
            reason: None,
            interpretation: None,
            key_numbers: Vec::new(),
            metric: None,
            notes: Vec::new(),
            suggestions: Vec::new(),
            llm: None,
            as_of: None,
            cached: false,
            event_id: None,
        }
    }

    /// A refusal with its reason; the prose states the reason too.
    pub fn refusal(answer: impl Into<String>, reason: impl Into<String>) -> Answer {
        let mut a = Answer::new(AnswerKind::Refusal, answer);
        a.reason = Some(reason.into());
        a
    }

    /// "Data as of 2026-12-01 09:30 UTC" (", from the cache" when cached),
    /// when a statement ran.
    pub fn as_of_label(&self) -> Option<String> {
        let t = self.as_of?;
        let from = if self.cached { ", from the cache" } else { "" };
        Some(format!(
            "Data as of {}{from}",
            t.format("%Y-%m-%d %H:%M UTC")
        ))
    }

    /// Records a statement that ran.
    pub fn ran(&mut self, purpose: impl Into<String>, sql: &ValidatedSql, rows: usize) {
        self.queries.push(QueryRun {
            purpose: purpose.into(),
            sql: sql.sql().to_owned(),
            rows,
            classes: sql.classes().iter().copied().collect(),
            masked: sql.masked().to_vec(),
            row_filters: sql.row_filters().to_vec(),
        });
        self.sql = Some(
            self.queries
                .iter()
                .map(|q| format!("{};", q.sql))
                .collect::<Vec<_>>()
                .join("\n\n"),
        );
    }
}

/// Formats a metric value for prose according to the metric's format.
pub fn format_value(value: f64, format: ValueFormat) -> String {
    match format {
        ValueFormat::Number if value.fract().abs() < 1e-9 => group_digits(value, 0),
        ValueFormat::Number => group_digits(value, 1),
        ValueFormat::Percent => format!("{}%", group_digits(value * 100.0, 1)),
        ValueFormat::Currency => format!("${}", group_digits(value, 0)),
        ValueFormat::Hours => format!("{} hours", group_digits(value, 1)),
    }
}

/// Formats a number with thousands separators and at most `decimals` decimals
/// (trailing zeros dropped).
///
/// ```
/// assert_eq!(steward::orchestrator::group_digits(1234567.891, 1), "1,234,567.9");
/// assert_eq!(steward::orchestrator::group_digits(-0.04, 1), "0");
/// ```
pub fn group_digits(value: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, value.abs());
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(i, f)| (i, f));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    let frac = frac.trim_end_matches('0');
    let sign = if value < 0.0 && (int != "0" || !frac.is_empty()) {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{out}")
    } else {
        format!("{sign}{out}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(1234567.0, 0), "1,234,567");
        assert_eq!(group_digits(-1234.5, 1), "-1,234.5");
        assert_eq!(group_digits(12.0, 2), "12");
        assert_eq!(group_digits(0.0, 1), "0");
    }
}
