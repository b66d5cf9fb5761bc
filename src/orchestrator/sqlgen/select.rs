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

/// How many tables a statement reads (each `FROM` and `JOIN`), for
/// breaking ties: of two statements that agree equally often, the one with
/// fewer joins is the one less likely to have joined a table the question
/// does not need (the commonest wrong answer of small models on Spider,
/// docs/benchmarks.md). Length is no tie-breaker: a shorter statement is
/// often one without the `ORDER BY` the question asked for, and its rows
/// group with the ordered ones (groups compare rows as multisets).
fn tables_read(sql: &str) -> usize {
    sql.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.eq_ignore_ascii_case("from") || w.eq_ignore_ascii_case("join"))
        .count()
}

/// The statement answering for the largest group of equal results and the
/// group's votes: ties go to a group with rows, then to the group whose
/// statement reads the fewest tables ([`tables_read`]), then to the greedy
/// candidate's group; within the group, the statement reading the fewest
/// tables, then the one with the most votes, then the greedy one. `None`
/// when every statement failed.
pub(super) fn largest_group(tried: &[Tried]) -> Option<(usize, u32)> {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in tried.iter().enumerate() {
        if let Ok((_, r)) = &t.outcome {
            groups.entry(result_key(r)).or_default().push(i);
        }
    }
    let votes = |members: &[usize]| members.iter().map(|&i| tried[i].votes).sum::<u32>();
    let pick = |members: &[usize]| {
        members
            .iter()
            .copied()
            .min_by_key(|&i| {
                let t = &tried[i];
                (
                    tables_read(&t.sql),
                    std::cmp::Reverse(t.votes),
                    std::cmp::Reverse(t.greedy),
                )
            })
            .unwrap_or(members[0])
    };
    let best = groups.values().max_by_key(|members| {
        let rows = tried[members[0]]
            .outcome
            .as_ref()
            .is_ok_and(|(_, r)| !r.rows.is_empty());
        let chosen = &tried[pick(members)];
        (
            votes(members),
            rows,
            std::cmp::Reverse(tables_read(&chosen.sql)),
            members.iter().any(|&i| tried[i].greedy),
        )
    })?;
    Some((pick(best), votes(best)))
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

    fn tried(sql: &str, votes: u32, rows: Vec<Vec<serde_json::Value>>) -> Tried {
        Tried {
            sql: sql.into(),
            votes,
            greedy: false,
            outcome: Ok((
                crate::sql::unguarded_for_tests(sql, "test", crate::sql::Dialect::Sqlite),
                ResultSet {
                    columns: vec!["a".into()],
                    rows,
                    truncated: false,
                },
            )),
        }
    }

    #[test]
    fn the_largest_group_wins_and_ties_go_to_the_simpler_statement() {
        let one = || vec![vec![1.into()]];
        let two = || vec![vec![2.into()]];
        let joined = "SELECT t.a FROM t JOIN u ON t.id = u.id";
        // Votes decide first, however involved the statement.
        let (pick, votes) =
            largest_group(&[tried("SELECT a FROM t", 1, one()), tried(joined, 2, two())])
                .expect("a group");
        assert_eq!((pick, votes), (1, 2));
        // A tie goes to the group whose statement reads fewer tables.
        let (pick, _) = largest_group(&[
            tried(joined, 1, two()),
            tried("SELECT a FROM t WHERE b = 1", 1, one()),
        ])
        .expect("a group");
        assert_eq!(pick, 1);
        // A group with rows beats an empty one of equal votes.
        let (pick, _) = largest_group(&[
            tried("SELECT a FROM t", 1, Vec::new()),
            tried(joined, 1, one()),
        ])
        .expect("a group");
        assert_eq!(pick, 1);
        // Within a group, the simplest statement answers.
        let (pick, votes) =
            largest_group(&[tried(joined, 1, one()), tried("SELECT a FROM t", 1, one())])
                .expect("a group");
        assert_eq!((pick, votes), (1, 2));
        // Length alone decides nothing: the ordered statement the greedy
        // decoding wrote is not traded for a shorter unordered one.
        let mut ordered = tried("SELECT a FROM t ORDER BY a DESC", 1, one());
        ordered.greedy = true;
        let (pick, _) =
            largest_group(&[tried("SELECT a FROM t", 1, one()), ordered]).expect("a group");
        assert_eq!(pick, 1);
        assert!(largest_group(&[]).is_none());
    }
}
