//! Qdrant as the vector store, over gRPC with qdrant-client.
//!
//! One collection (cosine distance); point ids are UUIDs derived from the
//! chunk id (first 16 bytes of its SHA-256), so re-ingesting a chunk upserts
//! the same point. Payload: `chunk_id`, `hash` (the chunk's content hash) and
//! `acl` (its groups, or `*` for public), with a keyword index on `acl`; a
//! search passes the principal's groups as a payload filter, so Qdrant ranks
//! only readable points.

use std::collections::HashMap;

use async_trait::async_trait;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, PointId, PointStruct, PointsIdsList, QueryPointsBuilder,
    ScrollPointsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use sha2::{Digest, Sha256};

use super::{Point, StoreError, VectorStore};

const PUBLIC: &str = "*";

/// A Qdrant collection used as the vector store.
pub struct QdrantStore {
    client: Qdrant,
    collection: String,
    dim: u64,
}

fn remote(e: qdrant_client::QdrantError) -> StoreError {
    // The error's text names the failing call and status, not payloads.
    StoreError::Remote(e.to_string())
}

/// The point id of a chunk: a UUID made of the first 16 bytes of SHA-256(chunk id).
pub fn point_id(chunk_id: &str) -> String {
    let d = Sha256::digest(chunk_id.as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn string_of(v: Option<&Value>) -> Option<String> {
    match v?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

impl QdrantStore {
    /// Connects to `url` (gRPC, e.g. `http://127.0.0.1:6334`) and creates
    /// `collection` for `dim`-dimensional vectors if it does not exist. The
    /// API key, if any, comes from `QDRANT_API_KEY`.
    ///
    /// # Errors
    /// [`StoreError::Remote`] when Qdrant cannot be reached or refuses.
    pub async fn connect(
        url: &str,
        collection: &str,
        dim: usize,
    ) -> Result<QdrantStore, StoreError> {
        let client = Qdrant::from_url(url)
            .api_key(std::env::var("QDRANT_API_KEY").ok())
            .timeout(std::time::Duration::from_secs(10))
            .skip_compatibility_check()
            .build()
            .map_err(remote)?;
        let store = QdrantStore {
            client,
            collection: collection.to_owned(),
            dim: dim as u64,
        };
        store.ensure_collection().await?;
        Ok(store)
    }

    async fn ensure_collection(&self) -> Result<(), StoreError> {
        if self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(remote)?
        {
            return Ok(());
        }
        self.client
            .create_collection(
                CreateCollectionBuilder::new(&self.collection)
                    .vectors_config(VectorParamsBuilder::new(self.dim, Distance::Cosine)),
            )
            .await
            .map_err(remote)?;
        self.client
            .create_field_index(
                CreateFieldIndexCollectionBuilder::new(&self.collection, "acl", FieldType::Keyword)
                    .wait(true),
            )
            .await
            .map_err(remote)?;
        Ok(())
    }
}

#[async_trait]
impl VectorStore for QdrantStore {
    fn kind(&self) -> &'static str {
        "qdrant"
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), StoreError> {
        for batch in points.chunks(256) {
            let mut structs = Vec::with_capacity(batch.len());
            for p in batch {
                if p.vector.len() as u64 != self.dim {
                    return Err(StoreError::Dimension {
                        got: p.vector.len(),
                        want: self.dim as usize,
                    });
                }
                let acl: Vec<String> = if p.acl.is_empty() {
                    vec![PUBLIC.to_owned()]
                } else {
                    p.acl.clone()
                };
                let payload = Payload::from(HashMap::from([
                    ("chunk_id", Value::from(p.chunk_id.clone())),
                    ("hash", Value::from(p.hash.clone())),
                    ("acl", Value::from(acl)),
                ]));
                structs.push(PointStruct::new(
                    point_id(&p.chunk_id),
                    p.vector.clone(),
                    payload,
                ));
            }
            self.client
                .upsert_points(UpsertPointsBuilder::new(&self.collection, structs).wait(true))
                .await
                .map_err(remote)?;
        }
        Ok(())
    }

    async fn delete(&self, chunk_ids: &[String]) -> Result<(), StoreError> {
        for batch in chunk_ids.chunks(256) {
            let ids: Vec<PointId> = batch.iter().map(|c| PointId::from(point_id(c))).collect();
            self.client
                .delete_points(
                    DeletePointsBuilder::new(&self.collection)
                        .points(PointsIdsList { ids })
                        .wait(true),
                )
                .await
                .map_err(remote)?;
        }
        Ok(())
    }

    async fn hashes(&self) -> Result<HashMap<String, String>, StoreError> {
        let mut out = HashMap::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut req = ScrollPointsBuilder::new(&self.collection)
                .limit(1000)
                .with_payload(true)
                .with_vectors(false);
            if let Some(o) = offset.take() {
                req = req.offset(o);
            }
            let page = self.client.scroll(req).await.map_err(remote)?;
            for p in page.result {
                if let (Some(id), Some(hash)) = (
                    string_of(p.payload.get("chunk_id")),
                    string_of(p.payload.get("hash")),
                ) {
                    out.insert(id, hash);
                }
            }
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(out),
            }
        }
    }

    async fn clear(&self) -> Result<(), StoreError> {
        self.client
            .delete_collection(&self.collection)
            .await
            .map_err(remote)?;
        self.ensure_collection().await
    }

    async fn search(
        &self,
        vector: &[f32],
        groups: &[String],
        k: usize,
    ) -> Result<Vec<(String, f32)>, StoreError> {
        let readable: Vec<String> = groups.iter().cloned().chain([PUBLIC.to_owned()]).collect();
        let res = self
            .client
            .query(
                QueryPointsBuilder::new(&self.collection)
                    .query(vector.to_vec())
                    .filter(Filter::must([Condition::matches("acl", readable)]))
                    .limit(k as u64)
                    .with_payload(true),
            )
            .await
            .map_err(remote)?;
        Ok(res
            .result
            .into_iter()
            .filter_map(|p| Some((string_of(p.payload.get("chunk_id"))?, p.score)))
            .collect())
    }

    async fn flush(&self) -> Result<(), StoreError> {
        Ok(()) // every write above waits for Qdrant to apply it
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn point_ids_are_uuids_and_stable() {
        let a = super::point_id("glossary.md#churn");
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_eq!(a, super::point_id("glossary.md#churn"));
        assert_ne!(a, super::point_id("glossary.md#churn-2"));
    }
}
