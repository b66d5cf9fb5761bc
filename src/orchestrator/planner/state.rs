//! Questions about the present state rather than events in a period: "How
//! many tickets are still open?", "What is our MRR right now?".
//!
//! Two kinds of metric answer account for a state word ("still",
//! "currently", "right now", "at the moment"):
//! - a *snapshot* metric (every base measure semi-additive over time, like
//!   MRR or active customers): its value on the latest whole day;
//! - a filter on a *state dimension* (`config.meta.state: true`, values a row
//!   moves through, like a ticket's `open` then `resolved`): every row,
//!   whatever its date, that is in that state now.
//!
//! Anything else with a state word stays unexplained, and the question goes
//! to the model or is refused: "tickets opened in the last 7 days" does not
//! answer "how many tickets are still open".

use std::sync::LazyLock;

use regex::Regex;

use super::{MetricPlan, PlanContext};
use crate::orchestrator::timephrase::FoundRange;
use crate::semantic::{MetricDef, TimeRange};

static STATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(still|currently|presently|right now|at the moment|at present|as of (now|today)|now)\b",
    )
    .expect("state pattern compiles")
});

/// The words of [`STATE`]'s phrases, as the planner's word check sees them.
const STATE_WORDS: &[&str] = &[
    "still",
    "currently",
    "presently",
    "right",
    "now",
    "moment",
    "present",
    "as",
    "today",
];

/// Whether the (normalised) question asks about the present state.
fn asks_state(q: &str) -> bool {
    STATE.is_match(q)
}

/// Adjusts a metric plan for a state question and says whether its state
/// words are accounted for. `defaulted` is true when the question named no
/// time range and none was inherited, so the plan holds the metric's default
/// window, which a state reading replaces:
/// - a snapshot metric asked about now: the latest whole day (yesterday);
/// - a filter on a state dimension, no grain: all time through today.
///
/// The replaced range's label says which reading was taken. The state words
/// count as accounted for when a reading was taken, or when a state filter
/// applies within a range the question named.
pub(super) fn apply(
    plan: &mut MetricPlan,
    q: &str,
    m: &MetricDef,
    defaulted: bool,
    ctx: &PlanContext,
) -> bool {
    let state_words = asks_state(q);
    let snapshot = ctx.layer.is_snapshot(m);
    let on_state_dimension = ctx
        .layer
        .dimensions_of(m)
        .iter()
        .filter(|d| d.is_state())
        .any(|d| plan.filters.iter().any(|f| f.dimension == d.name));
    let replace = defaulted && plan.grain.is_none() && plan.ranges.len() == 1;
    let mut applied = false;
    if replace && snapshot && state_words {
        if let Some(day) = TimeRange::new(ctx.today - chrono::Duration::days(1), ctx.today) {
            plan.ranges = vec![FoundRange {
                range: day,
                label: format!("now ({day}, the latest whole day)"),
                at: 0,
            }];
            applied = true;
        }
    } else if replace && on_state_dimension && !snapshot {
        let range = TimeRange::through(ctx.today);
        plan.ranges = vec![FoundRange {
            range,
            label: format!("now ({range})"),
            at: 0,
        }];
        applied = true;
    }
    // With a range of its own, a state filter reads as "… that are still
    // open now"; a snapshot with a range or grain is not "now".
    state_words && (applied || (!defaulted && on_state_dimension))
}

/// Removes the state words from a list of unexplained words.
pub(super) fn account(words: &mut Vec<String>) {
    words.retain(|w| !STATE_WORDS.contains(&w.as_str()));
}

#[cfg(test)]
mod tests {
    use super::asks_state;

    #[test]
    fn state_phrases_are_recognised_as_whole_words() {
        for q in [
            "how many tickets are still open",
            "what is our mrr right now",
            "how many customers do we currently have",
            "active customers at the moment",
            "mrr as of today",
        ] {
            assert!(asks_state(q), "{q}");
        }
        for q in [
            "how many tickets were opened last week",
            "revenue by plan",
            "stillness index",
            "known issues",
        ] {
            assert!(!asks_state(q), "{q}");
        }
    }
}
