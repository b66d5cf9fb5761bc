//! The embedded vector store: exact (brute-force) cosine search over vectors
//! held contiguously in memory, persisted to one file.
//!
//! Exact search reads every readable vector per query: 100k × 384 floats is
//! about 150 MB of memory traffic, split over the machine's cores above
//! [`PARALLEL_ABOVE`] points (benchmarks in `docs/benchmarks.md`). Beyond a
//! few hundred thousand chunks, use Qdrant.
//!
//! File format (little-endian): magic `STEWVEC1`, `u32` dimension, `u32`
//! point count, then per point the chunk id, the content hash and each ACL
//! group as `u32` length + UTF-8 bytes (groups preceded by a `u32` count),
//! then `dimension` `f32`s. Written to a temporary file and renamed, so a
//! crash leaves the old file whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use async_trait::async_trait;

use super::{Point, StoreError, VectorStore};

const MAGIC: &[u8; 8] = b"STEWVEC1";

/// Point count above which a search is split across threads.
pub const PARALLEL_ABOVE: usize = 20_000;

/// Exact-search vector store (see the module docs).
pub struct EmbeddedStore {
    path: Option<PathBuf>,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    dim: usize,
    ids: Vec<String>,
    hashes: Vec<String>,
    /// Per point: indexes into `groups`; empty means public.
    acl: Vec<Vec<u32>>,
    vectors: Vec<f32>,
    position: HashMap<String, usize>,
    groups: Vec<String>,
    group_index: HashMap<String, u32>,
}

impl Inner {
    fn group(&mut self, g: &str) -> u32 {
        if let Some(&i) = self.group_index.get(g) {
            return i;
        }
        let i = u32::try_from(self.groups.len()).unwrap_or(u32::MAX);
        self.groups.push(g.to_owned());
        self.group_index.insert(g.to_owned(), i);
        i
    }

    fn remove(&mut self, id: &str) {
        let Some(i) = self.position.remove(id) else {
            return;
        };
        let last = self.ids.len() - 1;
        self.ids.swap_remove(i);
        self.hashes.swap_remove(i);
        self.acl.swap_remove(i);
        if i != last {
            let (head, tail) = self.vectors.split_at_mut(last * self.dim);
            head[i * self.dim..(i + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            self.position.insert(self.ids[i].clone(), i);
        }
        self.vectors.truncate(last * self.dim);
    }

    fn insert(&mut self, p: Point) -> Result<(), StoreError> {
        if self.dim == 0 {
            self.dim = p.vector.len();
        }
        if p.vector.len() != self.dim || self.dim == 0 {
            return Err(StoreError::Dimension {
                got: p.vector.len(),
                want: self.dim,
            });
        }
        self.remove(&p.chunk_id);
        let acl = p.acl.iter().map(|g| self.group(g)).collect();
        self.position.insert(p.chunk_id.clone(), self.ids.len());
        self.ids.push(p.chunk_id);
        self.hashes.push(p.hash);
        self.acl.push(acl);
        self.vectors.extend_from_slice(&p.vector);
        Ok(())
    }

    fn search(&self, q: &[f32], groups: &[String], k: usize) -> Vec<(String, f32)> {
        if q.len() != self.dim || self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let allowed: Vec<u32> = groups
            .iter()
            .filter_map(|g| self.group_index.get(g).copied())
            .collect();
        let readable = |i: usize| {
            let acl = &self.acl[i];
            acl.is_empty() || acl.iter().any(|g| allowed.contains(g))
        };
        let scan = |range: std::ops::Range<usize>| -> Vec<(f32, usize)> {
            let mut top = TopK::new(k);
            for i in range {
                if readable(i) {
                    top.push(dot(&self.vectors[i * self.dim..(i + 1) * self.dim], q), i);
                }
            }
            top.items
        };
        let n = self.ids.len();
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(8));
        let mut best = if n > PARALLEL_ABOVE && threads > 1 {
            let step = n.div_ceil(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        let range = t * step..((t + 1) * step).min(n);
                        s.spawn(move || scan(range))
                    })
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().unwrap_or_default())
                    .collect()
            })
        } else {
            scan(0..n)
        };
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        best.truncate(k);
        best.into_iter()
            .map(|(s, i)| (self.ids[i].clone(), s))
            .collect()
    }
}

/// The `k` largest scores seen, unordered (a small buffer; `k` is tiny).
struct TopK {
    k: usize,
    items: Vec<(f32, usize)>,
    floor: f32,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            items: Vec::with_capacity(k + 1),
            floor: f32::NEG_INFINITY,
        }
    }

    fn push(&mut self, score: f32, i: usize) {
        if self.items.len() < self.k {
            self.items.push((score, i));
            if self.items.len() == self.k {
                self.floor = self.min().1;
            }
        } else if score > self.floor {
            let (at, _) = self.min();
            self.items[at] = (score, i);
            self.floor = self.min().1;
        }
    }

    fn min(&self) -> (usize, f32) {
        self.items
            .iter()
            .enumerate()
            .fold(
                (0, f32::INFINITY),
                |acc, (j, (s, _))| {
                    if *s < acc.1 { (j, *s) } else { acc }
                },
            )
    }
}

/// Dot product in eight lanes, so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

impl EmbeddedStore {
    /// An empty store that lives only in memory.
    pub fn in_memory() -> EmbeddedStore {
        EmbeddedStore {
            path: None,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// Opens the store file at `path` (an absent file is an empty store).
    ///
    /// # Errors
    /// [`StoreError::File`] for an unreadable or malformed file.
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        let mut inner = Inner::default();
        match std::fs::read(path) {
            Ok(bytes) => decode(&bytes, &mut inner).map_err(|message| StoreError::File {
                path: path.display().to_string(),
                message,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
        Ok(EmbeddedStore {
            path: Some(path.to_owned()),
            inner: RwLock::new(inner),
        })
    }

    /// Number of stored points.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |i| i.ids.len())
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`VectorStore::search`] without the async wrapper (for benchmarks).
    pub fn search_now(&self, vector: &[f32], groups: &[String], k: usize) -> Vec<(String, f32)> {
        self.inner
            .read()
            .map(|i| i.search(vector, groups, k))
            .unwrap_or_default()
    }

    /// [`VectorStore::upsert`] without the async wrapper.
    ///
    /// # Errors
    /// [`StoreError::Dimension`].
    pub fn upsert_now(&self, points: Vec<Point>) -> Result<(), StoreError> {
        let mut inner = self.write()?;
        points.into_iter().try_for_each(|p| inner.insert(p))
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, Inner>, StoreError> {
        self.inner
            .write()
            .map_err(|_| StoreError::Remote("the store is unusable after a panic".into()))
    }
}

#[async_trait]
impl VectorStore for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn upsert(&self, points: Vec<Point>) -> Result<(), StoreError> {
        self.upsert_now(points)
    }

    async fn delete(&self, chunk_ids: &[String]) -> Result<(), StoreError> {
        let mut inner = self.write()?;
        chunk_ids.iter().for_each(|id| inner.remove(id));
        Ok(())
    }

    async fn hashes(&self) -> Result<HashMap<String, String>, StoreError> {
        let inner = self
            .inner
            .read()
            .map_err(|_| StoreError::Remote("poisoned".into()))?;
        Ok(inner
            .ids
            .iter()
            .cloned()
            .zip(inner.hashes.iter().cloned())
            .collect())
    }

    async fn clear(&self) -> Result<(), StoreError> {
        *self.write()? = Inner::default();
        Ok(())
    }

    async fn search(
        &self,
        vector: &[f32],
        groups: &[String],
        k: usize,
    ) -> Result<Vec<(String, f32)>, StoreError> {
        Ok(self.search_now(vector, groups, k))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let bytes = {
            let inner = self
                .inner
                .read()
                .map_err(|_| StoreError::Remote("poisoned".into()))?;
            encode(&inner)
        };
        let fail = |e: std::io::Error| StoreError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(inner: &Inner) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + inner.vectors.len() * 4 + inner.ids.len() * 96);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&u32::try_from(inner.dim).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&u32::try_from(inner.ids.len()).unwrap_or(0).to_le_bytes());
    for i in 0..inner.ids.len() {
        put_str(&mut out, &inner.ids[i]);
        put_str(&mut out, &inner.hashes[i]);
        out.extend_from_slice(&u32::try_from(inner.acl[i].len()).unwrap_or(0).to_le_bytes());
        for g in &inner.acl[i] {
            put_str(&mut out, &inner.groups[*g as usize]);
        }
        for x in &inner.vectors[i * inner.dim..(i + 1) * inner.dim] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("truncated")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "invalid UTF-8".to_owned())
    }
}

fn decode(bytes: &[u8], inner: &mut Inner) -> Result<(), String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err("not a steward vector file".into());
    }
    let dim = r.u32()? as usize;
    let count = r.u32()? as usize;
    if dim == 0 && count > 0 || dim > 65_536 {
        return Err(format!("implausible dimension {dim}"));
    }
    for _ in 0..count {
        let chunk_id = r.string()?;
        let hash = r.string()?;
        let groups = r.u32()? as usize;
        let acl = (0..groups)
            .map(|_| r.string())
            .collect::<Result<Vec<_>, _>>()?;
        let raw = r.take(dim * 4)?;
        let vector = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        inner
            .insert(Point {
                chunk_id,
                hash,
                acl,
                vector,
            })
            .map_err(|e| e.to_string())?;
    }
    if r.at != bytes.len() {
        return Err("trailing bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_the_largest() {
        let mut t = TopK::new(3);
        for (i, s) in [0.1, 0.9, 0.5, 0.7, 0.2, 0.95].into_iter().enumerate() {
            t.push(s, i);
        }
        let mut got: Vec<usize> = t.items.iter().map(|x| x.1).collect();
        got.sort_unstable();
        assert_eq!(got, vec![1, 3, 5]);
    }

    #[test]
    fn dot_matches_the_naive_sum() {
        let a: Vec<f32> = (0..387).map(|i| (i as f32).sin()).collect();
        let b: Vec<f32> = (0..387).map(|i| (i as f32 * 0.3).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }

    #[test]
    fn parallel_and_serial_scans_agree() {
        let store = EmbeddedStore::in_memory();
        let n = PARALLEL_ABOVE + 500;
        let points = (0..n)
            .map(|i| Point {
                chunk_id: format!("c{i}"),
                hash: String::new(),
                acl: if i % 3 == 0 { vec!["g".into()] } else { vec![] },
                vector: super::super::super::embed::normalised(vec![
                    (i as f32 * 0.01).sin(),
                    (i as f32 * 0.02).cos(),
                    1.0,
                ]),
            })
            .collect();
        store.upsert_now(points).unwrap();
        let q = super::super::super::embed::normalised(vec![0.3, 0.2, 1.0]);
        let fast = store.search_now(&q, &[], 10);
        let inner = store.inner.read().unwrap();
        let mut all: Vec<(f32, usize)> = (0..n)
            .filter(|i| inner.acl[*i].is_empty())
            .map(|i| (dot(&inner.vectors[i * 3..i * 3 + 3], &q), i))
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let want: Vec<String> = all[..10].iter().map(|(_, i)| format!("c{i}")).collect();
        let got: Vec<String> = fast.into_iter().map(|(id, _)| id).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.bin");
        for bytes in [
            b"nope".to_vec(),
            b"STEWVEC1\x03\0\0\0\x02\0\0\0".to_vec(),
            b"STEWVEC1\x03\0\0\0\x01\0\0\0\xff\xff\xff\xff".to_vec(),
        ] {
            std::fs::write(&path, bytes).unwrap();
            assert!(EmbeddedStore::open(&path).is_err());
        }
    }
}
