//! Metric plans from a language model's `query_metric` call, read with the
//! planner's own time, dimension and grain parsing.

use super::{
    MetricPlan, PlanContext, RANK_WORDS, find_ranges_after, metric_plan, normalize,
    unexplained_words,
};

/// A metric plan from a model's `query_metric` call: the metric by exact
/// name, the period read from `period` (else from the question, else the
/// metric's default window), the dimension and grain from the arguments or
/// the question.
///
/// The question must be about that metric as the planner would read it:
/// every word of it accounted for by the metric, its dimensions and values,
/// time, breakdown and function words. A small model otherwise answers
/// "what is our stock price?" with active customers.
///
/// # Errors
/// A sentence the model can act on: unknown metric, a metric the question's
/// words do not fit, unreadable period, or a dimension the metric does not have.
pub fn metric_call(
    ctx: &PlanContext,
    question: &str,
    metric: &str,
    period: Option<&str>,
    group_by: Option<&str>,
    grain: Option<&str>,
) -> Result<MetricPlan, String> {
    let m = ctx
        .layer
        .metric(metric)
        .ok_or_else(|| format!("there is no metric named {metric:?}; use list_metrics"))?;
    let ranges = match period {
        Some(p) => {
            let found = find_ranges_after(&normalize(p), ctx.today, None);
            if found.is_empty() {
                return Err(format!(
                    "cannot read the period {p:?}; write it like \"last week\" or \"2026-10-01 to 2026-10-31\""
                ));
            }
            found
        }
        None => find_ranges_after(&normalize(question), ctx.today, None),
    };
    let mut extra = String::new();
    for g in [group_by, grain].into_iter().flatten() {
        extra.push_str(&format!(" by {g}"));
    }
    let text = format!("{question}{extra}");
    let plan = metric_plan(&text, &normalize(&text), m, ranges, None, None, ctx);
    let unexplained: Vec<String> = unexplained_words(&normalize(question), m, ctx)
        .into_iter()
        .filter(|w| !(plan.rank.is_some() && RANK_WORDS.contains(&w.as_str())))
        .collect();
    if !unexplained.is_empty() {
        return Err(format!(
            "{metric} does not answer this question: it says nothing about {}; use another tool or refuse",
            unexplained.join(", ")
        ));
    }
    if let Some(g) = group_by
        && plan.group_by.is_none()
    {
        let dims: Vec<String> = ctx
            .layer
            .dimensions_of(m)
            .iter()
            .map(|d| d.name.clone())
            .collect();
        return Err(format!(
            "{g:?} is not a dimension of {metric}; its dimensions are {}",
            dims.join(", ")
        ));
    }
    Ok(plan)
}
