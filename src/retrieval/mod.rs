//! Documentation retrieval: ingestion, heading-aware chunks with ACLs, BM25
//! (tantivy) and dense vectors (fastembed; embedded store or Qdrant), fused
//! with reciprocal rank fusion.
//!
//! Chunks are data, never instructions: text that reads like an instruction to
//! a model is flagged (`suspicious`), shown to admins, and left out of
//! extractive answers, but still cited so people can find and fix the
//! document. Access control happens inside both searches, before ranking: a
//! chunk the principal may not read is never scored, so it cannot reach a
//! prompt, an answer or a citation.

mod bm25;
mod chunk;
mod embed;
pub mod eval;
mod fuse;
mod ingest;
mod instruction;
mod settings;
mod source;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

pub use bm25::Bm25;
pub use chunk::{
    Chunk, ChunkLimits, DocMeta, chunk_markdown, estimate_tokens, looks_like_instruction,
};
pub use embed::{DIM, Embedder, ORT_LIBRARY, default_model_dir, installed_model_dir};
pub use fuse::{RRF_K, reciprocal_rank_fusion};
pub use ingest::{IngestReport, watch};
pub use settings::{RetrievalSettings, StoreKind};
pub use source::{DocError, SIDECAR_SUFFIXES};
use store::{EmbeddedStore, QdrantStore, VectorStore};

/// Errors building, opening or searching the docs index.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// Reading documents or the index directory failed.
    #[error("cannot use {path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        message: String,
    },
    /// tantivy failed.
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The manifest is unreadable.
    #[error(
        "the index manifest {0} is unreadable; delete the index directory and run `steward ingest` again"
    )]
    Manifest(PathBuf),
    /// The vector store failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// Embedding failed.
    #[error("{0}")]
    Embedding(String),
    /// A search mode that needs vectors, without an embedding model.
    #[error("dense search needs an embedding model ({0})")]
    NoDense(String),
    /// The ingestion paths are unusable.
    #[error("{0}")]
    Paths(String),
}

/// Which ranking a search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 only.
    Bm25,
    /// Embedding similarity only.
    Dense,
    /// Both, fused with RRF.
    Hybrid,
}

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The chunk.
    pub chunk: Chunk,
    /// Fused score (RRF), BM25 score or cosine similarity, by mode; higher is
    /// better, not comparable across queries.
    pub score: f32,
    /// The embedding cosine similarity of query and chunk, when the dense
    /// ranking ran and the chunk was among its candidates (-1.0–1.0;
    /// comparable across queries, unlike `score`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// What `/healthz` reports about retrieval.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// `hybrid` or `bm25`.
    pub mode: Mode,
    /// Why search is BM25-only, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `embedded` or `qdrant` (when vectors are on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<&'static str>,
    /// The embedding model id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Indexed chunks.
    pub chunks: usize,
    /// Chunks flagged as looking like instructions to a model.
    pub flagged: usize,
}

/// The dense side: the model and where its vectors live.
pub(crate) struct Dense {
    embedder: Arc<Embedder>,
    store: RwLock<Arc<dyn VectorStore>>,
}

/// The documentation index: chunks, BM25, and (with a model) vectors.
pub struct Retriever {
    dir: Option<PathBuf>,
    manifest: RwLock<Arc<ingest::Manifest>>,
    bm25: Bm25,
    dense: Option<Dense>,
    why_not_dense: Option<String>,
    settings: RetrievalSettings,
    seen: Mutex<(Instant, Option<SystemTime>)>,
}

const MANIFEST: &str = "manifest.json";
const VECTORS: &str = "vectors.bin";
const BM25_DIR: &str = "bm25";
/// How often a server looks for an index another process changed.
const RELOAD_EVERY: Duration = Duration::from_secs(2);

impl Retriever {
    /// Opens (or creates) the index in `dir`, or an empty one in memory when
    /// `dir` is `None`. The embedding model and store come from `settings`;
    /// without a usable model the index is BM25-only and [`Status`] says why.
    ///
    /// # Errors
    /// An unusable index directory or manifest; with `store = "qdrant"`, an
    /// unreachable Qdrant is not an error but a BM25-only status.
    pub async fn open(
        dir: Option<&Path>,
        settings: &RetrievalSettings,
    ) -> Result<Retriever, RetrievalError> {
        let io = |path: &Path, e: std::io::Error| RetrievalError::Io {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let (manifest, bm25) = match dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| io(d, e))?;
                let path = d.join(MANIFEST);
                let manifest = match std::fs::read(&path) {
                    Ok(b) => serde_json::from_slice::<ingest::Manifest>(&b)
                        .map_err(|_| RetrievalError::Manifest(path.clone()))?
                        .reindex(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        ingest::Manifest::default()
                    }
                    Err(e) => return Err(io(&path, e)),
                };
                (manifest, Bm25::open_or_create(&d.join(BM25_DIR))?)
            }
            None => (ingest::Manifest::default(), Bm25::in_memory()?),
        };
        let (dense, why_not_dense) = match open_dense(dir, settings).await {
            Ok(d) => (Some(d), None),
            Err(why) => {
                if settings.model == "off" {
                    tracing::info!(reason = %why, "retrieval is BM25-only");
                } else {
                    tracing::warn!(reason = %why, "retrieval is BM25-only");
                }
                (None, Some(why))
            }
        };
        let mtime = dir.and_then(|d| modified(&d.join(MANIFEST)));
        Ok(Retriever {
            dir: dir.map(Path::to_owned),
            manifest: RwLock::new(Arc::new(manifest)),
            bm25,
            dense,
            why_not_dense,
            settings: settings.clone(),
            seen: Mutex::new((Instant::now(), mtime)),
        })
    }

    /// The dense side, if it can serve queries: a model is loaded and the
    /// index's vectors were made with it (an index ingested without a model,
    /// or with another one, has none to compare against).
    fn dense_ready(&self) -> Result<&Dense, String> {
        let dense = self
            .dense
            .as_ref()
            .ok_or_else(|| self.why_not_dense.clone().unwrap_or_default())?;
        let m = self.manifest();
        if m.chunk_count() > 0 && m.model() != Some(dense.embedder.id()) {
            return Err(format!(
                "the index holds no vectors of the model {} (run `steward ingest` with it)",
                dense.embedder.id()
            ));
        }
        Ok(dense)
    }

    /// Health summary.
    pub fn status(&self) -> Status {
        let m = self.manifest();
        let ready = self.dense_ready();
        Status {
            mode: if ready.is_ok() {
                Mode::Hybrid
            } else {
                Mode::Bm25
            },
            reason: ready.as_ref().err().cloned(),
            store: ready.as_ref().ok().map(|d| d.store().kind()),
            model: ready.as_ref().ok().map(|d| d.embedder.id().to_owned()),
            chunks: m.chunk_count(),
            flagged: m.chunks().filter(|c| c.suspicious).count(),
        }
    }

    /// The current manifest (files and their chunks).
    fn manifest(&self) -> Arc<ingest::Manifest> {
        self.manifest
            .read()
            .map(|m| Arc::clone(&m))
            .unwrap_or_default()
    }

    /// The paths the index mirrors (empty for a new index).
    pub fn roots(&self) -> Vec<PathBuf> {
        self.manifest().roots().to_vec()
    }

    /// Whether the index mirrors exactly `paths` (or is new), so that
    /// ingesting them changes only what changed in them.
    pub fn mirrors(&self, paths: &[PathBuf]) -> bool {
        let roots = self.roots();
        roots.is_empty()
            || roots
                == paths
                    .iter()
                    .map(|p| ingest::canonical(p))
                    .collect::<Vec<_>>()
    }

    /// Whether any chunk is readable by `groups` (no chunk is copied).
    pub fn any_readable(&self, groups: &[String]) -> bool {
        self.manifest().chunks().any(|c| c.readable_by(groups))
    }

    /// Every chunk, by source then position.
    pub fn chunks(&self) -> Vec<Chunk> {
        self.manifest().chunks().cloned().collect()
    }

    /// Chunks flagged as addressing a model (for admins).
    pub fn flagged(&self) -> Vec<Chunk> {
        self.manifest()
            .chunks()
            .filter(|c| c.suspicious)
            .cloned()
            .collect()
    }

    /// The `k` best chunks `groups` may read, with the best mode available
    /// (hybrid with a model, else BM25). A failing vector store degrades to
    /// BM25 for this query.
    pub async fn search(&self, query: &str, groups: &[String], k: usize) -> Vec<Hit> {
        let mode = if self.dense_ready().is_ok() {
            Mode::Hybrid
        } else {
            Mode::Bm25
        };
        match self.search_mode(mode, query, groups, k).await {
            Ok(hits) => hits,
            Err(e) => {
                tracing::warn!(error = %e, "dense search failed; using BM25 alone");
                self.search_mode(Mode::Bm25, query, groups, k)
                    .await
                    .unwrap_or_default()
            }
        }
    }

    /// The `k` best readable chunks under one ranking.
    ///
    /// # Errors
    /// [`RetrievalError::NoDense`] for dense or hybrid without a model;
    /// embedding or store failures.
    pub async fn search_mode(
        &self,
        mode: Mode,
        query: &str,
        groups: &[String],
        k: usize,
    ) -> Result<Vec<Hit>, RetrievalError> {
        self.refresh();
        let pool = self.settings.candidates.max(k);
        let mut cosine: std::collections::HashMap<String, f32> = Default::default();
        let ranked: Vec<(String, f32)> = match mode {
            Mode::Bm25 => self.bm25.search(query, groups, k),
            Mode::Dense => {
                let dense = self.dense_search(query, groups, k).await?;
                cosine.extend(dense.iter().cloned());
                dense
            }
            Mode::Hybrid => {
                let lexical = self.bm25.search(query, groups, pool);
                let dense = self.dense_search(query, groups, pool).await?;
                cosine.extend(dense.iter().cloned());
                reciprocal_rank_fusion(&[lexical, dense], RRF_K, k)
            }
        };
        let manifest = self.manifest();
        Ok(ranked
            .into_iter()
            .filter_map(|(id, score)| {
                let chunk = manifest.chunk(&id)?;
                // The searches filtered already; this guards a stale store.
                chunk.readable_by(groups).then(|| Hit {
                    chunk: chunk.clone(),
                    score,
                    similarity: cosine.get(&id).copied(),
                })
            })
            .collect())
    }

    async fn dense_search(
        &self,
        query: &str,
        groups: &[String],
        k: usize,
    ) -> Result<Vec<(String, f32)>, RetrievalError> {
        let dense = self.dense_ready().map_err(RetrievalError::NoDense)?;
        if query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let text: String = query.chars().take(2000).collect();
        let vector = embed_on(&dense.embedder, vec![text])
            .await?
            .pop()
            .ok_or_else(|| RetrievalError::Embedding("no vector".into()))?;
        Ok(dense.store().search(&vector, groups, k).await?)
    }

    /// Unit vectors ([`DIM`] floats) of `texts`, in order, from the loaded
    /// embedding model, whatever the index holds; `None` without a model.
    /// Used beyond documents, e.g. to link a question to tables.
    ///
    /// # Errors
    /// [`RetrievalError::Embedding`] when the model fails.
    pub async fn embed(&self, texts: Vec<String>) -> Option<Result<Vec<Vec<f32>>, RetrievalError>> {
        let dense = self.dense.as_ref()?;
        Some(embed_on(&dense.embedder, texts).await)
    }

    /// Picks up an index that another process (`steward ingest`) rewrote.
    fn refresh(&self) {
        let Some(dir) = &self.dir else { return };
        let path = dir.join(MANIFEST);
        {
            let Ok(mut seen) = self.seen.lock() else {
                return;
            };
            if seen.0.elapsed() < RELOAD_EVERY {
                return;
            }
            let now = modified(&path);
            seen.0 = Instant::now();
            if now == seen.1 {
                return;
            }
            seen.1 = now;
        }
        let Some(manifest) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<ingest::Manifest>(&b).ok())
            .map(ingest::Manifest::reindex)
        else {
            return;
        };
        if let Err(e) = self.bm25.reload() {
            tracing::warn!(error = %e, "reloading the BM25 index failed");
            return;
        }
        if let Some(d) = &self.dense
            && d.store().kind() == "embedded"
        {
            match EmbeddedStore::open(&dir.join(VECTORS)) {
                Ok(s) => d.set_store(Arc::new(s)),
                Err(e) => tracing::warn!(error = %e, "reloading the vector store failed"),
            }
        }
        if let Ok(mut m) = self.manifest.write() {
            *m = Arc::new(manifest);
        }
        tracing::info!("documentation index reloaded");
    }
}

impl Dense {
    fn store(&self) -> Arc<dyn VectorStore> {
        match self.store.read() {
            Ok(s) => Arc::clone(&s),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn set_store(&self, store: Arc<dyn VectorStore>) {
        match self.store.write() {
            Ok(mut s) => *s = store,
            Err(p) => *p.into_inner() = store,
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Embeds `texts` on a blocking thread (ONNX Runtime is synchronous).
async fn embed_on(
    embedder: &Arc<Embedder>,
    texts: Vec<String>,
) -> Result<Vec<Vec<f32>>, RetrievalError> {
    let embedder = Arc::clone(embedder);
    tokio::task::spawn_blocking(move || embedder.embed(&texts))
        .await
        .map_err(|e| RetrievalError::Embedding(e.to_string()))?
        .map_err(RetrievalError::Embedding)
}

/// Loads the embedding model and opens the vector store, or says why not.
async fn open_dense(dir: Option<&Path>, settings: &RetrievalSettings) -> Result<Dense, String> {
    let model_dir = match settings.model.as_str() {
        "off" => return Err("disabled by configuration (retrieval.model = \"off\")".into()),
        "auto" => match installed_model_dir() {
            Some(d) => d,
            None => {
                return Err(
                    "no embedding model installed (run scripts/embedding-model fetch)".into(),
                );
            }
        },
        path => PathBuf::from(path),
    };
    let embedder = tokio::task::spawn_blocking(move || Embedder::load(&model_dir))
        .await
        .map_err(|e| e.to_string())??;
    let store: Arc<dyn VectorStore> = match settings.store {
        StoreKind::Embedded => Arc::new(match dir {
            Some(d) => EmbeddedStore::open(&d.join(VECTORS)).map_err(|e| e.to_string())?,
            None => EmbeddedStore::in_memory(),
        }),
        StoreKind::Qdrant => {
            let url = settings
                .qdrant_url
                .as_deref()
                .ok_or("retrieval.store = \"qdrant\" needs retrieval.qdrant_url")?;
            Arc::new(
                QdrantStore::connect(url, &settings.collection, DIM)
                    .await
                    .map_err(|e| format!("Qdrant at {url}: {e}"))?,
            )
        }
    };
    Ok(Dense {
        embedder: Arc::new(embedder),
        store: RwLock::new(store),
    })
}
