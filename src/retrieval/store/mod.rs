//! Vector stores behind one trait: the embedded exact-search store (the
//! default, persisted in the index directory) and Qdrant (through
//! qdrant-client). Both filter by ACL inside the search, before ranking.

mod embedded;
mod qdrant;

use async_trait::async_trait;

pub use embedded::EmbeddedStore;
pub use qdrant::QdrantStore;

/// One stored vector and what a search needs to filter and identify it.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The chunk id.
    pub chunk_id: String,
    /// The chunk's content hash: unchanged means the vector is still right.
    pub hash: String,
    /// Groups that may read the chunk (empty: everyone).
    pub acl: Vec<String>,
    /// Unit vector.
    pub vector: Vec<f32>,
}

/// Failures talking to a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing the embedded store's file.
    #[error("vector store file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A vector of the wrong length.
    #[error("vector of length {got} in a store of dimension {want}")]
    Dimension {
        /// Received.
        got: usize,
        /// Expected.
        want: usize,
    },
    /// The remote store failed (message without payloads).
    #[error("vector store: {0}")]
    Remote(String),
}

/// A place to keep chunk vectors and find the nearest readable ones.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// `embedded` or `qdrant`.
    fn kind(&self) -> &'static str;

    /// Inserts or replaces points (keyed by chunk id).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn upsert(&self, points: Vec<Point>) -> Result<(), StoreError>;

    /// Removes points by chunk id (unknown ids are ignored).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn delete(&self, chunk_ids: &[String]) -> Result<(), StoreError>;

    /// Chunk id → content hash of every stored point.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn hashes(&self) -> Result<std::collections::HashMap<String, String>, StoreError>;

    /// Removes every point (the embedding model changed).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn clear(&self) -> Result<(), StoreError>;

    /// The `k` points most similar to `vector` (cosine, best first) among
    /// those readable by `groups`: `(chunk id, similarity)`.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn search(
        &self,
        vector: &[f32],
        groups: &[String],
        k: usize,
    ) -> Result<Vec<(String, f32)>, StoreError>;

    /// Makes upserts and deletes durable (the embedded store writes its file).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn flush(&self) -> Result<(), StoreError>;
}
