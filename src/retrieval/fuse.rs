//! Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion
//! outperforms Condorcet and individual Rank Learning Methods", SIGIR 2009):
//! a document's fused score is Σ 1 / (k + rank) over the rankings that
//! contain it, ranks counted from 1. Only ranks matter, so BM25 scores and
//! cosine similarities need no calibration against each other.

use std::collections::HashMap;

/// The paper's constant.
pub const RRF_K: f32 = 60.0;

/// Fuses rankings of `(id, score)` (best first; scores are ignored) into the
/// top `limit` `(id, fused score)`, best first; ties keep the order in which
/// ids were first seen.
pub fn reciprocal_rank_fusion(
    rankings: &[Vec<(String, f32)>],
    k: f32,
    limit: usize,
) -> Vec<(String, f32)> {
    let mut fused: HashMap<&str, (f32, usize)> = HashMap::new();
    let mut order = 0;
    for ranking in rankings {
        for (rank, (id, _)) in ranking.iter().enumerate() {
            let e = fused.entry(id.as_str()).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            e.0 += 1.0 / (k + rank as f32 + 1.0);
        }
    }
    let mut out: Vec<(&str, (f32, usize))> = fused.into_iter().collect();
    out.sort_by(|a, b| b.1.0.total_cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    out.into_iter()
        .take(limit)
        .map(|(id, (s, _))| (id.to_owned(), s))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(ids: &[&str]) -> Vec<(String, f32)> {
        ids.iter().map(|i| ((*i).to_owned(), 0.0)).collect()
    }

    #[test]
    fn agreement_beats_a_single_first_place() {
        let fused = reciprocal_rank_fusion(&[r(&["a", "b", "c"]), r(&["b", "d", "a"])], RRF_K, 10);
        let ids: Vec<&str> = fused.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, vec!["b", "a", "d", "c"]);
        let b = 1.0 / 62.0 + 1.0 / 61.0;
        assert!((fused[0].1 - b).abs() < 1e-6);
    }

    #[test]
    fn limits_and_empty_inputs() {
        assert!(reciprocal_rank_fusion(&[], RRF_K, 5).is_empty());
        assert_eq!(
            reciprocal_rank_fusion(&[r(&["a", "b"]), r(&[])], RRF_K, 1).len(),
            1
        );
    }
}
