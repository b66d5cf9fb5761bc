//! Whether the words a metric answer leaves unexplained change what the
//! question asks.
//!
//! The planner accounts for a question's words by what it recognises:
//! the metric, its dimensions and values, time, ranking and function
//! words. A plainly worded question keeps words it does not recognise
//! ("which plan *brought in* the most revenue", "*pull up* sales"), and a
//! near miss keeps words that change the question ("*average* revenue
//! *per* customer"). No word list separates the two (issue 28: phrasal
//! and light verbs, and words of an entity's name, were refused).
//!
//! The rule here asks the embedding model instead: a word adds nothing
//! to the interpretation when dropping it moves the question neither
//! closer to the interpretation nor away from it, by more than
//! [`MEANING_SLACK`] in cosine. Dropping "average" from "average revenue per
//! customer" brings it closer to "revenue" (the word mattered); dropping
//! "brought" from "which plan brought in the most revenue" hardly moves
//! it. The interpretation is the metric's label and synonyms, the
//! breakdown, the filter values and the period as the question said it.
//! Without an embedding model nothing is rescued, and the planner's
//! verdict stands.

use super::Orchestrator;
use super::planner::MetricPlan;

/// Words that name a computation: an aggregate other than the metric's, a
/// proportion, or a change. A metric answer never accounts for one, so
/// meaning cannot rescue it (sentence embeddings barely register them:
/// dropping "fraction" from "what fraction of signups become paying
/// customers" moves the question by 0.007).
const COMPUTATION: &[&str] = &[
    "average",
    "avg",
    "mean",
    "median",
    "mode",
    "sum",
    "minimum",
    "maximum",
    "min",
    "max",
    "share",
    "fraction",
    "proportion",
    "percentage",
    "percent",
    "ratio",
    "rate",
    "per",
    "growth",
    "increase",
    "decrease",
    "distinct",
    "unique",
    "cumulative",
    "running",
];

/// How far (in cosine, either way) the question may move against its
/// interpretation when a word is dropped, for the word still to count as
/// adding nothing. Chosen on the demo question set (`eval/demo.jsonl`) as
/// the largest value that answers none of its non-metric questions as a
/// metric ("What is on the revenue dashboard?" moves 0.016), and reported
/// on the paraphrase set (`eval/paraphrases.jsonl`); docs/benchmarks.md,
/// issue 28.
pub const MEANING_SLACK: f32 = 0.015;

impl Orchestrator {
    /// Whether every word of `words` adds nothing to what `question` asks
    /// beyond `plan` (module docs). `false` without an embedding model,
    /// for an unknown metric, or when embedding fails.
    pub(super) async fn adds_nothing(
        &self,
        question: &str,
        words: &[String],
        plan: &MetricPlan,
    ) -> bool {
        let Some(def) = self.semantic.metric(&plan.metric) else {
            return false;
        };
        if words.is_empty() {
            return true;
        }
        if words.iter().any(|w| COMPUTATION.contains(&w.as_str())) {
            return false;
        }
        let mut reading = def.words();
        reading.extend(
            plan.group_by
                .iter()
                .map(|d| format!("by {}", d.replace('_', " "))),
        );
        reading.extend(plan.filters.iter().flat_map(|f| f.values.clone()));
        reading.extend(plan.ranges.iter().map(|r| r.label.clone()));
        let normal = super::planner::normalize(question);
        let without = |word: &str| {
            normal
                .split(' ')
                .filter(|w| *w != word)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut texts = vec![reading.join(", "), normal.clone()];
        texts.extend(words.iter().map(|w| without(w)));
        let vectors = match self.docs.embed(texts).await {
            Some(Ok(v)) if v.len() == words.len() + 2 => v,
            _ => return false,
        };
        let cos = |a: &[f32], b: &[f32]| super::link::dot(a, b);
        let with = cos(&vectors[0], &vectors[1]);
        let mut all = true;
        for v in &vectors[2..] {
            let gain = cos(&vectors[0], v) - with;
            // The word itself is the asker's text and is not logged (LOGGING.md).
            tracing::debug!(gain = %format!("{gain:.4}"), "meaning of an unexplained word");
            all &= gain.abs() <= MEANING_SLACK;
        }
        all
    }
}
