//! Schema linking for text-to-SQL: which tables and columns a question is
//! about, the join keys between them, and the compact `CREATE TABLE` text
//! a small model is prompted with. Pure: the sampled values come from
//! [`SchemaSample`], read once through the guard by the orchestrator.
//!
//! Ranking follows the usual schema-linking signals (names, descriptions,
//! synonyms, and values the question mentions; cf. RESDSQL and
//! DIN-SQL's schema-linking step), with each column-name match weighted by
//! the inverse of how many tables share the word, so `name` or `id` does not
//! link every table. Join keys are the schema's declared `references:`, or,
//! for a database that declares none, inferred from names: a column shared
//! by two tables whose name ends in `id`, `code`, `no` or `key`, or
//! `<table>_id` against that table's `id`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::policy::ForeignKey;

/// Values sampled per table when the schema sample is read.
pub const SAMPLE_ROWS: usize = 200;
/// Distinct values read per categorical text column (the value index).
pub const MAX_VALUES: usize = 100;
/// Columns with at most this many distinct values in the sample count as categorical.
const CATEGORICAL: usize = 20;

/// What a column's sampled values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum ValueKind {
    /// Whole numbers only.
    Integer,
    /// Numbers, not all whole.
    Real,
    /// Text.
    Text,
    /// Not sampled (not public) or always null.
    #[default]
    Unknown,
}

/// One column's sample.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnValues {
    /// What the values look like.
    pub kind: ValueKind,
    /// Distinct non-null values seen, most frequent first (public text
    /// columns only; at most [`MAX_VALUES`]).
    pub values: Vec<String>,
    /// Whether `values` holds every distinct value (a categorical column).
    pub categorical: bool,
    /// Whether the sampled values (at least two, of any kind) were all
    /// distinct: a column that may be its table's key.
    pub unique: bool,
}

/// Sampled values of the public columns of every table, by lower-case
/// table then column name. Read under the catalogue grants (public columns,
/// no row filter), like the dimension catalogue.
#[derive(Debug, Clone, Default)]
pub struct SchemaSample {
    /// `table → column → values`.
    pub tables: BTreeMap<String, BTreeMap<String, ColumnValues>>,
    /// Embedding vectors of each table's and column's text ([`table_text`],
    /// [`column_text`]), by table; empty without an embedding model.
    pub vectors: BTreeMap<String, TableVectors>,
    /// The engine's declared types and keys ([`crate::warehouse::catalog`]).
    pub catalog: crate::warehouse::catalog::Catalog,
}

/// Unit embedding vectors of one table's text and of its columns' texts.
#[derive(Debug, Clone, Default)]
pub struct TableVectors {
    /// The table's text.
    pub table: Vec<f32>,
    /// Each column's text, by lower-case column name.
    pub columns: BTreeMap<String, Vec<f32>>,
}

/// How a table reads for the embedding model: its name as words, its
/// description and synonyms, and its column names as words.
pub fn table_text(name: &str, about: &str, columns: &[&str]) -> String {
    let cols: Vec<String> = columns.iter().map(|c| spaced(c)).collect();
    format!("{}: {about}. Columns: {}", spaced(name), cols.join(", "))
}

/// How a column reads for the embedding model: table and column names as
/// words, then its description and synonyms.
pub fn column_text(table: &str, column: &str, about: &str) -> String {
    format!("{} {}: {about}", spaced(table), spaced(column))
}

/// `singer_in_concert` → `singer in concert`, `IndepYear` → `indep year`.
fn spaced(name: &str) -> String {
    crate::text::name_words(name).join(" ")
}

/// Dot product; the cosine similarity of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl SchemaSample {
    /// Reads one table's sample rows (`columns` as selected, JSON values)
    /// into column kinds and distinct values.
    pub fn add_rows(&mut self, table: &str, columns: &[String], rows: &[Vec<serde_json::Value>]) {
        let entry = self.tables.entry(table.to_owned()).or_default();
        for (i, c) in columns.iter().enumerate() {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            let mut seen: BTreeSet<String> = BTreeSet::new();
            let (mut ints, mut reals, mut texts, mut present) = (0, 0, 0, 0);
            for v in rows.iter().filter_map(|r| r.get(i)) {
                if !v.is_null() {
                    present += 1;
                    seen.insert(v.to_string());
                }
                match v {
                    serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => ints += 1,
                    serde_json::Value::Number(_) => reals += 1,
                    serde_json::Value::String(s) => {
                        texts += 1;
                        *counts.entry(s.clone()).or_default() += 1;
                    }
                    _ => {}
                }
            }
            let kind = if texts > 0 {
                ValueKind::Text
            } else if reals > 0 {
                ValueKind::Real
            } else if ints > 0 {
                ValueKind::Integer
            } else {
                ValueKind::Unknown
            };
            let mut values: Vec<(String, usize)> = counts.into_iter().collect();
            values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let categorical = !values.is_empty()
                && values.len() <= CATEGORICAL
                && (values.len() < texts || texts < 4);
            entry.insert(
                c.to_ascii_lowercase(),
                ColumnValues {
                    kind,
                    values: values
                        .into_iter()
                        .map(|(v, _)| v)
                        .take(MAX_VALUES)
                        .collect(),
                    categorical,
                    unique: present >= 2 && seen.len() == present,
                },
            );
        }
    }

    /// Replaces a column's values by its full distinct list (the value index).
    pub fn set_values(&mut self, table: &str, column: &str, values: Vec<String>) {
        if let Some(c) = self
            .tables
            .get_mut(table)
            .and_then(|t| t.get_mut(&column.to_ascii_lowercase()))
        {
            c.categorical = values.len() < MAX_VALUES;
            c.values = values.into_iter().take(MAX_VALUES).collect();
        }
    }

    /// One column's sample, by lower-case table and column name.
    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnValues> {
        self.tables.get(table)?.get(column)
    }
}

/// A readable table as the linker sees it.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Lower-case name.
    pub name: String,
    /// Description and synonyms, as words.
    pub about: String,
    /// Readable columns: `(name, description and synonyms, masked, may
    /// the asker see its values)`.
    pub columns: Vec<ColumnInfo>,
}

#[cfg(test)]
impl TableInfo {
    /// A table of readable, unmasked columns with values shown and no
    /// descriptions (for tests).
    pub(crate) fn plain(name: &str, cols: &[&str]) -> TableInfo {
        TableInfo {
            name: name.into(),
            about: String::new(),
            columns: cols
                .iter()
                .map(|c| ColumnInfo {
                    name: (*c).into(),
                    about: String::new(),
                    masked: false,
                    show_values: true,
                })
                .collect(),
        }
    }
}

/// A readable column as the linker sees it.
#[derive(Debug, Clone)]
pub struct ColumnInfo {
    /// Lower-case name.
    pub name: String,
    /// Description and synonyms.
    pub about: String,
    /// Values come back masked, hashed or null for the asker.
    pub masked: bool,
    /// Sample values may be shown (a public column the asker reads in full).
    pub show_values: bool,
}

/// A table chosen for the prompt.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedTable {
    /// Table name.
    pub name: String,
    /// Link score (0 for tables added for a join path or as fallback).
    pub score: f64,
    /// Question values found in its columns: `(column, value)`.
    pub values: Vec<(String, String)>,
}

/// Words not worth linking on.
const STOP: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "being",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "each",
    "every",
    "find",
    "for",
    "from",
    "give",
    "had",
    "has",
    "have",
    "how",
    "i",
    "in",
    "into",
    "is",
    "it",
    "its",
    "list",
    "many",
    "me",
    "more",
    "most",
    "much",
    "my",
    "no",
    "not",
    "of",
    "on",
    "or",
    "other",
    "our",
    "out",
    "over",
    "per",
    "please",
    "return",
    "show",
    "so",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "total",
    "under",
    "up",
    "us",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "tell",
    "number",
    "count",
    "sum",
    "average",
    "avg",
    "mean",
    "different",
    "distinct",
    "order",
    "sorted",
    "sort",
    "descending",
    "ascending",
    "top",
    "least",
    "highest",
    "lowest",
    "maximum",
    "minimum",
    "max",
    "min",
    "greater",
    "less",
    "larger",
    "smaller",
    "same",
];

/// Lower-case word stems of `text`: split at anything not a letter or digit
/// (so `singer_id` and `Singer_ID` give `singer`, `id`) and at camel-case
/// humps, crudely singularised, stop words dropped.
pub fn stems(text: &str) -> Vec<String> {
    crate::text::words(text)
        .into_iter()
        .filter(|w| !STOP.contains(&w.as_str()))
        .collect()
}

/// Join keys between the readable tables: every declared key (the
/// policy's `references` and the engine's own foreign keys) between
/// readable columns, and for each other column a key inferred only when it
/// is unambiguous: the column names the unique key of exactly one other
/// table ([`names_key_of`]). A wrong key is worse than none (a model told
/// that a lookup table refers to its fact table writes every join
/// backwards), so a name that fits two tables, or a column unique on both
/// sides, gives no key.
pub fn join_keys(
    tables: &[TableInfo],
    declared: &[ForeignKey],
    sample: &SchemaSample,
) -> Vec<ForeignKey> {
    let mut keys = declared_keys(tables, declared, sample);
    let mut inferred = Vec::new();
    for from in tables {
        for c in &from.columns {
            if keys
                .iter()
                .any(|k| k.table == from.name && k.column == c.name)
            {
                continue;
            }
            let targets: Vec<ForeignKey> = tables
                .iter()
                .filter(|to| to.name != from.name)
                .filter_map(|to| names_key_of(from, &c.name, to, sample))
                .collect();
            if let [one] = targets.as_slice() {
                inferred.push(one.clone());
            }
        }
    }
    keys.extend(inferred);
    keys
}

/// The declared keys (the policy's `references` and the engine's own
/// foreign keys) whose both ends are readable columns of `tables`; a key to
/// a column the asker may not read is not shown, since it would name it.
pub fn declared_keys(
    tables: &[TableInfo],
    declared: &[ForeignKey],
    sample: &SchemaSample,
) -> Vec<ForeignKey> {
    let readable = |t: &str, c: &str| {
        tables
            .iter()
            .any(|x| x.name == t && x.columns.iter().any(|y| y.name == c))
    };
    let mut keys: Vec<ForeignKey> = declared
        .iter()
        .chain(sample.catalog.values().flat_map(|t| &t.foreign_keys))
        .filter(|k| readable(&k.table, &k.column) && readable(&k.ref_table, &k.ref_column))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The column of `t` that identifies its rows: its declared primary key
/// when that is one readable column (none when the declared key spans
/// several), else, when nothing is declared, a column named `id`,
/// `<stem>_id` or `<stem>id` (stem: the singular of the table's whole name,
/// so `singer_in_concert` has none) whose sampled values, if sampled, are
/// distinct.
fn unique_key<'a>(t: &'a TableInfo, sample: &SchemaSample) -> Option<&'a str> {
    if let Some(declared) = sample.catalog.get(&t.name)
        && !declared.primary_key.is_empty()
    {
        return match declared.primary_key.as_slice() {
            [only] => t
                .columns
                .iter()
                .find(|c| &c.name == only)
                .map(|c| c.name.as_str()),
            _ => None,
        };
    }
    let distinct = |c: &str| sample.column(&t.name, c).is_none_or(|v| v.unique);
    let stem = crate::text::singular(&t.name);
    let names = ["id".to_owned(), format!("{stem}_id"), format!("{stem}id")];
    names.iter().find_map(|n| {
        t.columns
            .iter()
            .find(|c| &c.name == n && distinct(n))
            .map(|c| c.name.as_str())
    })
}

/// The singular of a table's name and of its last word (`car_makers` →
/// `car_maker`, `maker`).
fn table_stems(name: &str) -> Vec<String> {
    let full = crate::text::singular(name);
    let last = crate::text::singular(name.rsplit('_').next().unwrap_or(name));
    if last == full {
        vec![full]
    } else {
        vec![full, last]
    }
}

/// `from.column` as a key to `to`, when its name names `to`'s unique key
/// `k` ([`unique_key`]): it is `k` itself (not a bare `id`, which every
/// table may have, and not `from`'s own unique key, since then both sides
/// are unique and the direction is unknown), `<stem>_<k>` or `<stem><k>`, or
/// the stem alone (`maker` for `car_makers.id`). Sampled kinds must agree,
/// so a text `name` never joins an integer key.
fn names_key_of(
    from: &TableInfo,
    column: &str,
    to: &TableInfo,
    sample: &SchemaSample,
) -> Option<ForeignKey> {
    let k = unique_key(to, sample)?;
    let own = unique_key(from, sample) == Some(column);
    let stems = table_stems(&to.name);
    let names_it = (column == k && k != "id" && !own)
        || stems.iter().any(|s| {
            column == format!("{s}_{k}") || column == format!("{s}{k}") || column == s.as_str()
        });
    if !names_it || from.columns.iter().all(|c| c.name != column) {
        return None;
    }
    let kind = |t: &TableInfo, c: &str| sample.column(&t.name, c).map(|v| v.kind);
    let agree = match (kind(from, column), kind(to, k)) {
        (Some(a), Some(b)) => a == b && a != ValueKind::Unknown,
        // A bare stem (`maker`) is a key only when both kinds are known.
        _ => stems.iter().all(|s| column != s.as_str()),
    };
    agree.then(|| key(&from.name, column, &to.name, k))
}

fn key(table: &str, column: &str, ref_table: &str, ref_column: &str) -> ForeignKey {
    ForeignKey {
        table: table.to_owned(),
        column: column.to_owned(),
        ref_table: ref_table.to_owned(),
        ref_column: ref_column.to_owned(),
    }
}

/// Whether `phrase` occurs in `haystack` as whole words (both lower case).
fn mentions(haystack: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = haystack[from..].find(phrase) {
        let start = from + i;
        let end = start + phrase.len();
        let before = haystack[..start].chars().next_back();
        let after = haystack[end..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        if boundary(before) && boundary(after) {
            return true;
        }
        from = start + phrase.len().max(1);
        while !haystack.is_char_boundary(from) {
            from += 1;
        }
    }
    false
}

/// Values of `column` the question names: longer values case- and
/// punctuation-insensitively as whole words (`The Rise of the Blue
/// Beetle!` for "the rise of the blue beetle"; `words` is the question
/// through [`crate::text::question_key`]), values of one or two characters exactly as
/// stored.
fn named_values<'a>(question: &str, words: &str, values: &'a [String]) -> Vec<&'a String> {
    values
        .iter()
        .filter(|v| {
            let v = v.trim();
            if v.chars().count() <= 2 {
                !v.is_empty() && v.chars().any(char::is_alphabetic) && mentions(question, v)
            } else {
                v.chars().any(char::is_alphabetic) && mentions(words, &crate::text::question_key(v))
            }
        })
        .collect()
}

/// Ranks the tables for `question` and returns those linked to it, plus the
/// tables on the join paths between them; all tables (in name order) when
/// nothing links.
pub fn link(
    question: &str,
    meaning: Option<&[f32]>,
    tables: &[TableInfo],
    keys: &[ForeignKey],
    sample: &SchemaSample,
) -> Vec<LinkedTable> {
    let q: BTreeSet<String> = stems(question).into_iter().collect();
    let plain = crate::text::question_key(question);
    // How many tables use each column word, for inverse weighting.
    let mut df: BTreeMap<String, usize> = BTreeMap::new();
    for t in tables {
        let words: BTreeSet<String> = t
            .columns
            .iter()
            .flat_map(|c| stems(&format!("{} {}", c.name, c.about)))
            .collect();
        for w in words {
            *df.entry(w).or_default() += 1;
        }
    }
    let mut linked: Vec<LinkedTable> = tables
        .iter()
        .map(|t| {
            let mut score = 0.0;
            for w in stems(&t.name) {
                if q.contains(&w) {
                    score += 2.0;
                }
            }
            let about: BTreeSet<String> = stems(&t.about).into_iter().collect();
            score += 0.5 * about.intersection(&q).count().min(3) as f64;
            let mut values = Vec::new();
            for c in &t.columns {
                let words: BTreeSet<String> = stems(&format!("{} {}", c.name, c.about))
                    .into_iter()
                    .collect();
                score += words
                    .intersection(&q)
                    .map(|w| 1.0 / df.get(w).copied().unwrap_or(1) as f64)
                    .sum::<f64>();
                if !c.show_values {
                    continue;
                }
                if let Some(cv) = sample.column(&t.name, &c.name) {
                    for v in named_values(question, &plain, &cv.values)
                        .into_iter()
                        .take(2)
                    {
                        values.push((c.name.clone(), v.clone()));
                        score += 2.0;
                    }
                }
            }
            score += meaning_score(meaning, t, sample);
            LinkedTable {
                name: t.name.clone(),
                score,
                values,
            }
        })
        .collect();
    linked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.name.cmp(&b.name))
    });
    let best = linked.first().map(|t| t.score).unwrap_or(0.0);
    if best <= 0.0 {
        linked.sort_by(|a, b| a.name.cmp(&b.name));
        return linked;
    }
    // Keep tables scoring at least a fifth of the best: weak incidental
    // matches (a shared column word) do not drag in every table.
    let mut chosen: Vec<LinkedTable> = linked
        .iter()
        .filter(|t| t.score > 0.0 && t.score >= best / 5.0)
        .cloned()
        .collect();
    // A question word that names a column or table only outside the chosen
    // tables ("names" of poker players, held by `people`) brings in the
    // best-scoring table that has it.
    let named: BTreeMap<&str, BTreeSet<String>> = tables
        .iter()
        .map(|t| {
            let words = std::iter::once(t.name.as_str())
                .chain(t.columns.iter().map(|c| c.name.as_str()))
                .flat_map(stems)
                .collect();
            (t.name.as_str(), words)
        })
        .collect();
    for w in &q {
        let has = |t: &LinkedTable| named.get(t.name.as_str()).is_some_and(|n| n.contains(w));
        if chosen.iter().any(has) {
            continue;
        }
        if let Some(t) = linked.iter().find(|t| has(t)) {
            chosen.push(t.clone());
        }
    }
    let rest: Vec<LinkedTable> = linked
        .into_iter()
        .filter(|t| !chosen.iter().any(|c| c.name == t.name))
        .collect();
    for extra in join_path_tables(&chosen, keys) {
        if let Some(t) = rest.iter().find(|t| t.name == extra) {
            chosen.push(LinkedTable {
                score: 0.0,
                ..t.clone()
            });
        }
    }
    chosen
}

/// Similarity below which meaning adds nothing to a table's link score.
const MEANING_FLOOR: f32 = 0.3;
/// Link score per unit of similarity above [`MEANING_FLOOR`].
const MEANING_WEIGHT: f64 = 10.0;

/// The part of a table's link score that comes from meaning: how far the
/// question's embedding is from the table's text or its nearest readable
/// column's (cosine of unit vectors), past [`MEANING_FLOOR`]. Catches
/// questions that name a table or column in other words ("employees" for
/// `staff`, "independent" for `IndepYear`). 0 without vectors.
fn meaning_score(question: Option<&[f32]>, t: &TableInfo, sample: &SchemaSample) -> f64 {
    let (Some(q), Some(v)) = (question, sample.vectors.get(&t.name)) else {
        return 0.0;
    };
    let best = t
        .columns
        .iter()
        .filter_map(|c| v.columns.get(&c.name))
        .map(|c| dot(q, c))
        .fold(dot(q, &v.table), f32::max);
    MEANING_WEIGHT * f64::from((best - MEANING_FLOOR).max(0.0))
}

/// Tables outside `chosen` on the shortest key paths joining the first
/// (best-linked) chosen table to each other one.
fn join_path_tables(chosen: &[LinkedTable], keys: &[ForeignKey]) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for k in keys {
        graph.entry(&k.table).or_default().insert(&k.ref_table);
        graph.entry(&k.ref_table).or_default().insert(&k.table);
    }
    let names: BTreeSet<&str> = chosen.iter().map(|t| t.name.as_str()).collect();
    let mut extra: Vec<String> = Vec::new();
    let Some(root) = chosen.first() else {
        return extra;
    };
    for target in chosen.iter().skip(1) {
        // Breadth-first from the root to the target.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([root.name.as_str()]);
        let mut seen = BTreeSet::from([root.name.as_str()]);
        while let Some(at) = queue.pop_front() {
            if at == target.name {
                break;
            }
            for next in graph.get(at).into_iter().flatten() {
                if seen.insert(next) {
                    prev.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        let mut at = target.name.as_str();
        while let Some(p) = prev.get(at) {
            if !names.contains(p) && !extra.iter().any(|e| e == p) {
                extra.push((*p).to_owned());
            }
            at = p;
        }
    }
    extra
}

/// How the statement `sql` can reach `target`, a table it does not read:
/// the joins along the shortest key path from one of its tables, as
/// `JOIN b ON a.x = b.y` text (names as the keys give them). `None` when
/// the statement does not parse as one statement, already reads `target`,
/// or no key path leads there. For a repair that tells the model why its
/// column was wrong and what reaches the table that has it.
pub fn join_hint(
    sql: &str,
    dialect: &dyn sqlparser::dialect::Dialect,
    keys: &[ForeignKey],
    target: &str,
) -> Option<String> {
    use sqlparser::ast::Visit;
    let statements = sqlparser::parser::Parser::parse_sql(dialect, sql).ok()?;
    let [statement] = statements.as_slice() else {
        return None;
    };
    let mut aliases = Aliases::default();
    let _ = statement.visit(&mut aliases);
    let reads: BTreeSet<String> = aliases.0.values().filter_map(|(_, t)| t.clone()).collect();
    if reads.is_empty() || reads.contains(target) {
        return None;
    }
    let mut edges: BTreeMap<&str, Vec<(&str, &ForeignKey)>> = BTreeMap::new();
    for k in keys {
        edges.entry(&k.table).or_default().push((&k.ref_table, k));
        edges.entry(&k.ref_table).or_default().push((&k.table, k));
    }
    // Breadth-first from every table the statement reads at once.
    let mut prev: BTreeMap<&str, (&str, &ForeignKey)> = BTreeMap::new();
    let mut seen: BTreeSet<&str> = reads.iter().map(String::as_str).collect();
    let mut queue: VecDeque<&str> = reads.iter().map(String::as_str).collect();
    while let Some(at) = queue.pop_front() {
        if at == target {
            break;
        }
        for (next, k) in edges.get(at).into_iter().flatten() {
            if seen.insert(next) {
                prev.insert(next, (at, k));
                queue.push_back(next);
            }
        }
    }
    let mut steps = Vec::new();
    let mut at = target;
    while let Some((from, k)) = prev.get(at) {
        steps.push(format!(
            "JOIN {at} ON {}.{} = {}.{}",
            k.table, k.column, k.ref_table, k.ref_column
        ));
        at = from;
    }
    steps.reverse();
    (!steps.is_empty()).then(|| steps.join(" "))
}

/// Collects `alias → (the alias as written, table)` (and the same for
/// unaliased tables, by their name) over every `FROM` of a statement, by
/// lower-case name; a name bound to two different tables maps to `None`.
#[derive(Default)]
struct Aliases(BTreeMap<String, (sqlparser::ast::Ident, Option<String>)>);

impl sqlparser::ast::Visitor for Aliases {
    type Break = ();

    fn pre_visit_table_factor(
        &mut self,
        factor: &sqlparser::ast::TableFactor,
    ) -> std::ops::ControlFlow<()> {
        if let sqlparser::ast::TableFactor::Table { name, alias, .. } = factor
            && let Some(table) = name.0.last().and_then(|p| p.as_ident())
        {
            let written = alias.as_ref().map_or(table, |a| &a.name).clone();
            let table = table.value.to_lowercase();
            let entry = self
                .0
                .entry(written.value.to_lowercase())
                .or_insert((written, Some(table.clone())));
            if entry.1.as_deref() != Some(table.as_str()) {
                entry.1 = None;
            }
        }
        std::ops::ControlFlow::Continue(())
    }
}

/// `sql` with every `alias.column` whose table has no such readable column
/// moved to the one other table of the statement that has it: small models
/// put a column on the wrong alias (`T2.course` where `T2` is
/// `course_arrange` and `T3` is `course`). `None` when nothing moved, when
/// the statement does not parse as one statement, or when the column's
/// home is ambiguous. Only names change; the result is a candidate like
/// any other and goes through the guard.
pub fn requalify(
    sql: &str,
    dialect: &dyn sqlparser::dialect::Dialect,
    tables: &[TableInfo],
) -> Option<String> {
    use sqlparser::ast::{Expr, Visit, visit_expressions_mut};
    let mut statements = sqlparser::parser::Parser::parse_sql(dialect, sql).ok()?;
    let [statement] = statements.as_mut_slice() else {
        return None;
    };
    let mut aliases = Aliases::default();
    let _ = statement.visit(&mut aliases);
    let has = |table: &str, column: &str| {
        tables
            .iter()
            .find(|t| t.name == table)
            .is_some_and(|t| t.columns.iter().any(|c| c.name == column))
    };
    let mut moved = false;
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::CompoundIdentifier(parts) = e
            && let [qualifier, column] = parts.as_mut_slice()
            && let Some((_, Some(table))) = aliases.0.get(&qualifier.value.to_lowercase())
        {
            let col = column.value.to_lowercase();
            if !has(table, &col) {
                // (bound name, as written, table) of the statement's tables with the column.
                let homes: Vec<(&String, &sqlparser::ast::Ident, &String)> = aliases
                    .0
                    .iter()
                    .filter_map(|(bound, (written, t))| Some((bound, written, t.as_ref()?)))
                    .filter(|(_, _, t)| has(t, &col))
                    .collect();
                let tables: BTreeSet<&String> = homes.iter().map(|h| h.2).collect();
                // One table has it; prefer its alias over its bare name.
                if tables.len() == 1
                    && let Some(home) = homes
                        .iter()
                        .find(|(bound, _, t)| bound != t)
                        .or(homes.first())
                {
                    *qualifier = home.1.clone();
                    moved = true;
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    moved.then(|| statement.to_string())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn table(name: &str, cols: &[&str]) -> TableInfo {
        TableInfo::plain(name, cols)
    }

    pub(in crate::orchestrator::sqlgen) fn concerts() -> Vec<TableInfo> {
        vec![
            table("singer", &["singer_id", "name", "country", "age"]),
            table(
                "concert",
                &["concert_id", "concert_name", "stadium_id", "year"],
            ),
            table("singer_in_concert", &["concert_id", "singer_id"]),
            table("stadium", &["stadium_id", "location", "name", "capacity"]),
        ]
    }

    #[test]
    fn stems_split_names_and_drop_stop_words() {
        assert_eq!(stems("Singer_ID"), ["singer", "id"]);
        assert_eq!(stems("HowManyCountries"), ["country"]);
        assert_eq!(
            stems("What are the names of the singers?"),
            ["name", "singer"]
        );
        assert_eq!(stems("status classes"), ["status", "class"]);
    }

    #[test]
    fn keys_are_inferred_from_names_when_none_are_declared() {
        let keys = join_keys(&concerts(), &[], &SchemaSample::default());
        let has = |t: &str, c: &str, r: &str| {
            keys.iter()
                .any(|k| k.table == t && k.column == c && k.ref_table == r)
        };
        assert!(has("singer_in_concert", "singer_id", "singer"), "{keys:?}");
        assert!(
            has("singer_in_concert", "concert_id", "concert"),
            "{keys:?}"
        );
        assert!(has("concert", "stadium_id", "stadium"), "{keys:?}");
        let orders = vec![
            table("customers", &["id", "name"]),
            table("orders", &["id", "customer_id", "total"]),
        ];
        let keys = join_keys(&orders, &[], &SchemaSample::default());
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(
            (
                keys[0].table.as_str(),
                keys[0].column.as_str(),
                keys[0].ref_column.as_str()
            ),
            ("orders", "customer_id", "id")
        );
        let declared = [key("orders", "customer_id", "customers", "id")];
        assert_eq!(
            join_keys(&orders, &declared, &SchemaSample::default()).len(),
            1
        );
    }

    #[test]
    fn a_question_links_its_tables_and_the_join_path_between_them() {
        let tables = concerts();
        let keys = join_keys(&tables, &[], &SchemaSample::default());
        let mut sample = SchemaSample::default();
        sample.add_rows(
            "singer",
            &["country".into()],
            &[
                vec!["France".into()],
                vec!["Netherlands".into()],
                vec!["France".into()],
            ],
        );
        let names = |q: &str| {
            let mut n: Vec<String> = link(q, None, &tables, &keys, &sample)
                .into_iter()
                .map(|t| t.name)
                .collect();
            n.sort();
            n
        };
        let france = names("How many singers are from France?");
        assert!(france.contains(&"singer".to_owned()), "{france:?}");
        assert!(!france.contains(&"stadium".to_owned()), "{france:?}");
        assert_eq!(
            names("Which singers performed at a concert in 2014?"),
            ["concert", "singer", "singer_in_concert"]
        );
        let capacity = names("What is the capacity of the stadium of each concert?");
        assert!(
            capacity.contains(&"concert".to_owned()) && capacity.contains(&"stadium".to_owned())
        );
        assert!(!capacity.contains(&"singer".to_owned()), "{capacity:?}");
        // Nothing links: every table, so the model still sees the schema.
        assert_eq!(names("zzz").len(), 4);
        let linked = link("singers from france", None, &tables, &keys, &sample);
        assert_eq!(
            linked[0].values,
            [("country".to_owned(), "France".to_owned())]
        );
    }

    #[test]
    fn meaning_links_a_table_named_in_other_words_but_only_past_the_floor() {
        let tables = vec![
            table("staff", &["staff_id", "full_name"]),
            table("stadium", &["stadium_id", "capacity"]),
        ];
        let keys = join_keys(&tables, &[], &SchemaSample::default());
        let unit = |x: f32, y: f32| {
            let n = (x * x + y * y).sqrt();
            vec![x / n, y / n]
        };
        let mut sample = SchemaSample::default();
        for (name, v) in [("staff", unit(1.0, 0.0)), ("stadium", unit(0.0, 1.0))] {
            sample.vectors.insert(
                name.into(),
                TableVectors {
                    table: v.clone(),
                    columns: BTreeMap::new(),
                },
            );
        }
        // "employees" shares no word with either table; its embedding is near `staff`.
        let q = unit(0.9, 0.1);
        let linked = link("How many employees?", Some(&q), &tables, &keys, &sample);
        assert_eq!(linked[0].name, "staff", "{linked:?}");
        assert!(linked.iter().all(|t| t.name != "stadium"), "{linked:?}");
        // Without vectors nothing links, so every table is shown.
        assert_eq!(
            link("How many employees?", None, &tables, &keys, &sample).len(),
            2
        );
        // A column's text counts too, for a readable column only.
        sample.vectors.get_mut("stadium").unwrap().table = unit(1.0, -1.0);
        sample
            .vectors
            .get_mut("stadium")
            .unwrap()
            .columns
            .insert("capacity".into(), unit(0.0, 1.0));
        let seats = unit(0.1, 0.9);
        let linked = link("How many seats?", Some(&seats), &tables, &keys, &sample);
        assert_eq!(linked[0].name, "stadium", "{linked:?}");
        let hidden = vec![
            table("staff", &["staff_id"]),
            table("stadium", &["stadium_id"]),
        ];
        let linked = link("How many seats?", Some(&seats), &hidden, &keys, &sample);
        assert_eq!(
            linked.len(),
            2,
            "nothing links on a column the asker cannot read"
        );
    }

    #[test]
    fn a_column_named_after_a_table_joins_its_key_when_the_kinds_agree() {
        let tables = vec![
            table("car_makers", &["id", "maker", "country"]),
            table("model_list", &["modelid", "maker", "model"]),
            table("countries", &["countryid", "countryname"]),
            table("car_names", &["makeid", "model", "make"]),
        ];
        let mut sample = SchemaSample::default();
        let ints = |n: i64| {
            (1..=n)
                .map(|i| vec![i.into(), i.into()])
                .collect::<Vec<_>>()
        };
        sample.add_rows("car_makers", &["id".into(), "country".into()], &ints(5));
        sample.add_rows("model_list", &["modelid".into(), "maker".into()], &ints(5));
        sample.add_rows("countries", &["countryid".into()], &ints(5));
        sample.add_rows(
            "car_makers",
            &["maker".into()],
            &[vec!["amc".into()], vec!["bmw".into()]],
        );
        sample.add_rows("car_names", &["makeid".into()], &ints(5));
        let keys = join_keys(&tables, &[], &sample);
        let has = |t: &str, c: &str, r: &str, rc: &str| {
            keys.iter().any(|k| {
                (
                    k.table.as_str(),
                    k.column.as_str(),
                    k.ref_table.as_str(),
                    k.ref_column.as_str(),
                ) == (t, c, r, rc)
            })
        };
        assert!(has("model_list", "maker", "car_makers", "id"), "{keys:?}");
        assert!(
            has("car_makers", "country", "countries", "countryid"),
            "{keys:?}"
        );
        // A name alone does not make a key: `car_makers.maker` is text and
        // the keys it is named after are integers.
        assert!(!keys.iter().any(|k| k.ref_table == "car_names"), "{keys:?}");
        assert!(
            !has("car_makers", "maker", "model_list", "modelid"),
            "{keys:?}"
        );
    }

    #[test]
    fn a_word_only_another_table_names_brings_that_table_in() {
        let tables = vec![
            table(
                "poker_player",
                &[
                    "poker_player_id",
                    "people_id",
                    "earnings",
                    "final_table_made",
                ],
            ),
            table("people", &["people_id", "name", "height"]),
            table("stadium", &["stadium_id", "capacity"]),
        ];
        let keys = join_keys(&tables, &[], &SchemaSample::default());
        let linked = link(
            "What are the names of poker players with earnings above 300000 and final tables made?",
            None,
            &tables,
            &keys,
            &SchemaSample::default(),
        );
        let names: Vec<&str> = linked.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["poker_player", "people"]);
    }

    #[test]
    fn a_column_on_the_wrong_alias_moves_to_the_one_table_that_has_it() {
        let tables = vec![
            table("teacher", &["teacher_id", "name"]),
            table("course_arrange", &["course_id", "teacher_id"]),
            table("course", &["course_id", "course"]),
        ];
        let d = sqlparser::dialect::SQLiteDialect {};
        let fixed = requalify(
            "SELECT T1.name, T2.course FROM teacher AS T1 JOIN course_arrange AS T2 ON T1.teacher_id = T2.teacher_id JOIN course AS T3 ON T2.course_id = T3.course_id",
            &d,
            &tables,
        );
        assert_eq!(
            fixed.as_deref(),
            Some(
                "SELECT T1.name, T3.course FROM teacher AS T1 JOIN course_arrange AS T2 ON T1.teacher_id = T2.teacher_id JOIN course AS T3 ON T2.course_id = T3.course_id"
            )
        );
        // Nothing to move, a column two tables have, a column no table in
        // the statement has, and text that is not one statement: unchanged.
        for sql in [
            "SELECT T1.name FROM teacher AS T1",
            "SELECT T1.course_id FROM teacher AS T1 JOIN course_arrange AS T2 ON 1 = 1 JOIN course AS T3 ON 1 = 1",
            "SELECT T1.course FROM teacher AS T1",
            "SELECT 1; SELECT 2",
            "not sql",
        ] {
            assert_eq!(requalify(sql, &d, &tables), None, "{sql}");
        }
        // An alias bound to two tables in different scopes is left alone.
        let two = "SELECT T1.course FROM teacher AS T1 WHERE EXISTS (SELECT 1 FROM course AS T1)";
        assert_eq!(requalify(two, &d, &tables), None);
        // A column the asker may not read is no home for it.
        let hidden = vec![
            table("teacher", &["teacher_id", "name"]),
            table("course", &["course_id"]),
        ];
        let sql = "SELECT t.course FROM teacher t JOIN course c ON 1 = 1";
        assert_eq!(requalify(sql, &d, &hidden), None);
    }

    #[test]
    fn names_read_as_words_for_the_embedding_model() {
        assert_eq!(
            table_text(
                "singer_in_concert",
                "who sang where",
                &["IndepYear", "Singer_ID"]
            ),
            "singer in concert: who sang where. Columns: indep year, singer id"
        );
        assert_eq!(column_text("cars_data", "MPG", ""), "cars data mpg: ");
    }

    #[test]
    fn short_values_must_match_exactly_and_long_ones_as_whole_words() {
        let values = vec!["US".to_owned(), "Franc".to_owned(), "France".to_owned()];
        let q = "Revenue in the US from France";
        let got = named_values(q, &crate::text::question_key(q), &values);
        assert_eq!(got, [&values[0], &values[2]]);
        let q = "us and friends";
        assert!(named_values(q, q, &values).is_empty());
        let titles = vec![
            "The Rise of the Blue Beetle!".to_owned(),
            "Beetle".to_owned(),
        ];
        let q = "Which channel shows \"The Rise of the Blue Beetle\"?";
        assert_eq!(
            named_values(q, &crate::text::question_key(q), &titles).len(),
            2
        );
        let q = "Which channel shows the rise of the blue beetles?";
        assert!(named_values(q, &crate::text::question_key(q), &titles).is_empty());
    }
}
