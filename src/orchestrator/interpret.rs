//! How steward read a question, shown with every data answer so a person
//! can spot a misreading at a glance: the metric or tables, the measure,
//! filters, breakdown, grain, period, order and limit, and one plain
//! sentence ("I read this as: revenue, by plan, 2026-11-23 to 2026-11-29").
//!
//! Metric answers are described from the plan; SQL answers from the
//! statement that ran (as the guard returned it), so the description is of
//! what was computed, not of what the model meant.

use serde::Serialize;
use sqlparser::ast::{Expr, GroupByExpr, LimitClause, SetExpr, Statement, TableFactor};
use sqlparser::parser::Parser;

use super::planner::MetricPlan;
use crate::semantic::MetricDef;
use crate::sql::Dialect;

/// Longest expression text kept in a description.
const MAX_EXPR: usize = 80;

/// The question as steward read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Interpretation {
    /// The metric answered, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Tables read (SQL answers).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// What is computed: the metric's label, or the select list.
    pub measure: String,
    /// Filters: dimension values, or the WHERE clause.
    pub filters: Vec<String>,
    /// Breakdown dimensions or GROUP BY expressions.
    pub group_by: Vec<String>,
    /// Series grain, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grain: Option<String>,
    /// The period, and the one compared with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    /// Sort order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Row limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// All of it as one sentence.
    pub sentence: String,
}

/// Reads a metric plan.
pub fn of_metric(plan: &MetricPlan, def: &MetricDef) -> Interpretation {
    let mut i = Interpretation {
        metric: Some(def.name.clone()),
        measure: def.label().to_lowercase(),
        filters: plan
            .filters
            .iter()
            .map(|f| format!("{} = {}", f.dimension, f.values.join(" or ")))
            .collect(),
        group_by: plan.group_by.iter().cloned().collect(),
        grain: plan.grain.map(|g| format!("{g:?}").to_lowercase()),
        order: plan.rank.map(|r| {
            format!(
                "{} {}",
                def.name,
                if r.descending {
                    "descending"
                } else {
                    "ascending"
                }
            )
        }),
        limit: plan.rank.map(|r| r.limit as u64),
        ..Interpretation::default()
    };
    let mut period = plan
        .ranges
        .first()
        .map(|r| r.range.to_string())
        .unwrap_or_default();
    if let Some(prev) = plan.ranges.get(1) {
        period.push_str(&format!(", compared with {}", prev.range));
    }
    i.period = Some(period).filter(|p| !p.is_empty());
    i.sentence = sentence(&i);
    i
}

/// Reads the statement that ran; `None` when it does not parse as one query.
pub fn of_sql(sql: &str, dialect: Dialect) -> Option<Interpretation> {
    let parsed = Parser::parse_sql(&*dialect.parser(), sql).ok()?;
    let [Statement::Query(query)] = parsed.as_slice() else {
        return None;
    };
    let mut i = Interpretation::default();
    if let SetExpr::Select(select) = query.body.as_ref() {
        i.measure = select
            .projection
            .iter()
            .map(|p| short(&p.to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        for t in &select.from {
            for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
                i.tables.push(table_name(f));
            }
        }
        if let Some(w) = &select.selection {
            i.filters = conjuncts(w)
                .into_iter()
                .map(|e| short(&e.to_string()))
                .collect();
        }
        if let GroupByExpr::Expressions(exprs, _) = &select.group_by {
            i.group_by = exprs.iter().map(|e| short(&e.to_string())).collect();
        }
    } else {
        i.measure = "a combination of queries".into();
    }
    if let Some(order) = &query.order_by {
        i.order = Some(short(&order.to_string().replace("ORDER BY ", "")));
    }
    if let Some(LimitClause::LimitOffset {
        limit: Some(Expr::Value(v)),
        ..
    }) = &query.limit_clause
    {
        i.limit = v.value.to_string().parse().ok();
    }
    i.sentence = sentence(&i);
    Some(i)
}

/// A FROM item's name: the table, or "a subquery" (the guard's row-filtered
/// reads are subqueries aliased as the table, so the alias names it).
fn table_name(f: &TableFactor) -> String {
    match f {
        TableFactor::Table { name, .. } => name.to_string(),
        TableFactor::Derived { alias: Some(a), .. } => a.name.value.clone(),
        _ => "a subquery".into(),
    }
}

/// The AND-ed parts of a predicate.
fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryOp {
            left,
            op: sqlparser::ast::BinaryOperator::And,
            right,
        } => {
            let mut v = conjuncts(left);
            v.extend(conjuncts(right));
            v
        }
        Expr::Nested(inner) => conjuncts(inner),
        other => vec![other],
    }
}

fn short(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= MAX_EXPR {
        return flat;
    }
    let cut: String = flat.chars().take(MAX_EXPR).collect();
    format!("{cut}…")
}

fn sentence(i: &Interpretation) -> String {
    let mut parts = vec![i.measure.clone()];
    if !i.tables.is_empty() {
        parts[0] = format!("{} from {}", i.measure, i.tables.join(", "));
    }
    if !i.filters.is_empty() {
        parts.push(format!("where {}", i.filters.join(" and ")));
    }
    if !i.group_by.is_empty() {
        parts.push(format!("by {}", i.group_by.join(", ")));
    }
    if let Some(g) = &i.grain {
        parts.push(format!("per {g}"));
    }
    if let Some(p) = &i.period {
        parts.push(p.clone());
    }
    if let Some(o) = &i.order {
        parts.push(format!("ordered by {o}"));
    }
    if let Some(l) = i.limit {
        parts.push(format!("at most {l} rows"));
    }
    format!("I read this as: {}.", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_reads_as_its_parts() {
        let i = of_sql(
            "SELECT country, COUNT(*) AS n FROM singer WHERE age > 30 AND is_male = 'T' GROUP BY country ORDER BY n DESC LIMIT 5",
            Dialect::Sqlite,
        )
        .unwrap();
        assert_eq!(i.tables, ["singer"]);
        assert_eq!(i.measure, "country, COUNT(*) AS n");
        assert_eq!(i.filters, ["age > 30", "is_male = 'T'"]);
        assert_eq!(i.group_by, ["country"]);
        assert_eq!(i.order.as_deref(), Some("n DESC"));
        assert_eq!(i.limit, Some(5));
        assert_eq!(
            i.sentence,
            "I read this as: country, COUNT(*) AS n from singer, where age > 30 and is_male = 'T', by country, ordered by n DESC, at most 5 rows."
        );
        let joined = of_sql(
            "SELECT s.name FROM singer AS s JOIN (SELECT id FROM concert WHERE region = 'EMEA') AS concert ON s.id = concert.id",
            Dialect::Sqlite,
        )
        .unwrap();
        assert_eq!(joined.tables, ["singer", "concert"]);
        assert!(of_sql("not sql", Dialect::Sqlite).is_none());
    }
}
