//! Documentation retrieval: heading-aware chunking and BM25 search (tantivy).
//!
//! Chunks are data, never instructions: text that reads like an instruction to
//! a model is flagged (`suspicious`) and left out of extractive answers, but
//! still cited so people can find and fix the document.

mod chunk;

use std::path::{Path, PathBuf};

use serde::Serialize;
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, TantivyDocument, doc};

pub use chunk::{Chunk, chunk_markdown, looks_like_instruction};

/// Errors building or opening the docs index.
#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// Reading documents or the index directory failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// tantivy failed.
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The stored chunk list is unreadable.
    #[error("the chunk list in {0} is unreadable; run `steward ingest` again")]
    Chunks(PathBuf),
}

/// One search result.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// The chunk.
    pub chunk: Chunk,
    /// BM25 score (higher is better; not comparable across queries).
    pub score: f32,
}

/// A searchable set of chunks.
pub struct DocIndex {
    chunks: Vec<Chunk>,
    reader: IndexReader,
    parser: QueryParser,
    id_field: Field,
}

struct Fields {
    id: Field,
    title: Field,
    section: Field,
    body: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("en_stem")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let id = b.add_text_field("id", STRING | STORED);
    let title = b.add_text_field("title", text.clone());
    let section = b.add_text_field("section", text.clone());
    let body = b.add_text_field("body", text);
    (
        b.build(),
        Fields {
            id,
            title,
            section,
            body,
        },
    )
}

const CHUNKS_FILE: &str = "chunks.json";

/// Reads and chunks every Markdown / text file under `root`, sorted by path.
///
/// # Errors
/// [`RetrievalError::Io`] if the directory or a file cannot be read.
pub fn load_documents(root: &Path) -> Result<Vec<Chunk>, RetrievalError> {
    let mut files = Vec::new();
    collect_files(root, &mut files)?;
    files.sort();
    let mut chunks = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|source| RetrievalError::Io {
            path: path.clone(),
            source,
        })?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        chunks.extend(chunk_markdown(&rel, &text));
    }
    Ok(chunks)
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), RetrievalError> {
    let entries = std::fs::read_dir(dir).map_err(|source| RetrievalError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else if p
            .extension()
            .is_some_and(|e| e == "md" || e == "markdown" || e == "txt")
        {
            out.push(p);
        }
    }
    Ok(())
}

impl DocIndex {
    /// Builds an index of `chunks`, on disk in `dir` (replacing what is there)
    /// or in memory when `dir` is `None`.
    ///
    /// # Errors
    /// [`RetrievalError`] when the directory or index cannot be written.
    pub fn build(chunks: Vec<Chunk>, dir: Option<&Path>) -> Result<DocIndex, RetrievalError> {
        let (schema, f) = schema();
        let index = match dir {
            Some(d) => {
                if d.exists() {
                    std::fs::remove_dir_all(d).map_err(|source| RetrievalError::Io {
                        path: d.to_owned(),
                        source,
                    })?;
                }
                std::fs::create_dir_all(d).map_err(|source| RetrievalError::Io {
                    path: d.to_owned(),
                    source,
                })?;
                let json = serde_json::to_vec_pretty(&chunks).unwrap_or_default();
                std::fs::write(d.join(CHUNKS_FILE), json).map_err(|source| RetrievalError::Io {
                    path: d.join(CHUNKS_FILE),
                    source,
                })?;
                Index::create_in_dir(d, schema)?
            }
            None => Index::create_in_ram(schema),
        };
        let mut writer = index.writer_with_num_threads(1, 30_000_000)?;
        for c in &chunks {
            writer.add_document(doc!(
                f.id => c.id.clone(),
                f.title => c.title.clone(),
                f.section => c.section.clone(),
                f.body => c.text.clone(),
            ))?;
        }
        writer.commit()?;
        Self::from_index(index, chunks, f)
    }

    /// Opens an index written by [`DocIndex::build`] with a directory.
    ///
    /// # Errors
    /// [`RetrievalError`] when the directory holds no readable index.
    pub fn open(dir: &Path) -> Result<DocIndex, RetrievalError> {
        let path = dir.join(CHUNKS_FILE);
        let text = std::fs::read(&path).map_err(|source| RetrievalError::Io {
            path: path.clone(),
            source,
        })?;
        let chunks: Vec<Chunk> =
            serde_json::from_slice(&text).map_err(|_| RetrievalError::Chunks(path))?;
        let index = Index::open_in_dir(dir)?;
        let (_, f) = schema();
        Self::from_index(index, chunks, f)
    }

    fn from_index(index: Index, chunks: Vec<Chunk>, f: Fields) -> Result<DocIndex, RetrievalError> {
        let reader = index.reader()?;
        let mut parser = QueryParser::for_index(&index, vec![f.title, f.section, f.body]);
        parser.set_field_boost(f.title, 2.0);
        parser.set_field_boost(f.section, 1.5);
        Ok(DocIndex {
            chunks,
            reader,
            parser,
            id_field: f.id,
        })
    }

    /// All chunks, in ingestion order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The `k` best chunks for a free-text query (BM25 over title, section
    /// and body; query syntax errors are ignored, so any text is a query).
    pub fn search(&self, query: &str, k: usize) -> Vec<Hit> {
        let cleaned: String = query
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '_' {
                    c
                } else {
                    ' '
                }
            })
            .collect();
        let (q, _errors) = self.parser.parse_query_lenient(&cleaned);
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&q, &TopDocs::with_limit(k.max(1)).order_by_score()) else {
            return Vec::new();
        };
        top.into_iter()
            .filter_map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr).ok()?;
                let id = d.get_first(self.id_field)?.as_str()?.to_owned();
                let chunk = self.chunks.iter().find(|c| c.id == id)?.clone();
                Some(Hit { chunk, score })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_index() -> DocIndex {
        let docs = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ingest/docs"));
        DocIndex::build(load_documents(docs).unwrap(), None).unwrap()
    }

    #[test]
    fn finds_the_active_customer_definition() {
        let hits = demo_index().search("what counts as an active customer?", 3);
        assert!(
            hits.iter()
                .any(|h| h.chunk.text.to_lowercase().contains("active customer")),
            "{hits:?}"
        );
    }

    #[test]
    fn the_planted_injection_is_flagged() {
        let index = demo_index();
        assert!(
            index.chunks().iter().any(|c| c.suspicious),
            "no chunk flagged"
        );
    }

    #[test]
    fn hostile_query_syntax_is_just_text() {
        let index = demo_index();
        let _ = index.search("title:(( AND OR \" ~ ^ \u{0}", 5);
        let _ = index.search("", 5);
    }

    #[test]
    fn an_index_round_trips_through_disk() {
        let dir = tempfile::tempdir().unwrap();
        let chunks = load_documents(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/ingest/docs"
        )))
        .unwrap();
        let n = chunks.len();
        DocIndex::build(chunks, Some(dir.path())).unwrap();
        let reopened = DocIndex::open(dir.path()).unwrap();
        assert_eq!(reopened.chunks().len(), n);
        assert!(!reopened.search("churn", 3).is_empty());
    }
}
