//! The LIMIT clamp applied to every accepted statement.

use sqlparser::ast::{Expr, LimitClause, Query, Value};

/// Sets the outer LIMIT to `min(existing literal, max_rows)`; a missing or
/// non-literal limit becomes `max_rows`.
pub(super) fn clamp_limit(query: &mut Query, max_rows: u64) {
    let max = Expr::value(Value::Number(max_rows.to_string(), false));
    let clamp = |limit: &mut Option<Expr>| {
        let keep = matches!(limit, Some(Expr::Value(v)) if matches!(&v.value, Value::Number(n, _) if n.parse::<u64>().is_ok_and(|n| n <= max_rows)));
        if !keep {
            *limit = Some(max.clone());
        }
    };
    match &mut query.limit_clause {
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(max.clone()),
                offset: None,
                limit_by: Vec::new(),
            });
        }
        Some(LimitClause::LimitOffset { limit, .. }) => clamp(limit),
        Some(LimitClause::OffsetCommaLimit { limit, .. }) => {
            let mut l = Some(limit.clone());
            clamp(&mut l);
            *limit = l.unwrap_or_else(|| max.clone());
        }
    }
}
