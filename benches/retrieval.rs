//! Criterion benchmark of documentation search on synthetic corpora of 10k
//! and 100k chunks: BM25 (tantivy), exact dense search (embedded store, 384
//! dimensions), and hybrid (both + RRF), all excluding the query embedding;
//! then query embedding itself and hybrid including it, when the model is
//! installed (`scripts/embedding-model fetch`). After the criterion runs, it
//! prints p50/p95/p99 of hybrid search over 1,000 queries per corpus size,
//! since criterion reports means. Results: docs/benchmarks.md.
//!
//! Synthetic data: chunk texts of 60–140 words drawn from a Zipf-like
//! distribution over a 20,000-word vocabulary; vectors are random unit
//! vectors; one chunk in ten is restricted to a group the searcher lacks, so
//! the ACL filter does real work.

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use steward::retrieval::store::{EmbeddedStore, Point};
use steward::retrieval::{Bm25, Chunk, DIM, Embedder, RRF_K, reciprocal_rank_fusion};

const VOCABULARY: usize = 20_000;
const CANDIDATES: usize = 50;

fn word(rng: &mut ChaCha8Rng) -> String {
    // Zipf-like: rank ≈ VOCABULARY^u.
    let u: f64 = rng.random();
    let rank = (VOCABULARY as f64).powf(u) as usize;
    format!("w{rank}")
}

fn unit(rng: &mut ChaCha8Rng) -> Vec<f32> {
    let v: Vec<f32> = (0..DIM).map(|_| rng.random::<f32>() - 0.5).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

struct Corpus {
    bm25: Bm25,
    store: EmbeddedStore,
    queries: Vec<(String, Vec<f32>)>,
}

fn corpus(n: usize) -> Corpus {
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let mut chunks = Vec::with_capacity(n);
    let mut points = Vec::with_capacity(n);
    for i in 0..n {
        let len = rng.random_range(60..140);
        let text: Vec<String> = (0..len).map(|_| word(&mut rng)).collect();
        let acl = if i % 10 == 0 {
            vec!["finance".to_owned()]
        } else {
            Vec::new()
        };
        chunks.push(Chunk {
            id: format!("doc{}.md#s{}", i / 8, i % 8),
            source: format!("doc{}.md", i / 8),
            url: None,
            title: format!("Document {}", i / 8),
            section: format!("Section {}", i % 8),
            text: text.join(" "),
            updated: String::new(),
            hash: format!("{i}"),
            acl: acl.clone(),
            suspicious: false,
        });
        points.push(Point {
            chunk_id: format!("doc{}.md#s{}", i / 8, i % 8),
            hash: format!("{i}"),
            acl,
            vector: unit(&mut rng),
        });
    }
    let bm25 = Bm25::in_memory().unwrap();
    bm25.apply(&[], &chunks).unwrap();
    let store = EmbeddedStore::in_memory();
    store.upsert_now(points).unwrap();
    let queries = (0..1000)
        .map(|_| {
            let words: Vec<String> = (0..rng.random_range(2..6))
                .map(|_| word(&mut rng))
                .collect();
            (words.join(" "), unit(&mut rng))
        })
        .collect();
    Corpus {
        bm25,
        store,
        queries,
    }
}

fn hybrid(c: &Corpus, q: &str, v: &[f32], groups: &[String]) -> Vec<(String, f32)> {
    let lexical = c.bm25.search(q, groups, CANDIDATES);
    let dense = c.store.search_now(v, groups, CANDIDATES);
    reciprocal_rank_fusion(&[lexical, dense], RRF_K, 5)
}

fn percentiles(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{label}: n={} p50={:.2} ms p95={:.2} ms p99={:.2} ms max={:.2} ms",
        ms.len(),
        at(0.50),
        at(0.95),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let mut criterion = Criterion::default().sample_size(30).configure_from_args();
    let groups = vec!["analyst".to_owned()];
    let embedder = steward::retrieval::default_model_dir()
        .filter(|d| d.join("model.onnx").is_file())
        .and_then(|d| Embedder::load(&d).ok());
    let mut tails = Vec::new();
    for n in [10_000, 100_000] {
        let started = Instant::now();
        let c = corpus(n);
        eprintln!(
            "built {n} chunks in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut g = criterion.benchmark_group("search");
        let mut i = 0;
        let mut next = || {
            i = (i + 1) % c.queries.len();
            &c.queries[i]
        };
        g.bench_function(BenchmarkId::new("bm25", n), |b| {
            b.iter(|| black_box(c.bm25.search(&next().0, &groups, CANDIDATES)))
        });
        g.bench_function(BenchmarkId::new("dense_exact", n), |b| {
            b.iter(|| black_box(c.store.search_now(&next().1, &groups, CANDIDATES)))
        });
        g.bench_function(BenchmarkId::new("hybrid_excl_embedding", n), |b| {
            b.iter(|| {
                let (q, v) = next();
                black_box(hybrid(&c, q, v, &groups))
            })
        });
        if let Some(e) = &embedder {
            g.bench_function(BenchmarkId::new("hybrid_incl_embedding", n), |b| {
                b.iter(|| {
                    let (q, _) = next();
                    let v = e.embed(std::slice::from_ref(q)).unwrap().pop().unwrap();
                    black_box(hybrid(&c, q, &v, &groups))
                })
            });
        }
        g.finish();
        let ms: Vec<f64> = c
            .queries
            .iter()
            .map(|(q, v)| {
                let t = Instant::now();
                black_box(hybrid(&c, q, v, &groups));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        tails.push((format!("hybrid excl. embedding, {n} chunks"), ms));
    }
    if let Some(e) = &embedder {
        criterion.bench_function("embed_query", |b| {
            b.iter(|| black_box(e.embed(&["what counts as an active customer?".to_owned()])))
        });
    } else {
        eprintln!("SKIPPED embedding benchmarks: no model (scripts/embedding-model fetch)");
    }
    criterion.final_summary();
    for (label, ms) in tails {
        percentiles(&label, ms);
    }
}
