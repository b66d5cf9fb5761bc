//! The question's subject against what the asker can read, before a model
//! writes a query. A small model given "What is the dress code for the
//! office?" and a schema of customers and invoices writes *some* query
//! (customer ids, in one measured run) rather than refuse; the guard lets it
//! through, because reading customer ids is allowed. So a question is
//! refused here, without a model call, only when nothing in it matches
//! what the asker may read: not its central term (the key term closest in
//! meaning to the whole question, see `Orchestrator::central_term`) by a
//! readable table's or column's name, synonyms or description, a sampled
//! value of a public column, a metric or dimension (name, label or
//! synonyms), or, by the documentation search's embedding model, a
//! readable table's or column's text (cosine at least [`SUBJECT_FLOOR`]);
//! and none of its other key terms by a name, synonym, value, metric or
//! dimension (a word of a description is too weak a match for a side term:
//! "dress *code*" against "country *code* at signup"). Words that say how
//! to compute ("maximum", "average", superlatives such as "youngest") are
//! not terms.
//!
//! The check errs toward the model: a question one of whose terms the data
//! names goes to the model, which may still answer that it cannot. Requiring
//! the central term alone to match refused answerable questions whose
//! central term is a word of method ("substring", "combinations",
//! "alphabetical"), and no list of such words generalises (issue 28). The
//! central term is still what a refusal names.
//!
//! Without an embedding model there is no central term and nothing is
//! refused here.

use std::collections::BTreeSet;

use super::{Orchestrator, docs, link};
use crate::policy::Grants;

/// Least cosine similarity of the subject's embedding and a readable
/// table's or column's text for the subject to count as matched. On Spider's
/// 729 dev questions (15 databases, every column readable), central terms
/// below it that no name or value holds are nearly all typos ("carr") or
/// units ("gallon" for `MPG`); on the demo's no-data questions, "dress"
/// scores 0.16, "rating" 0.24, "margin" 0.21, "crash" 0.26.
pub const SUBJECT_FLOOR: f32 = 0.35;

/// Words that say how to compute, not what about: aggregates, order and
/// comparison.
const OPERATORS: &[&str] = &[
    "minimum",
    "maximum",
    "min",
    "max",
    "average",
    "mean",
    "median",
    "total",
    "sum",
    "distinct",
    "different",
    "each",
    "every",
    "number",
    "percentage",
    "percent",
    "ratio",
    "top",
    "bottom",
    "first",
    "ascending",
    "descending",
    "order",
    "sorted",
    "sort",
    "after",
    "before",
    "between",
    "than",
    "less",
    "greater",
    "over",
    "under",
    "least",
];

/// Whether `word` is a superlative ("youngest", "earliest"): an order, not
/// a subject. Short words ending in "est" ("test", "best", "west") are kept.
fn superlative(word: &str) -> bool {
    word.len() > 5 && word.ends_with("est")
}

/// A quoted literal ('East', "Presentation"): a value the asker gives,
/// which the query filters on, not what it is about.
static QUOTED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r#"(?:^|\s)['"‘“][^'"’”]+['"’”]"#).expect("quoted pattern compiles")
});

/// The key terms that can be a query's subject: the documentation key
/// terms outside quoted literals, without a possessive "'s", and without
/// operators, superlatives, comparatives ("lighter than") and numbers (a
/// year or a count is a filter, not a subject).
fn subject_terms(question: &str) -> Vec<String> {
    let unquoted = QUOTED.replace_all(question, " ");
    // A word before "than" is a comparison ("lighter than 3500").
    let normal = super::planner::normalize(&unquoted);
    let words: Vec<&str> = normal.split(' ').collect();
    let compared: Vec<&str> = words
        .windows(2)
        .filter(|w| w[1] == "than")
        .map(|w| w[0])
        .collect();
    docs::significant_terms(&unquoted)
        .into_iter()
        .map(|t| {
            let t = t.trim_matches('\'');
            t.strip_suffix("'s").unwrap_or(t).to_owned()
        })
        .filter(|t| {
            !OPERATORS.contains(&t.as_str())
                && !compared.contains(&t.as_str())
                && !superlative(t)
                && !t.chars().all(|c| c.is_ascii_digit() || c == '-')
                && !t.is_empty()
        })
        .collect()
}

/// Lower-case letters and digits of `text`, nothing else (`AirCon` →
/// `aircon`, `Life_Expectancy` → `lifeexpectancy`).
fn compact(text: &str) -> String {
    crate::text::question_key(text).replace(' ', "")
}

/// The reason a refusal for an unmatched subject carries.
pub const UNMATCHED: &str = "the question's subject matches nothing the asker may read";

/// The refusal for a question whose `subject` matches nothing readable.
pub(super) fn refusal(o: &Orchestrator, subject: &str) -> super::Answer {
    let mut a = super::Answer::refusal(
        format!(
            "I have no data on that: nothing you can read is about \"{subject}\", so any query I wrote would answer a different question."
        ),
        UNMATCHED,
    );
    a.suggestions = o.suggestions();
    a
}

impl Orchestrator {
    /// The question's subject when nothing `grants` can read matches it
    /// (module docs), else `None`. `None` too without an embedding model,
    /// or when the question has no key terms.
    pub async fn unmatched_subject(&self, grants: &Grants, question: &str) -> Option<String> {
        let terms = subject_terms(question);
        let subject = self.central_term(question, &terms).await?;
        let sample = self.schema_sample().await;
        let tables = self.link_tables(grants);
        // Names as words: tables, columns, their synonyms, sampled values,
        // metrics and dimensions. Descriptions are read for the central
        // term only: a word of a description ("country *code* at signup")
        // is too weak a match for a side term ("dress *code*").
        let mut written: Vec<&str> = Vec::new();
        let mut named: BTreeSet<String> = BTreeSet::new();
        let mut described: BTreeSet<String> = BTreeSet::new();
        for t in &tables {
            written.push(&t.name);
            named.extend(link::stems(&t.name));
            described.extend(link::stems(&t.about));
            let def = self.policy.schema.tables.get(&t.name);
            named.extend(
                def.iter()
                    .flat_map(|d| d.synonyms.iter().flat_map(|s| link::stems(s))),
            );
            for c in &t.columns {
                written.push(&c.name);
                named.extend(link::stems(&c.name));
                described.extend(link::stems(&c.about));
                if let Some(col) = def.and_then(|d| d.columns.get(&c.name)) {
                    named.extend(col.synonyms.iter().flat_map(|s| link::stems(s)));
                }
                if c.show_values
                    && let Some(cv) = sample.column(&t.name, &c.name)
                {
                    written.extend(cv.values.iter().map(String::as_str));
                    named.extend(cv.values.iter().flat_map(|v| link::stems(v)));
                }
            }
        }
        for m in self.semantic.metrics() {
            named.extend(m.words().iter().flat_map(|w| link::stems(w)));
            for d in self.semantic.dimensions_of(m) {
                named.extend(d.words().iter().flat_map(|w| link::stems(w)));
            }
        }
        let by_name = |term: &str| {
            let key = compact(term);
            link::stems(term).iter().any(|w| named.contains(w))
                || (key.len() >= 4 && written.iter().any(|n| compact(n).contains(&key)))
        };
        if by_name(&subject)
            || link::stems(&subject).iter().any(|w| described.contains(w))
            || terms.iter().any(|t| by_name(t))
        {
            return None;
        }
        let vector = match self.docs.embed(vec![subject.clone()]).await? {
            Ok(mut v) => v.pop()?,
            Err(_) => return None,
        };
        let close = tables.iter().any(|t| {
            sample.vectors.get(&t.name).is_some_and(|v| {
                std::iter::once(&v.table)
                    .chain(t.columns.iter().filter_map(|c| v.columns.get(&c.name)))
                    .any(|u| link::dot(u, &vector) >= SUBJECT_FLOOR)
            })
        });
        (!close).then_some(subject)
    }

    /// Whether a document `principal` may read names `subject` as a word
    /// (as written, not by stem: "rating" is not "rate").
    pub(super) async fn documented(
        &self,
        principal: &crate::policy::Principal,
        subject: &str,
    ) -> bool {
        let subject = subject.to_lowercase();
        self.docs
            .search(&subject, &principal.acl_groups(), 3)
            .await
            .iter()
            .any(|h| {
                crate::text::question_key(&format!(
                    "{} {} {}",
                    h.chunk.title, h.chunk.section, h.chunk.text
                ))
                .split(' ')
                .any(|w| w == subject)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_superlatives_are_not_subjects() {
        assert_eq!(
            subject_terms("What is the maximum and minimum share of TV series?"),
            ["share", "series"]
        );
        assert_eq!(
            subject_terms("Where is the youngest teacher from?"),
            ["teacher"]
        );
        assert_eq!(subject_terms("What is Kyle's id?"), ["kyle"]);
        assert_eq!(
            subject_terms("Which singers were born after 1948 in 'East'? Kyle's?"),
            ["singers", "born", "kyle"]
        );
        assert_eq!(
            subject_terms("Which models are lighter than 3500?"),
            ["models"]
        );
        assert_eq!(
            subject_terms("How long should an A/B test run?"),
            ["long", "test", "run"]
        );
    }
}
