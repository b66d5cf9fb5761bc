//! Result-set equality as Spider's execution accuracy defines it (Yu et al.,
//! 2018, "Spider", and its `exec_eval` in the test-suite-sql-eval
//! repository): two results match when they hold the same multiset of rows
//! under some permutation of columns. Row order counts only when the gold
//! statement has an `ORDER BY`. Values are compared after normalising
//! numbers (integers and floats equal when they agree to 1e-6 relative).

use serde_json::Value;

/// A result: column names and rows of JSON scalars.
pub type Rows = [Vec<Value>];

/// Whether `predicted` matches `gold` (see the module docs).
pub fn results_match(gold: &Rows, predicted: &Rows, ordered: bool) -> bool {
    if gold.len() != predicted.len() {
        return false;
    }
    let width = gold.first().map_or(0, Vec::len);
    if gold.is_empty() {
        return true;
    }
    if predicted.first().map_or(0, Vec::len) != width || width > 8 {
        return false;
    }
    let gold_cols = columns(gold);
    let pred_cols = columns(predicted);
    // For each gold column, the predicted columns holding the same values.
    let candidates: Vec<Vec<usize>> = gold_cols
        .iter()
        .map(|g| {
            (0..width)
                .filter(|&j| same_multiset(g, &pred_cols[j]))
                .collect()
        })
        .collect();
    let mut used = vec![false; width];
    let mut perm = Vec::with_capacity(width);
    search(&candidates, &mut used, &mut perm, &mut |perm| {
        let permuted: Vec<Vec<String>> = predicted
            .iter()
            .map(|row| perm.iter().map(|&j| norm(&row[j])).collect())
            .collect();
        let gold_rows: Vec<Vec<String>> = gold
            .iter()
            .map(|row| row.iter().map(norm).collect())
            .collect();
        if ordered {
            permuted == gold_rows
        } else {
            sorted(permuted) == sorted(gold_rows)
        }
    })
}

fn search(
    candidates: &[Vec<usize>],
    used: &mut Vec<bool>,
    perm: &mut Vec<usize>,
    check: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    let i = perm.len();
    if i == candidates.len() {
        return check(perm);
    }
    for &j in &candidates[i] {
        if used[j] {
            continue;
        }
        used[j] = true;
        perm.push(j);
        if search(candidates, used, perm, check) {
            return true;
        }
        perm.pop();
        used[j] = false;
    }
    false
}

fn columns(rows: &Rows) -> Vec<Vec<String>> {
    let width = rows.first().map_or(0, Vec::len);
    (0..width)
        .map(|j| sorted(rows.iter().map(|r| norm(&r[j])).collect()))
        .collect()
}

fn same_multiset(a: &[String], b: &[String]) -> bool {
    a == b
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A canonical text form: numbers rounded to 6 significant decimals.
fn norm(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{f:.0}")
            } else {
                format!("{:.6e}", f)
            }
        }
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .filter(|_| s.trim() == s && !s.is_empty())
            .map(|f| norm(&Value::from(f)))
            .unwrap_or_else(|| s.clone()),
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(v: Value) -> Vec<Vec<Value>> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn column_order_does_not_matter_but_values_do() {
        let gold = rows(json!([["a", 1], ["b", 2]]));
        assert!(results_match(
            &gold,
            &rows(json!([[2, "b"], [1, "a"]])),
            false
        ));
        assert!(results_match(
            &gold,
            &rows(json!([["a", 1.0], ["b", 2.0]])),
            true
        ));
        assert!(!results_match(
            &gold,
            &rows(json!([["a", 1], ["b", 3]])),
            false
        ));
        assert!(!results_match(
            &gold,
            &rows(json!([["a", 2], ["b", 1]])),
            false
        ));
        assert!(!results_match(&gold, &rows(json!([["a", 1]])), false));
        assert!(!results_match(&gold, &rows(json!([["a"], ["b"]])), false));
    }

    #[test]
    fn order_counts_only_when_asked() {
        let gold = rows(json!([["a", 1], ["b", 2]]));
        let swapped = rows(json!([["b", 2], ["a", 1]]));
        assert!(results_match(&gold, &swapped, false));
        assert!(!results_match(&gold, &swapped, true));
    }

    #[test]
    fn duplicate_rows_are_a_multiset() {
        let gold = rows(json!([[1], [1], [2]]));
        assert!(!results_match(&gold, &rows(json!([[1], [2], [2]])), false));
        assert!(results_match(&gold, &rows(json!([[2], [1], [1]])), false));
    }

    #[test]
    fn equal_columns_are_tried_in_every_pairing() {
        let gold = rows(json!([[1, 1, "x"], [2, 2, "y"]]));
        assert!(results_match(
            &gold,
            &rows(json!([["x", 1, 1], ["y", 2, 2]])),
            false
        ));
        let tricky = rows(json!([[1, 2], [2, 1]]));
        assert!(results_match(
            &tricky,
            &rows(json!([[2, 1], [1, 2]])),
            false
        ));
    }
}
