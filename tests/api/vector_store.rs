//! The vector-store contract: one suite every store must pass — the embedded
//! store always (in memory and on disk), Qdrant when `QDRANT_URL` is set
//! (reported skipped otherwise: no Qdrant server can run on the build
//! machines; `docker compose up qdrant` provides one).

use steward::retrieval::DIM;
use steward::retrieval::store::{EmbeddedStore, Point, QdrantStore, VectorStore};

fn basis(i: usize, j: usize) -> Vec<f32> {
    // A unit vector mostly along axis i with a little of axis j.
    let mut v = vec![0.0f32; DIM];
    v[i] = 0.9;
    v[j] = 0.1;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn point(id: &str, hash: &str, acl: &[&str], vector: Vec<f32>) -> Point {
    Point {
        chunk_id: id.into(),
        hash: hash.into(),
        acl: acl.iter().map(|s| (*s).to_owned()).collect(),
        vector,
    }
}

/// What every vector store must do.
async fn store_contract(store: &dyn VectorStore) {
    store.clear().await.unwrap();
    store
        .upsert(vec![
            point("a", "h-a", &[], basis(0, 1)),
            point("b", "h-b", &["finance"], basis(0, 2)),
            point("c", "h-c", &[], basis(5, 6)),
        ])
        .await
        .unwrap();
    let q = basis(0, 3);
    let ids = |hits: Vec<(String, f32)>| hits.into_iter().map(|(id, _)| id).collect::<Vec<_>>();

    let public = ids(store.search(&q, &[], 10).await.unwrap());
    assert_eq!(public, vec!["a", "c"], "{}: ACL filter", store.kind());
    let finance = ids(store.search(&q, &["finance".into()], 2).await.unwrap());
    assert_eq!(finance.len(), 2);
    assert!(finance.contains(&"b".to_owned()) && finance.contains(&"a".to_owned()));
    let other = ids(store.search(&q, &["sales".into()], 10).await.unwrap());
    assert!(!other.contains(&"b".to_owned()));

    let hashes = store.hashes().await.unwrap();
    assert_eq!(hashes.len(), 3);
    assert_eq!(hashes["b"], "h-b");

    // Upsert replaces by chunk id, including the ACL.
    store
        .upsert(vec![point("b", "h-b2", &[], basis(0, 2))])
        .await
        .unwrap();
    let hashes = store.hashes().await.unwrap();
    assert_eq!((hashes.len(), hashes["b"].as_str()), (3, "h-b2"));
    assert!(ids(store.search(&q, &[], 10).await.unwrap()).contains(&"b".to_owned()));

    store.delete(&["c".into(), "unknown".into()]).await.unwrap();
    assert!(!ids(store.search(&q, &[], 10).await.unwrap()).contains(&"c".to_owned()));
    assert_eq!(store.hashes().await.unwrap().len(), 2);

    let wrong = store
        .upsert(vec![point("d", "h", &[], vec![1.0, 0.0])])
        .await;
    assert!(
        wrong.is_err(),
        "{}: a wrong dimension is refused",
        store.kind()
    );
    store.flush().await.unwrap();
    store.clear().await.unwrap();
    assert!(store.hashes().await.unwrap().is_empty());
}

#[tokio::test]
async fn embedded_store_meets_the_contract() {
    store_contract(&EmbeddedStore::in_memory()).await;
}

#[tokio::test]
async fn embedded_store_meets_the_contract_on_disk_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vectors.bin");
    store_contract(&EmbeddedStore::open(&path).unwrap()).await;
    let path = dir.path().join("fresh.bin");
    let store = EmbeddedStore::open(&path).unwrap();
    store
        .upsert(vec![point("x", "hx", &["g"], basis(1, 2))])
        .await
        .unwrap();
    store.flush().await.unwrap();
    let reopened = EmbeddedStore::open(&path).unwrap();
    assert_eq!(reopened.hashes().await.unwrap()["x"], "hx");
    assert!(
        reopened
            .search(&basis(1, 2), &[], 5)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reopened
            .search(&basis(1, 2), &["g".into()], 5)
            .await
            .unwrap()[0]
            .0,
        "x"
    );
    std::fs::write(&path, b"STEWVEC1garbage").unwrap();
    assert!(EmbeddedStore::open(&path).is_err());
}

#[tokio::test]
async fn qdrant_store_meets_the_contract() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!(
            "SKIPPED qdrant_store_meets_the_contract: QDRANT_URL is not set (no Qdrant server here)"
        );
        return;
    };
    let collection = format!("steward_contract_{}", std::process::id());
    let store = QdrantStore::connect(&url, &collection, DIM).await.unwrap();
    store_contract(&store).await;
}
