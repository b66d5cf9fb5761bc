//! The database's own description of its tables: declared column types,
//! primary keys and foreign keys, read from the engine's catalogue
//! (SQLite's `pragma_table_info` and `pragma_foreign_key_list`,
//! <https://sqlite.org/pragma.html>; PostgreSQL's `information_schema`,
//! <https://www.postgresql.org/docs/current/information-schema.html>).
//!
//! Metadata only, never a row of data. The text-to-SQL prompt shows it
//! for the columns an asker may read, so a model sees the schema as the
//! database declares it.

use std::collections::BTreeMap;

use sqlx::Row;

use crate::policy::ForeignKey;

/// One table's declared structure. Keys and key columns are lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableCatalog {
    /// The table's name as declared (`AirLines`).
    pub name: String,
    /// Each column's name as declared, by lower-case name.
    pub names: BTreeMap<String, String>,
    /// Declared type of each column (`BIGINT`, `varchar(20)`) by lower-case
    /// name; a column declared without a type is absent.
    pub types: BTreeMap<String, String>,
    /// Primary-key columns in key order; empty when none is declared.
    pub primary_key: Vec<String>,
    /// Foreign keys declared on this table.
    pub foreign_keys: Vec<ForeignKey>,
}

/// Every table's declared structure by lower-case table name; empty when
/// the engine's catalogue cannot be read (the prompt then shows sampled
/// value kinds instead of declared types).
pub type Catalog = BTreeMap<String, TableCatalog>;

/// The catalogue of a SQLite database: tables and views of `main`.
///
/// # Errors
/// The [`sqlx::Error`] of a failed catalogue read.
pub async fn sqlite(pool: &sqlx::SqlitePool) -> Result<Catalog, sqlx::Error> {
    let mut out = Catalog::new();
    let columns = sqlx::query(
        "SELECT m.name, p.name, p.type, p.pk FROM sqlite_schema AS m, pragma_table_info(m.name) AS p \
         WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.pk, p.cid",
    )
    .fetch_all(pool)
    .await?;
    for row in columns {
        let (table, column, declared, pk): (String, String, String, i64) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        let entry = out.entry(table.to_lowercase()).or_default();
        entry.name.clone_from(&table);
        let lower = column.to_lowercase();
        entry.names.insert(lower.clone(), column);
        let column = lower;
        if !declared.trim().is_empty() {
            entry
                .types
                .insert(column.clone(), declared.trim().to_owned());
        }
        if pk > 0 {
            entry.primary_key.push(column);
        }
    }
    let keys = sqlx::query(
        "SELECT m.name, f.\"from\", f.\"table\", f.\"to\" FROM sqlite_schema AS m, pragma_foreign_key_list(m.name) AS f \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, f.id, f.seq",
    )
    .fetch_all(pool)
    .await?;
    for row in keys {
        let (table, from, to_table, to): (String, String, String, Option<String>) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        let ref_table = to_table.to_lowercase();
        // A key naming no column refers to the referenced table's primary key.
        let ref_column = match to {
            Some(c) => c.to_lowercase(),
            None => match out.get(&ref_table).and_then(|t| t.primary_key.first()) {
                Some(c) => c.clone(),
                None => continue,
            },
        };
        let table = table.to_lowercase();
        out.entry(table.clone())
            .or_default()
            .foreign_keys
            .push(ForeignKey {
                table,
                column: from.to_lowercase(),
                ref_table,
                ref_column,
            });
    }
    Ok(out)
}

/// The catalogue of the tables and views a PostgreSQL connection sees on
/// its search path (the first schema holding a name wins, as in a query).
///
/// # Errors
/// The [`sqlx::Error`] of a failed catalogue read.
pub async fn postgres(pool: &sqlx::PgPool) -> Result<Catalog, sqlx::Error> {
    let mut out = Catalog::new();
    let mut schema_of: BTreeMap<String, String> = BTreeMap::new();
    let columns = sqlx::query(
        "SELECT table_schema::text, table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = ANY (current_schemas(false)) \
         ORDER BY array_position(current_schemas(false), table_schema::name), table_name, ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    for row in columns {
        let (schema, table, column, declared): (String, String, String, String) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        // Only the first schema's table of a name is the one queries read.
        if *schema_of
            .entry(table.to_lowercase())
            .or_insert_with(|| schema.clone())
            != schema
        {
            continue;
        }
        let entry = out.entry(table.to_lowercase()).or_default();
        entry.name.clone_from(&table);
        let lower = column.to_lowercase();
        entry.names.insert(lower.clone(), column);
        entry.types.insert(lower, declared);
    }
    let seen = |schema: &str, table: &str| schema_of.get(table).is_some_and(|s| s == schema);
    let primary = sqlx::query(
        "SELECT tc.table_schema::text, tc.table_name::text, k.column_name::text \
         FROM information_schema.table_constraints AS tc \
         JOIN information_schema.key_column_usage AS k \
           ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name \
         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = ANY (current_schemas(false)) \
         ORDER BY tc.table_name, k.ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    for row in primary {
        let (schema, table, column): (String, String, String) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let table = table.to_lowercase();
        if seen(&schema, &table)
            && let Some(entry) = out.get_mut(&table)
        {
            entry.primary_key.push(column.to_lowercase());
        }
    }
    // Each referring column is paired with the referenced column at its
    // position in the referenced key (composite keys stay paired).
    let foreign = sqlx::query(
        "SELECT k.table_schema::text, k.table_name::text, k.column_name::text, u.table_name::text, u.column_name::text \
         FROM information_schema.referential_constraints AS rc \
         JOIN information_schema.key_column_usage AS k \
           ON k.constraint_schema = rc.constraint_schema AND k.constraint_name = rc.constraint_name \
         JOIN information_schema.key_column_usage AS u \
           ON u.constraint_schema = rc.unique_constraint_schema AND u.constraint_name = rc.unique_constraint_name \
          AND u.ordinal_position = k.position_in_unique_constraint \
         WHERE k.table_schema = ANY (current_schemas(false)) \
         ORDER BY k.table_name, k.constraint_name, k.ordinal_position",
    )
    .fetch_all(pool)
    .await?;
    for row in foreign {
        let (schema, table, column, ref_table, ref_column): (
            String,
            String,
            String,
            String,
            String,
        ) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        );
        let table = table.to_lowercase();
        if seen(&schema, &table)
            && let Some(entry) = out.get_mut(&table)
        {
            entry.foreign_keys.push(ForeignKey {
                table: table.clone(),
                column: column.to_lowercase(),
                ref_table: ref_table.to_lowercase(),
                ref_column: ref_column.to_lowercase(),
            });
        }
    }
    Ok(out)
}
