//! Listing rows of one table ("show me the emails of customers who churned
//! last month"). The statement is ad-hoc SQL, so it needs the `sql`
//! capability and passes the guard with the asker's column grants: a role
//! without the PII grant is refused with the guard's reason and offered the
//! count instead.

use super::planner::ListPlan;
use super::{Answer, AnswerKind, DataTable, KeyNumber, Orchestrator, StepError, group_digits};
use crate::policy::{Access, ColumnClass, Grants};
use crate::sql::Rejection;

/// Rows shown by a listing; the policy's row cap may lower it.
const LIST_ROWS: u64 = 100;

fn where_clause(o: &Orchestrator, plan: &ListPlan) -> (String, String) {
    let d = o.warehouse.dialect();
    match &plan.filter {
        Some((col, Some(r))) => (
            format!(
                " WHERE {col} >= {} AND {col} < {}",
                d.date_literal(r.range.start),
                d.date_literal(r.range.end)
            ),
            format!(" with {col} in {}", r.label),
        ),
        Some((col, None)) => (
            format!(" WHERE {col} IS NOT NULL"),
            format!(" with a {col} value"),
        ),
        None => (String::new(), String::new()),
    }
}

pub(super) async fn list(o: &Orchestrator, grants: &Grants, plan: &ListPlan) -> Answer {
    // Display defaults the asker may not read are dropped; columns the
    // question named stay, so a denial explains itself.
    let readable = |c: &String| {
        plan.requested.contains(c)
            || o.policy
                .schema
                .column(&plan.table, c)
                .is_some_and(|d| grants.access(d.class) != Access::Deny)
    };
    let columns: Vec<String> = plan
        .columns
        .iter()
        .filter(|c| readable(c))
        .cloned()
        .collect();
    if columns.is_empty() {
        return Answer::refusal(
            format!(
                "I can't list {}: your roles may not read any of its columns.",
                plan.table
            ),
            format!(
                "{} may not read the columns of {}",
                grants.roles_phrase(),
                plan.table
            ),
        );
    }
    let plan = &ListPlan {
        columns,
        ..plan.clone()
    };
    let (filter, described) = where_clause(o, plan);
    let order = plan
        .filter
        .as_ref()
        .map(|(c, _)| c.clone())
        .unwrap_or_else(|| plan.columns[0].clone());
    let sql = format!(
        "SELECT {} FROM {}{filter} ORDER BY {order} LIMIT {LIST_ROWS}",
        plan.columns.join(", "),
        plan.table
    );
    let count_sql = format!("SELECT COUNT(*) AS n FROM {}{filter}", plan.table);
    let what = format!("{}{described}", plan.table);
    match o.run_sql(grants, &sql).await {
        Ok((validated, result)) => {
            let mut answer = Answer::new(AnswerKind::Sql, String::new());
            answer.ran(format!("list {what}"), &validated, result.rows.len());
            answer.interpretation = super::interpret::of_sql(validated.sql(), validated.dialect());
            let total = count(o, grants, &count_sql, &mut answer).await;
            if let Some(t) = total {
                answer.key_numbers.push(KeyNumber {
                    label: format!("{what}, total"),
                    value: t,
                    formatted: group_digits(t, 0),
                });
            }
            let shown = result.rows.len();
            let mut text = match total {
                Some(t) if (t as usize) > shown => format!(
                    "Showing the first {shown} of {} {what}.",
                    group_digits(t, 0)
                ),
                _ => format!("Here are the {shown} {what}."),
            };
            if validated.classes().contains(&ColumnClass::Pii) {
                text.push_str(&format!(
                    " The result includes personal data, shown because {} holds the PII grant; handle it under the data policy.",
                    grants.roles_phrase()
                ));
                if grants.audited {
                    answer
                        .notes
                        .push("Access to personal data by this role is audited.".into());
                }
            }
            answer.answer = text;
            answer.data = DataTable {
                columns: plan.columns.clone(),
                rows: result.rows,
            };
            answer
        }
        Err(StepError::Guard(rejection)) => {
            let mut answer = Answer::refusal(
                format!("I can't list that: {rejection}."),
                rejection.to_string(),
            );
            if matches!(rejection, Rejection::ColumnDenied { .. })
                && let Some(n) = count(o, grants, &count_sql, &mut answer).await
            {
                let shown = group_digits(n, 0);
                answer.answer.push_str(&format!(
                    " I can tell you how many there are instead: {shown} {what}."
                ));
                answer.key_numbers.push(KeyNumber {
                    label: format!("{what}, count"),
                    value: n,
                    formatted: shown,
                });
                answer.data = DataTable {
                    columns: vec!["count".into()],
                    rows: vec![vec![n.into()]],
                };
            }
            answer.suggestions = vec![format!("how many {} are there?", plan.table)];
            answer
        }
        Err(e) => o.step_failed(Answer::new(AnswerKind::Sql, String::new()), e),
    }
}

async fn count(o: &Orchestrator, grants: &Grants, sql: &str, answer: &mut Answer) -> Option<f64> {
    let (validated, result) = o.run_sql(grants, sql).await.ok()?;
    answer.ran("count", &validated, result.rows.len());
    result.get(0, "n").and_then(serde_json::Value::as_f64)
}
