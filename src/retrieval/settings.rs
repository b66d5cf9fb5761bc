//! `[retrieval]` settings.

use serde::{Deserialize, Serialize};

use super::chunk::ChunkLimits;

/// Where vectors are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The embedded exact-search store in the index directory (default).
    Embedded,
    /// A Qdrant server (`qdrant_url`).
    Qdrant,
}

/// Retrieval configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalSettings {
    /// Embedding model directory; `auto` (default) uses the one
    /// `scripts/embedding-model` installs if present, `off` disables vectors.
    pub model: String,
    /// Vector store.
    pub store: StoreKind,
    /// Qdrant gRPC URL (e.g. `http://127.0.0.1:6334`) for `store = "qdrant"`.
    pub qdrant_url: Option<String>,
    /// Qdrant collection name.
    pub collection: String,
    /// Chunk size limits.
    pub chunking: ChunkLimits,
    /// Candidates taken from each ranking before fusion.
    pub candidates: usize,
}

impl Default for RetrievalSettings {
    fn default() -> Self {
        RetrievalSettings {
            model: "auto".into(),
            store: StoreKind::Embedded,
            qdrant_url: None,
            collection: "steward_docs".into(),
            chunking: ChunkLimits::default(),
            candidates: 50,
        }
    }
}
