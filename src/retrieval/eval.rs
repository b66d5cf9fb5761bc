//! Retrieval evaluation: recall@k and mean reciprocal rank over a labelled
//! set of questions.
//!
//! A case is one JSON object per line: `question`, `relevant` (chunk ids that
//! answer it), optionally `groups` (the asker's groups; default none, i.e.
//! public documents only). recall@k is the share of a case's relevant chunks
//! in the top k, averaged over cases; MRR is the mean of 1 / rank of the first
//! relevant chunk within the top 10 (0 when none is there) — the usual
//! definitions (Manning, Raghavan & Schütze, Introduction to Information
//! Retrieval, ch. 8).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Mode, Retriever};

/// Depth for MRR.
pub const MRR_DEPTH: usize = 10;

/// One labelled question.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The question as a user would ask it (also read from `query`).
    #[serde(alias = "query")]
    pub question: String,
    /// Chunk ids that answer it (also read from `relevant_ids`, `chunk_ids`).
    #[serde(alias = "relevant_ids", alias = "chunk_ids")]
    pub relevant: Vec<String>,
    /// The asker's groups.
    #[serde(default)]
    pub groups: Vec<String>,
    /// A configured dev user whose roles and groups are added to `groups`.
    #[serde(default)]
    pub user: Option<String>,
}

/// Scores of one ranking mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeScore {
    /// The mode.
    pub mode: Mode,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean reciprocal rank (depth 10).
    pub mrr: f64,
    /// Questions with no relevant chunk in the top k.
    pub misses: Vec<String>,
    /// Median search time, milliseconds (embedding included).
    pub p50_ms: f64,
}

/// A whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Questions.
    pub cases: usize,
    /// The k of recall@k.
    pub k: usize,
    /// One entry per mode that could run.
    pub modes: Vec<ModeScore>,
}

/// Reads cases from a JSONL file (blank lines and `//` comments skipped).
///
/// # Errors
/// Unreadable file; a malformed line, with its number.
pub fn load(path: &Path) -> Result<Vec<Case>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Scores every mode the retriever supports on `cases` (with `user` already
/// resolved into `groups`).
///
/// # Errors
/// A case naming a chunk id the index does not hold (a stale label), or none.
pub async fn run(retriever: &Retriever, cases: &[Case], k: usize) -> Result<Report, String> {
    let known: std::collections::HashSet<String> =
        retriever.chunks().into_iter().map(|c| c.id).collect();
    for c in cases {
        if c.relevant.is_empty() {
            return Err(format!("{:?} lists no relevant chunk", c.question));
        }
        if let Some(bad) = c.relevant.iter().find(|id| !known.contains(*id)) {
            return Err(format!(
                "{:?} lists {bad:?}, which is not a chunk id in the index",
                c.question
            ));
        }
    }
    let mut modes = vec![Mode::Bm25];
    if retriever.status().mode == Mode::Hybrid {
        modes.extend([Mode::Dense, Mode::Hybrid]);
    }
    let mut out = Vec::new();
    for mode in modes {
        let (mut recall, mut rr, mut misses, mut times) = (0.0, 0.0, Vec::new(), Vec::new());
        for c in cases {
            let started = std::time::Instant::now();
            let hits = retriever
                .search_mode(mode, &c.question, &c.groups, k.max(MRR_DEPTH))
                .await
                .map_err(|e| e.to_string())?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let ids: Vec<&str> = hits.iter().map(|h| h.chunk.id.as_str()).collect();
            let found = c
                .relevant
                .iter()
                .filter(|r| ids.iter().take(k).any(|id| id == r))
                .count();
            recall += found as f64 / c.relevant.len().max(1) as f64;
            if found == 0 {
                misses.push(c.question.clone());
            }
            if let Some(rank) = ids
                .iter()
                .take(MRR_DEPTH)
                .position(|id| c.relevant.iter().any(|r| r == id))
            {
                rr += 1.0 / (rank + 1) as f64;
            }
        }
        times.sort_by(f64::total_cmp);
        let n = cases.len().max(1) as f64;
        out.push(ModeScore {
            mode,
            recall: recall / n,
            mrr: rr / n,
            misses,
            p50_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
        });
    }
    Ok(Report {
        cases: cases.len(),
        k,
        modes: out,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} questions", self.cases)?;
        writeln!(
            f,
            "{:<8} {:>9} {:>7} {:>9}",
            "mode",
            format!("recall@{}", self.k),
            "MRR",
            "p50 ms"
        )?;
        for m in &self.modes {
            writeln!(
                f,
                "{:<8} {:>9.3} {:>7.3} {:>9.1}",
                format!("{:?}", m.mode).to_lowercase(),
                m.recall,
                m.mrr,
                m.p50_ms
            )?;
        }
        for m in &self.modes {
            for q in &m.misses {
                writeln!(f, "miss ({:?}): {q}", m.mode)?;
            }
        }
        Ok(())
    }
}
