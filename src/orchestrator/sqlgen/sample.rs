//! The schema sample: values of public columns and embedding vectors of
//! table and column texts, read once through the guard.

use std::collections::BTreeMap;

use super::link::{self, SchemaSample};
use crate::audit::scope::run_statement;
use crate::orchestrator::Orchestrator;
use crate::policy::{ColumnClass, Grants};
use crate::sql::{Origin, validate};
use crate::warehouse::ResultSet;

impl Orchestrator {
    /// The schema sample, read on first use: up to [`link::SAMPLE_ROWS`]
    /// rows of each table's public columns, then the distinct values of
    /// the columns that look categorical, all through the guard under the
    /// catalogue grants and the audit trail. Failures only shrink it.
    pub(in crate::orchestrator) async fn schema_sample(&self) -> &SchemaSample {
        self.samples
            .get_or_init(|| async {
                let mut sample = SchemaSample::default();
                let grants = Grants::catalog();
                let dialect = self.warehouse.dialect();
                for (table, def) in &self.policy.schema.tables {
                    let public: Vec<&String> = def
                        .columns
                        .iter()
                        .filter(|(_, c)| c.class == ColumnClass::Public)
                        .map(|(n, _)| n)
                        .collect();
                    if public.is_empty() {
                        continue;
                    }
                    let cols: Vec<String> =
                        public.iter().map(|c| dialect.quote_ident(c)).collect();
                    let sql = format!(
                        "SELECT {} FROM {} LIMIT {}",
                        cols.join(", "),
                        dialect.quote_ident(table),
                        link::SAMPLE_ROWS
                    );
                    let Some(rows) = self.catalog_read(&grants, &sql).await else {
                        continue;
                    };
                    let names: Vec<String> = public.iter().map(|c| (*c).clone()).collect();
                    sample.add_rows(table, &names, &rows.rows);
                    let categorical: Vec<String> = sample.tables[table.as_str()]
                        .iter()
                        .filter(|(_, v)| v.categorical && v.kind == link::ValueKind::Text)
                        .map(|(c, _)| c.clone())
                        .collect();
                    for c in categorical {
                        let col = dialect.quote_ident(&c);
                        let sql = format!(
                            "SELECT {col} FROM {} WHERE {col} IS NOT NULL GROUP BY {col} ORDER BY COUNT(*) DESC LIMIT {}",
                            dialect.quote_ident(table),
                            link::MAX_VALUES
                        );
                        if let Some(r) = self.catalog_read(&grants, &sql).await {
                            let values = r
                                .rows
                                .iter()
                                .filter_map(|row| row.first()?.as_str().map(str::to_owned))
                                .collect();
                            sample.set_values(table, &c, values);
                        }
                    }
                }
                sample.vectors = self.schema_vectors().await;
                sample.catalog = self.warehouse.catalog().await;
                tracing::info!(
                    tables = sample.tables.len(),
                    vectors = sample.vectors.len(),
                    "schema sample loaded"
                );
                sample
            })
            .await
    }

    /// Embedding vectors of every allow-listed table and column (names,
    /// descriptions, synonyms: no values), when the documentation search
    /// has an embedding model; empty otherwise, or when it fails (linking
    /// then goes by words alone).
    async fn schema_vectors(&self) -> BTreeMap<String, link::TableVectors> {
        let mut texts = Vec::new();
        let mut slots = Vec::new();
        for (table, def) in &self.policy.schema.tables {
            let names: Vec<&str> = def.columns.keys().map(String::as_str).collect();
            texts.push(link::table_text(
                table,
                &about(&def.description, &def.synonyms),
                &names,
            ));
            slots.push((table.clone(), None));
            for (c, d) in &def.columns {
                texts.push(link::column_text(
                    table,
                    c,
                    &about(&d.description, &d.synonyms),
                ));
                slots.push((table.clone(), Some(c.clone())));
            }
        }
        let vectors = match self.docs.embed(texts).await {
            Some(Ok(v)) => v,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "schema embedding failed; linking by words only");
                return BTreeMap::new();
            }
            None => return BTreeMap::new(),
        };
        let mut out: BTreeMap<String, link::TableVectors> = BTreeMap::new();
        for ((table, column), v) in slots.into_iter().zip(vectors) {
            let entry = out.entry(table).or_default();
            match column {
                Some(c) => {
                    entry.columns.insert(c, v);
                }
                None => entry.table = v,
            }
        }
        out
    }

    async fn catalog_read(&self, grants: &Grants, sql: &str) -> Option<ResultSet> {
        let validated = validate(
            sql,
            self.warehouse.dialect(),
            &self.policy,
            grants,
            Origin::Metric,
        )
        .ok()?;
        run_statement(&self.audit, &*self.warehouse, &validated, "schema sample")
            .await
            .ok()
    }
}

/// A table's or column's description and synonyms as one text, for
/// linking.
pub(super) fn about(description: &str, synonyms: &[String]) -> String {
    format!("{description} {}", synonyms.join(" "))
        .trim()
        .to_owned()
}
