//! The lexical half of hybrid search: a tantivy index of chunks scored with
//! BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25
//! and Beyond", 2009; tantivy's k1 = 1.2, b = 0.75) over title, section path
//! and body with English stemming.
//!
//! Access control is part of the query, not a post-filter: every document
//! carries its ACL groups (or `*` for public) in an indexed field, and a search
//! requires one of the principal's groups, so unreadable chunks are never
//! scored, counted or returned.

use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

use super::chunk::Chunk;

/// ACL value stored for chunks every principal may read.
const PUBLIC: &str = "*";

/// A BM25 index of chunks.
pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    parser: QueryParser,
    f: Fields,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    acl: Field,
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
    let acl = b.add_text_field("acl", STRING);
    let title = b.add_text_field("title", text.clone());
    let section = b.add_text_field("section", text.clone());
    let body = b.add_text_field("body", text);
    (
        b.build(),
        Fields {
            id,
            acl,
            title,
            section,
            body,
        },
    )
}

impl Bm25 {
    /// An empty index in memory.
    ///
    /// # Errors
    /// tantivy errors.
    pub fn in_memory() -> tantivy::Result<Bm25> {
        let (schema, f) = schema();
        Self::wrap(Index::create_in_ram(schema), f)
    }

    /// Opens the index in `dir`, creating an empty one if there is none.
    ///
    /// # Errors
    /// tantivy errors (an index with another schema, unreadable files).
    pub fn open_or_create(dir: &Path) -> tantivy::Result<Bm25> {
        let (schema, f) = schema();
        std::fs::create_dir_all(dir)?;
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        Self::wrap(Index::open_or_create(directory, schema)?, f)
    }

    fn wrap(index: Index, f: Fields) -> tantivy::Result<Bm25> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![f.title, f.section, f.body]);
        parser.set_field_boost(f.title, 1.5);
        parser.set_field_boost(f.section, 1.5);
        Ok(Bm25 {
            index,
            reader,
            parser,
            f,
        })
    }

    /// Removes `remove` (chunk ids) and adds or replaces `add`, in one commit.
    ///
    /// # Errors
    /// tantivy errors (another process holds the index's writer lock).
    pub fn apply(&self, remove: &[String], add: &[Chunk]) -> tantivy::Result<()> {
        if remove.is_empty() && add.is_empty() {
            return Ok(());
        }
        let mut writer: IndexWriter = self.index.writer_with_num_threads(1, 32_000_000)?;
        for id in remove.iter().chain(add.iter().map(|c| &c.id)) {
            writer.delete_term(Term::from_field_text(self.f.id, id));
        }
        for c in add {
            let mut d = doc!(
                self.f.id => c.id.clone(),
                self.f.title => c.title.clone(),
                self.f.section => c.section.clone(),
                self.f.body => c.text.clone(),
            );
            if c.acl.is_empty() {
                d.add_text(self.f.acl, PUBLIC);
            }
            for g in &c.acl {
                d.add_text(self.f.acl, g);
            }
            writer.add_document(d)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()
    }

    /// Picks up commits made by another process (an `ingest --watch`).
    ///
    /// # Errors
    /// tantivy errors.
    pub fn reload(&self) -> tantivy::Result<()> {
        self.reader.reload()
    }

    /// Number of indexed chunks.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids and BM25 scores of the `k` best chunks readable by `groups`,
    /// best first. Query syntax is not interpreted: any text is a query.
    pub fn search(&self, query: &str, groups: &[String], k: usize) -> Vec<(String, f32)> {
        let cleaned: String = query
            .chars()
            .take(2000)
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        if cleaned.trim().is_empty() {
            return Vec::new();
        }
        let (text, _errors) = self.parser.parse_query_lenient(&cleaned);
        let readable: Vec<(Occur, Box<dyn Query>)> = groups
            .iter()
            .map(String::as_str)
            .chain([PUBLIC])
            .map(|g| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.f.acl, g),
                    IndexRecordOption::Basic,
                ));
                (Occur::Should, q)
            })
            .collect();
        let acl_filter: Box<dyn Query> = Box::new(BooleanQuery::new(readable));
        let q = BooleanQuery::new(vec![
            (Occur::Must, text),
            // A filter: it decides membership and contributes no score.
            (
                Occur::Must,
                Box::new(tantivy::query::ConstScoreQuery::new(acl_filter, 0.0)),
            ),
        ]);
        let searcher = self.reader.searcher();
        let Ok(top) = searcher.search(&q, &TopDocs::with_limit(k.max(1)).order_by_score()) else {
            return Vec::new();
        };
        top.into_iter()
            .filter_map(|(score, addr)| {
                let d: TantivyDocument = searcher.doc(addr).ok()?;
                Some((d.get_first(self.f.id)?.as_str()?.to_owned(), score))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retrieval::chunk::{ChunkLimits, DocMeta, chunk_markdown};

    fn chunks(acl: &[&str], source: &str, text: &str) -> Vec<Chunk> {
        let meta = DocMeta {
            acl: acl.iter().map(|s| (*s).to_owned()).collect(),
            ..DocMeta::default()
        };
        chunk_markdown(source, text, &meta, ChunkLimits::default())
    }

    #[test]
    fn acl_filters_before_ranking_and_replacing_works() {
        let idx = Bm25::in_memory().unwrap();
        let mut all = chunks(&[], "pub.md", "# Revenue\nrevenue is money in\n");
        all.extend(chunks(
            &["finance"],
            "fin.md",
            "# Revenue forecast\nrevenue revenue revenue forecast\n",
        ));
        idx.apply(&[], &all).unwrap();
        let public = idx.search("revenue", &["analyst".into()], 5);
        assert_eq!(public.len(), 1, "{public:?}");
        assert_eq!(public[0].0, "pub.md#revenue");
        let fin = idx.search("revenue", &["finance".into()], 5);
        assert_eq!(fin.len(), 2);
        assert!(fin.iter().any(|(id, _)| id == "fin.md#revenue-forecast"));

        // Replace and remove.
        idx.apply(
            &["fin.md#revenue-forecast".into()],
            &chunks(&[], "pub.md", "# Revenue\nincome\n"),
        )
        .unwrap();
        assert_eq!(idx.len(), 1);
        assert!(idx.search("revenue", &["finance".into()], 5)[0].0 == "pub.md#revenue");
        assert!(idx.search("money", &[], 5).is_empty());
    }

    #[test]
    fn hostile_queries_are_just_text() {
        let idx = Bm25::in_memory().unwrap();
        idx.apply(&[], &chunks(&[], "a.md", "# A\nchurn\n"))
            .unwrap();
        for q in ["title:(( AND OR \" ~ ^ \u{0}", "", "acl:*", "id:a.md*"] {
            let hits = idx.search(q, &[], 5);
            assert!(hits.iter().all(|(id, _)| id == "a.md#a"), "{q}: {hits:?}");
        }
        assert!(idx.search(&"churn ".repeat(10_000), &[], 5).len() <= 1);
    }
}
