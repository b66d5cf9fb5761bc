//! Choosing among candidate statements by what they return when run.

use std::collections::BTreeMap;

use crate::orchestrator::agent::normalized_sql as normalized;
use crate::sql::ValidatedSql;
use crate::warehouse::ResultSet;

use super::proposal::{Proposal, read_proposal};

/// A result's identity for grouping: its rows as a sorted multiset.
fn result_key(r: &ResultSet) -> String {
    let mut rows: Vec<String> = r
        .rows
        .iter()
        .map(|row| serde_json::to_string(row).unwrap_or_default())
        .collect();
    rows.sort_unstable();
    format!("{}:{}", r.columns.len(), rows.join("\n"))
}

/// One distinct statement and how it fared.
pub(super) struct Tried {
    pub sql: String,
    pub votes: u32,
    pub greedy: bool,
    pub outcome: Result<(ValidatedSql, ResultSet), String>,
}

/// The distinct statements proposed (votes counted, the greedy one marked)
/// and the reasons of replies saying the tables cannot answer.
pub(super) fn distinct_proposals(texts: &[(String, bool)]) -> (Vec<Tried>, Vec<String>) {
    let mut tried: Vec<Tried> = Vec::new();
    let mut cannot = Vec::new();
    for (text, is_greedy) in texts {
        match read_proposal(text) {
            Proposal::Sql(sql) => {
                let norm = normalized(&sql);
                if let Some(t) = tried.iter_mut().find(|t| normalized(&t.sql) == norm) {
                    t.votes += 1;
                    t.greedy |= is_greedy;
                } else {
                    tried.push(Tried {
                        sql,
                        votes: 1,
                        greedy: *is_greedy,
                        outcome: Err(String::new()),
                    });
                }
            }
            Proposal::CannotAnswer(why) => cannot.push(why),
            Proposal::Nothing => {}
        }
    }
    (tried, cannot)
}

/// The statement answering for the largest group of equal results and the
/// group's votes: ties go to a group with rows, then to the greedy
/// candidate's group; within the group, the greedy candidate if it is there.
/// `None` when every statement failed.
pub(super) fn largest_group(tried: &[Tried]) -> Option<(usize, u32)> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in tried.iter().enumerate() {
        if let Ok((_, r)) = &t.outcome {
            groups.entry(result_key(r)).or_default().push(i);
        }
    }
    let votes = |members: &[usize]| members.iter().map(|&i| tried[i].votes).sum::<u32>();
    let best = groups.values().max_by_key(|members| {
        let rows = tried[members[0]]
            .outcome
            .as_ref()
            .is_ok_and(|(_, r)| !r.rows.is_empty());
        let greedy = members.iter().any(|&i| tried[i].greedy);
        (votes(members), rows, greedy)
    })?;
    let pick = best
        .iter()
        .copied()
        .find(|&i| tried[i].greedy)
        .unwrap_or(best[0]);
    Some((pick, votes(best)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_group_as_multisets_of_rows() {
        let r = |rows: Vec<Vec<serde_json::Value>>| ResultSet {
            columns: vec!["a".into()],
            rows,
            truncated: false,
        };
        assert_eq!(
            result_key(&r(vec![vec![1.into()], vec![2.into()]])),
            result_key(&r(vec![vec![2.into()], vec![1.into()]]))
        );
        assert_ne!(
            result_key(&r(vec![vec![1.into()], vec![1.into()]])),
            result_key(&r(vec![vec![1.into()]]))
        );
        assert_eq!(
            normalized("SELECT  a\n FROM t"),
            normalized("SELECT a FROM t")
        );
    }
}
