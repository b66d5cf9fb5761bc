//! Incremental ingestion: only documents whose bytes (or sidecar) changed are
//! re-chunked, only chunks whose content hash changed are re-embedded, and
//! documents that disappeared leave the index. The manifest (`manifest.json`
//! in the index directory) records each document's hash and chunks; it is
//! written last and atomically, so an interrupted run is simply redone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::chunk::{Chunk, ChunkLimits, chunk_markdown};
use super::source::{self, DocError};
use super::store::Point;
use super::{MANIFEST, Mode, RetrievalError, Retriever};

/// Manifest format version.
const VERSION: u32 = 2;

/// What the index holds: per document, its hash and chunks.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    version: u32,
    /// The chunk limits the chunks were cut with.
    limits: Option<ChunkLimits>,
    /// The embedding model of the stored vectors.
    model: Option<String>,
    /// The paths the index mirrors (canonical, as given to the last ingest).
    #[serde(default)]
    roots: Vec<PathBuf>,
    files: BTreeMap<String, FileEntry>,
    #[serde(skip)]
    by_id: HashMap<String, (String, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    hash: String,
    chunks: Vec<Chunk>,
}

impl Manifest {
    pub(crate) fn reindex(mut self) -> Manifest {
        self.by_id = self
            .files
            .iter()
            .flat_map(|(src, f)| {
                f.chunks
                    .iter()
                    .enumerate()
                    .map(move |(i, c)| (c.id.clone(), (src.clone(), i)))
            })
            .collect();
        self
    }

    pub(crate) fn chunks(&self) -> impl Iterator<Item = &Chunk> {
        self.files.values().flat_map(|f| f.chunks.iter())
    }

    /// The paths the last ingest mirrored.
    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The embedding model the stored vectors were made with.
    pub(crate) fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub(crate) fn chunk_count(&self) -> usize {
        self.by_id.len()
    }

    pub(crate) fn chunk(&self, id: &str) -> Option<&Chunk> {
        let (src, i) = self.by_id.get(id)?;
        self.files.get(src)?.chunks.get(*i)
    }
}

/// What an ingestion run did.
#[derive(Debug, Default, Serialize)]
pub struct IngestReport {
    /// Documents found.
    pub documents: usize,
    /// Sources new to the index.
    pub added: Vec<String>,
    /// Sources whose content or metadata changed.
    pub changed: Vec<String>,
    /// Documents left as they were.
    pub unchanged: usize,
    /// Sources removed from the index (their files are gone).
    pub deleted: Vec<String>,
    /// Documents that could not be read (their previous chunks are kept).
    pub errors: Vec<String>,
    /// Chunks in the index afterwards.
    pub chunks: usize,
    /// Chunks written to the BM25 index.
    pub chunks_written: usize,
    /// Chunks removed from the BM25 index.
    pub chunks_removed: usize,
    /// Chunks embedded (0 without a model).
    pub embedded: usize,
    /// Ranking available afterwards.
    pub mode: Option<Mode>,
    /// Ids of chunks flagged as addressing a model.
    pub flagged: Vec<String>,
    /// Wall time, milliseconds.
    pub elapsed_ms: u128,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} documents: {} added, {} changed, {} unchanged, {} deleted, {} failed",
            self.documents,
            self.added.len(),
            self.changed.len(),
            self.unchanged,
            self.deleted.len(),
            self.errors.len()
        )?;
        writeln!(
            f,
            "{} chunks in the index ({} written, {} removed, {} embedded); search: {}; {} ms",
            self.chunks,
            self.chunks_written,
            self.chunks_removed,
            self.embedded,
            match self.mode {
                Some(Mode::Hybrid) => "hybrid (BM25 + vectors)",
                _ => "BM25 only (no embedding model)",
            },
            self.elapsed_ms
        )?;
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        if !self.flagged.is_empty() {
            writeln!(
                f,
                "warning: {} chunk(s) contain text addressed to an AI assistant; kept as data and flagged for admins:",
                self.flagged.len()
            )?;
            for id in &self.flagged {
                writeln!(f, "  {id}")?;
            }
        }
        Ok(())
    }
}

fn bar(len: usize, what: &str, show: bool) -> ProgressBar {
    let target = if show {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let pb = ProgressBar::with_draw_target(Some(len as u64), target);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

impl Retriever {
    /// Brings the index in line with the documents under `roots` (files or
    /// directories): the index afterwards holds exactly those documents.
    /// `progress` draws bars on stderr (when it is a terminal).
    ///
    /// # Errors
    /// Unusable roots, index or store failures. Unreadable single documents
    /// are not errors: they are listed in the report and keep their chunks.
    pub async fn ingest(
        &self,
        roots: &[PathBuf],
        progress: bool,
    ) -> Result<IngestReport, RetrievalError> {
        let started = Instant::now();
        let limits = self.settings.chunking;
        let files = source::discover(roots).map_err(RetrievalError::Paths)?;
        let old = self.manifest();
        let same_limits = old.limits == Some(limits);
        let mut report = IngestReport {
            documents: files.len(),
            ..IngestReport::default()
        };
        let mut next = Manifest {
            version: VERSION,
            limits: Some(limits),
            model: old.model.clone(),
            roots: roots.iter().map(|r| canonical(r)).collect(),
            ..Manifest::default()
        };
        let mut remove: Vec<String> = Vec::new();
        let mut add: Vec<Chunk> = Vec::new();
        let pb = bar(files.len(), "reading", progress);
        for (src, path) in &files {
            pb.inc(1);
            let previous = old.files.get(src);
            let doc = match source::read(src, path) {
                Ok(d) => d,
                Err(DocError { message, .. }) => {
                    report.errors.push(format!("{src}: {message}"));
                    if let Some(p) = previous {
                        next.files.insert(src.clone(), p.clone());
                    }
                    continue;
                }
            };
            if let Some(p) = previous.filter(|p| p.hash == doc.hash && same_limits) {
                report.unchanged += 1;
                next.files.insert(src.clone(), p.clone());
                continue;
            }
            match previous {
                Some(p) => {
                    report.changed.push(src.clone());
                    remove.extend(p.chunks.iter().map(|c| c.id.clone()));
                }
                None => report.added.push(src.clone()),
            }
            let chunks = chunk_markdown(src, &doc.markdown, &doc.meta, limits);
            add.extend(chunks.iter().cloned());
            next.files.insert(
                src.clone(),
                FileEntry {
                    hash: doc.hash,
                    chunks,
                },
            );
        }
        pb.finish_and_clear();
        for (src, entry) in &old.files {
            if !next.files.contains_key(src) {
                report.deleted.push(src.clone());
                remove.extend(entry.chunks.iter().map(|c| c.id.clone()));
            }
        }
        let kept: HashSet<&str> = add.iter().map(|c| c.id.as_str()).collect();
        remove.retain(|id| !kept.contains(id.as_str()));
        remove.sort();
        remove.dedup();
        self.bm25.apply(&remove, &add)?;
        report.chunks_written = add.len();
        report.chunks_removed = remove.len();

        if let Some(dense) = &self.dense {
            report.embedded = sync_vectors(dense, &mut next, progress).await?;
        }
        let next = next.reindex();
        report.chunks = next.chunk_count();
        report.flagged = next
            .chunks()
            .filter(|c| c.suspicious)
            .map(|c| c.id.clone())
            .collect();
        if let Some(dir) = &self.dir {
            write_manifest(dir, &next)?;
        }
        if let Ok(mut m) = self.manifest.write() {
            *m = Arc::new(next);
        }
        report.mode = Some(self.status().mode);
        report.elapsed_ms = started.elapsed().as_millis();
        Ok(report)
    }
}

/// Makes the vector store hold exactly the manifest's chunks, embedding only
/// those whose content hash the store does not have. Returns how many were
/// embedded.
async fn sync_vectors(
    dense: &super::Dense,
    next: &mut Manifest,
    progress: bool,
) -> Result<usize, RetrievalError> {
    let store = dense.store();
    let model = dense.embedder.id().to_owned();
    if next.model.as_deref() != Some(model.as_str()) {
        store.clear().await?;
        next.model = Some(model);
    }
    let stored = store.hashes().await?;
    let current: HashMap<&str, &Chunk> = next
        .files
        .values()
        .flat_map(|f| f.chunks.iter())
        .map(|c| (c.id.as_str(), c))
        .collect();
    let stale: Vec<String> = stored
        .keys()
        .filter(|id| !current.contains_key(id.as_str()))
        .cloned()
        .collect();
    store.delete(&stale).await?;
    let mut need: Vec<&Chunk> = current
        .values()
        .filter(|c| stored.get(&c.id) != Some(&c.hash))
        .copied()
        .collect();
    need.sort_by(|a, b| a.id.cmp(&b.id));
    let pb = bar(need.len(), "embedding", progress);
    for batch in need.chunks(64) {
        let texts: Vec<String> = batch.iter().map(|c| c.embedding_text()).collect();
        let embedder = Arc::clone(&dense.embedder);
        let vectors = tokio::task::spawn_blocking(move || embedder.embed(&texts))
            .await
            .map_err(|e| RetrievalError::Embedding(e.to_string()))?
            .map_err(RetrievalError::Embedding)?;
        let points = batch
            .iter()
            .zip(vectors)
            .map(|(c, vector)| Point {
                chunk_id: c.id.clone(),
                hash: c.hash.clone(),
                acl: c.acl.clone(),
                vector,
            })
            .collect();
        store.upsert(points).await?;
        pb.inc(batch.len() as u64);
    }
    pb.finish_and_clear();
    store.flush().await?;
    Ok(need.len())
}

/// `path` made absolute and free of links where possible, as given otherwise.
pub(crate) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn write_manifest(dir: &Path, m: &Manifest) -> Result<(), RetrievalError> {
    let path = dir.join(MANIFEST);
    let tmp = dir.join("manifest.json.tmp");
    let io = |e: std::io::Error| RetrievalError::Io {
        path: path.clone(),
        message: e.to_string(),
    };
    let bytes = serde_json::to_vec(m).map_err(|e| RetrievalError::Io {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

/// `ingest --watch`: re-ingests whenever a document (or sidecar) under
/// `roots` changes, printing each run's summary, until Ctrl-C. Events are
/// debounced by 300 ms. File watching uses the `notify` crate (inotify on
/// Linux).
///
/// # Errors
/// The watcher cannot be set up; an ingestion run fails as a whole.
pub async fn watch(retriever: &Retriever, roots: &[PathBuf]) -> Result<(), RetrievalError> {
    use notify::{RecursiveMode, Watcher};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if let Ok(ev) = ev
            && ev
                .paths
                .iter()
                .any(|p| source::is_ingestible(p) || source::is_sidecar(&p.to_string_lossy()))
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| RetrievalError::Paths(format!("cannot watch: {e}")))?;
    for root in roots {
        watcher
            .watch(root, RecursiveMode::Recursive)
            .map_err(|e| RetrievalError::Paths(format!("cannot watch {}: {e}", root.display())))?;
    }
    eprintln!("watching for changes; Ctrl-C stops");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            got = rx.recv() => {
                if got.is_none() {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                while rx.try_recv().is_ok() {}
                let report = retriever.ingest(roots, false).await?;
                print!("{report}");
                use std::io::Write;
                let _ = std::io::stdout().flush();
            }
        }
    }
}
