//! The dimension catalogue: the distinct values of public categorical
//! dimensions, read through the guard and the audit trail, so the planner
//! recognises filter values ("on iOS", "in EMEA").

use std::collections::BTreeMap;

use super::{MAX_DIMENSION_VALUES, Orchestrator};
use crate::audit::scope::run_statement;
use crate::policy::Grants;
use crate::sql::{Origin, ValidatedSql, validate};

/// The dimension catalogue as saved by [`Orchestrator::load_dimension_values`].
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedCatalogue {
    key: String,
    values: BTreeMap<String, Vec<String>>,
}

impl Orchestrator {
    /// Reads the distinct values of every public categorical dimension with
    /// at most [`MAX_DIMENSION_VALUES`] values, under [`Grants::catalog`].
    /// Dimensions whose query the guard refuses (non-public columns) or
    /// that have more values are left out; failures only shrink the catalogue.
    ///
    /// With `saved` (a file), the catalogue is kept there under a key of the
    /// queries and the warehouse's data version, and read back instead of
    /// querying while both are unchanged (one-shot commands such as `ask`
    /// then skip the queries). Warehouses without a data version are always
    /// queried.
    pub async fn load_dimension_values(&mut self, saved: Option<&std::path::Path>) {
        let grants = Grants::catalog();
        // Dimensions whose query the guard refuses are left out.
        let queries: Vec<(String, ValidatedSql)> = self
            .semantic
            .dimension_value_queries(MAX_DIMENSION_VALUES)
            .into_iter()
            .filter_map(|(dim, sql)| {
                let dialect = self.warehouse.dialect();
                validate(&sql, dialect, &self.policy, &grants, Origin::Metric)
                    .ok()
                    .map(|v| (dim, v))
            })
            .collect();
        let key = self.warehouse.data_version().map(|version| {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(version.as_bytes());
            for (dim, validated) in &queries {
                h.update(b"\n");
                h.update(dim.as_bytes());
                h.update(b"\t");
                h.update(validated.sql().as_bytes());
            }
            hex::encode(h.finalize())
        });
        if let (Some(file), Some(key)) = (saved, &key)
            && let Ok(text) = std::fs::read_to_string(file)
            && let Ok(stored) = serde_json::from_str::<SavedCatalogue>(&text)
            && &stored.key == key
        {
            self.dimension_values = stored.values;
            tracing::info!(
                dimensions = self.dimension_values.len(),
                "dimension catalogue read from {}",
                file.display()
            );
            return;
        }
        self.query_dimension_values(queries).await;
        if let (Some(file), Some(key)) = (saved, key) {
            let stored = SavedCatalogue {
                key,
                values: self.dimension_values.clone(),
            };
            if let Ok(text) = serde_json::to_string(&stored)
                && std::fs::write(file, text).is_err()
            {
                tracing::debug!("dimension catalogue not saved");
            }
        }
    }

    async fn query_dimension_values(&mut self, queries: Vec<(String, ValidatedSql)>) {
        for (dim, validated) in queries {
            let Ok(result) = run_statement(
                &self.audit,
                &*self.warehouse,
                &validated,
                "dimension catalogue",
            )
            .await
            else {
                continue;
            };
            if result.rows.len() as u64 > MAX_DIMENSION_VALUES {
                continue;
            }
            let values = result
                .rows
                .iter()
                .filter_map(|r| r.first()?.as_str().map(str::to_owned))
                .collect();
            self.dimension_values.insert(dim, values);
        }
        tracing::info!(
            dimensions = self.dimension_values.len(),
            "dimension catalogue loaded"
        );
    }
}
