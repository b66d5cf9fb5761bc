//! Documentation answers: hybrid search over the chunks the asker may read
//! (their roles are their ACL groups), a relevance check (does the passage
//! mention most of the question's key terms and its central term, and is it
//! close in meaning?), and extractive sentences with citations.
//! Sentences that read like instructions to a model are never quoted; admins
//! are told which chunks are flagged so the documents can be fixed.

use super::{Answer, AnswerKind, Citation, Orchestrator, planner};
use crate::policy::{Access, Capability, Grants, Policy, Principal};

/// The refusal reason when no document covers a question.
pub const NO_COVERAGE: &str = "no metric or document covers the question";

impl Orchestrator {
    pub(super) async fn docs_answer(
        &self,
        principal: &Principal,
        grants: &Grants,
        question: &str,
    ) -> Answer {
        if let Some(refusal) = personal_data_request(&self.policy, grants, question) {
            return refusal;
        }
        super::progress::report(super::progress::Progress::SearchingDocs);
        let hits = self.docs.search(question, &principal.acl_groups(), 5).await;
        let terms = significant_terms(question);
        let central = self.central_term(question, &terms).await;
        // The passage to quote: of the top three, the relevant one that
        // mentions most of the question's key terms (earlier rank on ties).
        // A passage flagged as addressing a model is never quoted: it is
        // withheld, and the answer says so.
        let candidates: Vec<(f64, &crate::retrieval::Hit)> = hits
            .iter()
            .take(3)
            .map(|h| (passage_coverage(&terms, &h.chunk), h))
            .filter(|(c, h)| {
                let mentions_central = central
                    .as_ref()
                    .is_none_or(|t| passage_coverage(std::slice::from_ref(t), &h.chunk) > 0.0);
                tracing::debug!(
                    id = %h.chunk.id,
                    coverage = c,
                    similarity = ?h.similarity,
                    mentions_central,
                    flagged = h.chunk.suspicious,
                    "candidate passage"
                );
                mentions_central && relevant(*c, h.similarity)
            })
            .collect();
        let withheld: Vec<&crate::retrieval::Hit> = candidates
            .iter()
            .filter(|(_, h)| h.chunk.suspicious)
            .map(|(_, h)| *h)
            .collect();
        let best = candidates
            .iter()
            .filter(|(_, h)| !h.chunk.suspicious)
            .fold(
                None::<(f64, &crate::retrieval::Hit)>,
                |best, &(c, h)| match best {
                    Some((b, _)) if b >= c => best,
                    _ => Some((c, h)),
                },
            )
            .map(|(_, h)| h);
        let Some(best) = best else {
            let mut a = no_coverage(self);
            withheld_notes(&mut a, &withheld, grants);
            return a;
        };
        let sentences = extract_sentences(&best.chunk.text, &terms, 3);
        // A passage whose every sentence reads like instructions to a model
        // quotes nothing: that is no answer, not an empty one.
        if sentences.is_empty() {
            let mut a = no_coverage(self);
            withheld_notes(&mut a, &[best], grants);
            return a;
        }
        let mut answer = Answer::new(
            AnswerKind::Docs,
            format!(
                "From \"{}\" ({}):\n\n{}",
                best.chunk.title,
                best.chunk.section,
                sentences.join(" ")
            ),
        );
        for h in hits
            .iter()
            .filter(|h| !h.chunk.suspicious && passage_coverage(&terms, &h.chunk) > 0.0)
            .take(3)
        {
            answer.citations.push(Citation {
                id: h.chunk.id.clone(),
                source: h.chunk.source.clone(),
                url: h.chunk.url.clone(),
                title: h.chunk.title.clone(),
                section: h.chunk.section.clone(),
                snippet: extract_sentences(&h.chunk.text, &terms, 2).join(" "),
            });
        }
        withheld_notes(&mut answer, &withheld, grants);
        answer
    }

    /// The question's central key term: the one of `terms` whose embedding
    /// is closest (cosine, the documentation search's model) to the whole
    /// question's. A passage that leaves it out answers a
    /// neighbouring question: "What's our app store rating?" is about the
    /// rating (0.58), not the app (0.47) or the store (0.33), so an "App
    /// Store review" passage does not answer it. A single term is central
    /// by itself. `None` without terms, or with several and no embedding
    /// model (BM25-only search), when the key terms' coverage alone decides.
    pub(super) async fn central_term(&self, question: &str, terms: &[String]) -> Option<String> {
        if let [only] = terms {
            return Some(only.clone());
        }
        if terms.is_empty() {
            return None;
        }
        let texts = std::iter::once(question.to_owned())
            .chain(terms.iter().cloned())
            .collect();
        let vectors = match self.docs.embed(texts).await? {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "embedding the key terms failed; coverage alone decides");
                return None;
            }
        };
        let (q, rest) = vectors.split_first()?;
        let closest = rest
            .iter()
            .map(|v| super::link::dot(v, q))
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))?
            .0;
        terms.get(closest).cloned()
    }
}

/// Notes that a matching passage was withheld because it addresses an AI
/// assistant (flagged at ingestion), and, for admins, which document and
/// chunks, so the documents can be fixed.
fn withheld_notes(answer: &mut Answer, withheld: &[&crate::retrieval::Hit], grants: &Grants) {
    if withheld.is_empty() {
        return;
    }
    answer.notes.push("A matching document was withheld: it contains text addressed to an AI assistant, which steward does not quote or follow.".into());
    if grants.can(Capability::Admin) {
        let named: Vec<String> = withheld
            .iter()
            .map(|h| {
                format!(
                    "\"{}\" ({}, chunk {})",
                    h.chunk.title, h.chunk.source, h.chunk.id
                )
            })
            .collect();
        answer.notes.push(format!(
            "Admin: withheld {}; see GET /api/admin/docs/flagged.",
            named.join(", ")
        ));
    }
}

/// A refusal when the question asks for a column the asker may not read
/// (named as written, `contact_email`, or by its name or a synonym in
/// anything but a question about meanings or processes): such a question is
/// a request for personal data, whatever else it says, and no documentation
/// passage answers it.
fn personal_data_request(policy: &Policy, grants: &Grants, question: &str) -> Option<Answer> {
    let raw = question.to_lowercase();
    let q = planner::normalize(question);
    // Anything but a question about what something means or where it is.
    let asks_for_data = !planner::DOCS.is_match(&q);
    for (table, def) in &policy.schema.tables {
        for (column, c) in &def.columns {
            if grants.access(c.class) != Access::Deny {
                continue;
            }
            let named = (column.contains('_') && raw.contains(column.as_str()))
                || (asks_for_data
                    && std::iter::once(column.replace('_', " "))
                        .chain(c.synonyms.iter().cloned())
                        .any(|w| planner::contains_phrase(&q, &w)));
            if named {
                let reason = format!(
                    "column {table}.{column} is {}; your roles may not read it",
                    c.class
                );
                let mut a = Answer::refusal(
                    format!(
                        "I can't share that: {table}.{column} is personal or restricted data your roles may not read."
                    ),
                    reason,
                );
                a.suggestions = vec![format!("how many {table} are there")];
                return Some(a);
            }
        }
    }
    None
}

/// The refusal when no document covers the question.
fn no_coverage(o: &Orchestrator) -> Answer {
    let mut a = Answer::refusal(
        "I have no data on that. I only answer from the company's metrics and documentation, and neither covers this question.",
        NO_COVERAGE,
    );
    a.suggestions = o.suggestions();
    a
}

/// Least share of the question's key terms a quoted passage must mention.
pub const MIN_COVERAGE: f64 = 0.5;
/// Least embedding similarity of question and passage (all-MiniLM-L6-v2
/// cosine) when the dense ranking saw the passage. On the demo corpus,
/// passages that answer score 0.37–0.78 and passages that only share a word
/// with an unanswerable question ("stock price", "gross margin") 0.24–0.35;
/// some unrelated passages score higher still (an "App Store" passage 0.44
/// for "app store rating"), so this complements the key terms and the
/// central term (`Orchestrator::central_term`), it does not replace them.
pub const MIN_SIMILARITY: f32 = 0.35;

/// Whether a passage answers the question: it mentions most of the key
/// terms, and, when the embedding model scored it, it is also close in
/// meaning (a passage sharing a word is not an answer to a different question).
fn relevant(coverage: f64, similarity: Option<f32>) -> bool {
    coverage >= MIN_COVERAGE && similarity.is_none_or(|s| s >= MIN_SIMILARITY)
}

/// Words that say how a question is asked, not what it is about (with the
/// short function words below): they are not key terms.
const GENERIC: &[&str] = &[
    "should",
    "would",
    "could",
    "open",
    "look",
    "see",
    "get",
    "want",
    "need",
    "know",
    "use",
    "used",
    "using",
    "go",
    "check",
    "view",
    "explain",
    "describe",
    "info",
    "information",
    "what's",
    "whats",
    "where's",
    "who's",
    "it's",
    "last",
    "this",
    "week",
    "month",
    "quarter",
    "year",
    "today",
    "yesterday",
    "current",
    "currently",
    "our",
    "their",
    "have",
    "has",
    "had",
    "been",
    "being",
    "will",
    "into",
    "also",
    "some",
    "all",
    "any",
    "more",
    "most",
    "say",
    "says",
    "said",
];

const STOPWORDS: &[&str] = &[
    "the", "and", "for", "what", "which", "who", "how", "does", "did", "our", "are", "is", "was",
    "were", "with", "that", "this", "from", "about", "as", "an", "a", "of", "to", "in", "on", "we",
    "us", "me", "my", "you", "your", "they", "them", "its", "these", "those", "do", "can", "tell",
    "show", "give", "please", "there", "any", "counts", "count", "mean", "means", "where", "find",
    "when", "why",
];

/// Lower-case content words of a question (at least 3 letters, not stop words).
pub(super) fn significant_terms(q: &str) -> Vec<String> {
    planner::normalize(q)
        .split(' ')
        .filter(|w| w.len() >= 3 && !STOPWORDS.contains(w) && !GENERIC.contains(w))
        .map(str::to_owned)
        .collect()
}

/// Snowball English stems of the words of `text`, lower-cased (tantivy's
/// analyzer, the same stemming BM25 uses), so "churned" matches "churn" and
/// "ends" matches "ended".
fn stems(text: &str) -> std::collections::HashSet<String> {
    use tantivy::tokenizer::{Language, LowerCaser, SimpleTokenizer, Stemmer, TextAnalyzer};
    let mut analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build();
    let mut out = std::collections::HashSet::new();
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        out.insert(stream.token().text.clone());
    }
    out
}

/// Share of `terms` a passage mentions (by stem) in its document title,
/// section heading or text: the same three parts its embedding reads.
fn passage_coverage(terms: &[String], chunk: &crate::retrieval::Chunk) -> f64 {
    coverage(
        terms,
        &chunk.text,
        &format!("{} {}", chunk.title, chunk.section),
    )
}

/// Share of `terms` that occur (by stem) in the text or its heading.
fn coverage(terms: &[String], text: &str, heading: &str) -> f64 {
    if terms.is_empty() {
        return 0.0;
    }
    let hay = stems(&planner::normalize(&format!("{heading} {text}")));
    let hit = terms
        .iter()
        .filter(|t| stems(t).iter().all(|s| hay.contains(s)))
        .count();
    hit as f64 / terms.len() as f64
}

/// Up to `n` sentences of `text` that share the most terms with the question,
/// in document order, skipping sentences that read like model instructions.
fn extract_sentences(text: &str, terms: &[String], n: usize) -> Vec<String> {
    let flat = text.replace('\n', " ");
    let sentences: Vec<&str> = flat
        .split_inclusive(['.', '?', '!'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut scored: Vec<(usize, usize)> = sentences
        .iter()
        .enumerate()
        .filter(|(_, s)| !crate::retrieval::looks_like_instruction(s))
        .map(|(i, s)| (i, coverage(terms, s, "").mul_add(100.0, 0.0) as usize))
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep: Vec<usize> = scored.into_iter().take(n).map(|(i, _)| i).collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| sentences[i].to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_matches_by_snowball_stem() {
        let terms = significant_terms("When does a session end?");
        assert_eq!(terms, vec!["session", "end"]);
        assert_eq!(
            coverage(&terms, "A session ends after 30 minutes.", ""),
            1.0
        );
        assert_eq!(coverage(&terms, "Sessions are counted daily.", ""), 0.5);
        assert_eq!(coverage(&terms, "Nothing related.", "Endpoints"), 0.0);
        let churn = significant_terms("who churned?");
        assert_eq!(coverage(&churn, "", "Churn dashboard"), 1.0);
        // How a question is asked is not what it is about.
        assert_eq!(
            significant_terms("Which dashboard should I open to look at churn?"),
            ["dashboard", "churn"]
        );
        assert_eq!(
            significant_terms("What was the gross margin last quarter?"),
            ["gross", "margin"]
        );
        assert_eq!(
            significant_terms("What plans do we sell and what do they include?"),
            ["plans", "sell", "include"]
        );
    }

    #[test]
    fn relevance_needs_the_key_terms_and_closeness_when_measured() {
        assert!(relevant(1.0, None));
        assert!(relevant(0.67, Some(0.45)));
        assert!(
            !relevant(0.5, Some(0.31)),
            "the stock-price passage on the demo corpus"
        );
        assert!(
            !relevant(0.4, None),
            "fewer than half the key terms is not an answer"
        );
        assert!(
            !relevant(1.0, Some(0.1)),
            "a shared word in an unrelated passage"
        );
    }
}
