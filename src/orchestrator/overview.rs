//! The KPI overview: headline metrics for the last 7 days against the 7 before.

use chrono::Duration;

use super::{
    Answer, AnswerKind, KeyNumber, OVERVIEW_METRICS, Orchestrator, format_value, group_digits,
};
use crate::policy::Grants;
use crate::semantic::TimeRange;

impl Orchestrator {
    pub(super) async fn overview(&self, grants: &Grants) -> Answer {
        let current = TimeRange {
            start: self.as_of - Duration::days(7),
            end: self.as_of,
        };
        let previous = current.previous();
        let mut answer = Answer::new(AnswerKind::Overview, String::new());
        answer.data.columns = vec![
            "metric".into(),
            "last_7_days".into(),
            "previous_7_days".into(),
            "change_pct".into(),
        ];
        let mut lines = vec![format!(
            "Headline metrics for the last 7 days ({current}) against the 7 days before ({previous}):"
        )];
        for name in OVERVIEW_METRICS {
            let Some(def) = self.semantic.metric(name) else {
                continue;
            };
            let format = def.format();
            let cur = self
                .metric_value(
                    grants,
                    name,
                    current,
                    &mut answer,
                    &format!("{name}, last 7 days"),
                    &[],
                )
                .await;
            let prev = self
                .metric_value(
                    grants,
                    name,
                    previous,
                    &mut answer,
                    &format!("{name}, previous 7 days"),
                    &[],
                )
                .await;
            let (Ok(Some(c)), Ok(Some(p))) = (cur, prev) else {
                lines.push(format!("- {}: no data", def.label()));
                continue;
            };
            let pct = (p != 0.0).then(|| (c - p) / p * 100.0);
            let change = pct
                .map(|x| {
                    format!(
                        " ({}{}%)",
                        if x >= 0.0 { "+" } else { "-" },
                        group_digits(x.abs(), 1)
                    )
                })
                .unwrap_or_default();
            lines.push(format!(
                "- {}: {} vs {}{change}",
                def.label(),
                format_value(c, format),
                format_value(p, format)
            ));
            answer.key_numbers.push(KeyNumber {
                label: def.label().to_owned(),
                value: c,
                formatted: format_value(c, format),
            });
            answer.data.rows.push(vec![
                name.into(),
                c.into(),
                p.into(),
                pct.map(serde_json::Value::from).unwrap_or_default(),
            ]);
        }
        if answer.data.rows.is_empty() {
            return Answer::refusal(
                "I could not compute any headline metric for you.",
                "no headline metric is available to your roles",
            );
        }
        answer.answer = lines.join("\n");
        answer
    }
}
