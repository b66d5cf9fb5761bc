//! The database enforces the same policy: the SQL that gives each steward
//! role a database role seeing only what the guard would let it see.
//!
//! For each steward role `r` (and steward's own catalogue reader) the
//! generated SQL creates:
//! - a role `steward_r` that cannot log in, and is granted nothing on the
//!   base tables;
//! - a schema `steward_r` holding one view per allow-listed table, with the
//!   role's columns only: allowed columns as they are, masked and hashed
//!   columns through the same expressions the guard writes, nulled columns as
//!   `NULL`, denied columns left out; and the role's row filter (keys
//!   followed) as the view's `WHERE`. PostgreSQL views are
//!   `security_barrier` (PostgreSQL manual, "Rules and Privileges"), Snowflake
//!   views `SECURE`, so no predicate a statement adds runs before the filter;
//! - `USAGE` on that schema and `SELECT` on its views for `steward_r`, and
//!   membership of `steward_r` for the login role steward connects as.
//!
//! With `enforce_in_database = true`, every statement runs `SET LOCAL ROLE
//! steward_r` and `SET LOCAL search_path = steward_r` for the role the guard
//! validated it under, so a statement the guard wrongly allowed still reads
//! only these views; a base table named by schema fails with a permission
//! error. Views rather than row-level security on the base tables: enabling
//! RLS on a warehouse table changes what every other reader and writer of it
//! sees (roles without a policy see no rows), and masking needs a view either
//! way. The view is the column-level grant: a column it leaves out cannot be
//! read through it.

use super::{Access, Grants, Policy, RoleGrants, load::is_identifier};
use crate::sql::Dialect;

/// The database role (and schema) steward switches to for a steward role.
pub fn database_role(role: &str) -> String {
    format!("steward_{role}")
}

/// Marks the schemas `steward policy apply` owns, so it never drops another.
const SCHEMA_COMMENT: &str = "managed by steward policy apply";

/// The SQL that makes `dialect`'s database enforce `policy`, for the tables
/// in `base_schema` and the login role `reader` (which is granted every
/// steward role so it can switch to them). Idempotent: re-applying replaces
/// the views (a schema steward did not create is never dropped).
///
/// # Errors
/// A role or schema name that is not a plain identifier, or a dialect other
/// than PostgreSQL or Snowflake.
pub fn statements(
    policy: &Policy,
    dialect: Dialect,
    base_schema: &str,
    reader: &str,
) -> Result<Vec<String>, String> {
    if dialect == Dialect::Sqlite {
        return Err(
            "SQLite has no roles; database enforcement needs PostgreSQL or Snowflake".into(),
        );
    }
    for name in [base_schema, reader] {
        if !is_identifier(name) {
            return Err(format!("{name:?} is not a plain identifier"));
        }
    }
    let mut scopes: Vec<RoleGrants> = Grants::catalog().scopes().to_vec();
    for role in policy.roles.keys() {
        if !is_identifier(role) {
            return Err(format!(
                "role {role:?} is not a plain identifier, so it cannot name a database role"
            ));
        }
        scopes.extend(policy.role_grants(role));
    }
    let q = |name: &str| dialect.quote_ident(name);
    let mut out = Vec::new();
    if dialect == Dialect::Postgres {
        // Filters name base tables unqualified; views bind them at creation.
        out.push(format!("SET LOCAL search_path = {}", q(base_schema)));
    }
    for scope in &scopes {
        let db_role = q(&database_role(&scope.role));
        let schema = db_role.clone();
        match dialect {
            Dialect::Postgres => {
                let role_lit = database_role(&scope.role);
                out.push(format!(
                    "DO $$ BEGIN \
                     IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role_lit}') THEN CREATE ROLE {db_role} NOLOGIN; END IF; \
                     IF EXISTS (SELECT FROM pg_namespace WHERE nspname = '{role_lit}' AND coalesce(obj_description(oid, 'pg_namespace'), '') <> '{SCHEMA_COMMENT}') THEN \
                     RAISE EXCEPTION 'schema {role_lit} exists and was not created by steward'; END IF; END $$"
                ));
                out.push(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
                out.push(format!("CREATE SCHEMA {schema}"));
                out.push(format!("COMMENT ON SCHEMA {schema} IS '{SCHEMA_COMMENT}'"));
                out.push(format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"));
                out.push(format!("GRANT USAGE ON SCHEMA {schema} TO {db_role}"));
            }
            Dialect::Snowflake => {
                out.push(format!("CREATE ROLE IF NOT EXISTS {db_role}"));
                out.push(format!(
                    "CREATE OR REPLACE SCHEMA {schema} COMMENT = '{SCHEMA_COMMENT}'"
                ));
                out.push(format!("GRANT USAGE ON SCHEMA {schema} TO ROLE {db_role}"));
            }
            Dialect::Sqlite => unreachable!("refused above"),
        }
        for (table, def) in &policy.schema.tables {
            let columns: Vec<String> = view_columns(scope, def, dialect)
                .into_iter()
                .map(|(_, expr)| expr)
                .collect();
            if columns.is_empty() {
                continue;
            }
            let filter = scope
                .row_filter(table)
                .map(|p| format!(" WHERE {p}"))
                .unwrap_or_default();
            let (create, barrier) = match dialect {
                Dialect::Snowflake => ("CREATE OR REPLACE SECURE VIEW", ""),
                _ => ("CREATE VIEW", " WITH (security_barrier)"),
            };
            out.push(format!(
                "{create} {schema}.{}{barrier} AS SELECT {} FROM {}.{}{filter}",
                q(table),
                columns.join(", "),
                q(base_schema),
                q(table)
            ));
        }
        match dialect {
            Dialect::Postgres => {
                out.push(format!(
                    "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {db_role}"
                ));
                out.push(format!(
                    "REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {db_role}",
                    q(base_schema)
                ));
                out.push(format!("GRANT {db_role} TO {}", q(reader)));
            }
            _ => {
                out.push(format!(
                    "GRANT SELECT ON ALL VIEWS IN SCHEMA {schema} TO ROLE {db_role}"
                ));
                out.push(format!("GRANT ROLE {db_role} TO ROLE {}", q(reader)));
            }
        }
    }
    Ok(out)
}

/// The select list of `scope`'s view of a table: `(column, expression AS
/// column)` for each column the role may read, masked, hashed or nulled as
/// the guard writes it; denied columns left out (and hashed ones on SQLite,
/// which has no hash function, as the guard denies them there).
fn view_columns(
    scope: &RoleGrants,
    def: &super::TableDef,
    dialect: Dialect,
) -> Vec<(String, String)> {
    let q = |name: &str| dialect.quote_ident(name);
    def.columns
        .iter()
        .filter_map(|(c, col)| {
            let name = q(c);
            let expr = match scope.access(col.class) {
                Access::Deny => return None,
                Access::Hash if dialect == Dialect::Sqlite => return None,
                Access::Allow => return Some((c.clone(), name)),
                Access::Null => "NULL".to_owned(),
                Access::Mask => format!("CASE WHEN {name} IS NULL THEN NULL ELSE '****' END"),
                Access::Hash => format!("md5(CAST({name} AS TEXT))"),
            };
            Some((c.clone(), format!("{expr} AS {name}")))
        })
        .collect()
}

/// One role's views on SQLite ([`sqlite_views`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleViews {
    /// The steward role (`catalog` for steward's own catalogue reader).
    pub role: String,
    /// One view per allow-listed table the role can read a column of.
    pub views: Vec<TableView>,
}

/// What one role may read of one table, as a view body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableView {
    /// The allow-listed table.
    pub table: String,
    /// The columns it exposes.
    pub columns: Vec<String>,
    /// Whether the role reads only some of its rows (a row filter).
    pub filtered: bool,
    /// `SELECT … FROM main."t" WHERE …`: the role's columns (masks applied)
    /// and rows (row filter, keys followed, every table named `main."t"`).
    pub select: String,
}

/// The view bodies that make SQLite enforce `policy`: per role (and
/// steward's catalogue reader), one per allow-listed table the role can read
/// a column of, holding the role's columns (masks applied) and rows (its row
/// filter with keys followed). Bodies name `main."t"`, which neither a view
/// nor a CTE can replace. The warehouse installs one role's views per
/// connection as `TEMP` views named like the tables, which SQLite resolves
/// before `main` (SQLite, "ATTACH DATABASE": temp is searched first), and
/// with an authorizer refuses every read that does not go through them
/// ([`crate::warehouse::SqliteWarehouse`]).
pub fn sqlite_views(policy: &Policy) -> Vec<RoleViews> {
    let d = Dialect::Sqlite;
    let main = |t: &str| format!("main.{}", d.quote_ident(t));
    let mut scopes: Vec<RoleGrants> = Grants::catalog().scopes().to_vec();
    for role in policy.roles.keys() {
        scopes.extend(policy.role_grants(role));
    }
    scopes
        .iter()
        .map(|scope| {
            let filters = policy.row_filters_spelled(&scope.role, &main);
            let views = policy
                .schema
                .tables
                .iter()
                .filter_map(|(table, def)| {
                    let columns = view_columns(scope, def, d);
                    if columns.is_empty() {
                        return None;
                    }
                    let filter = filters
                        .get(table)
                        .map(|p| format!(" WHERE {p}"))
                        .unwrap_or_default();
                    let list: Vec<&str> = columns.iter().map(|(_, e)| e.as_str()).collect();
                    Some(TableView {
                        table: table.clone(),
                        filtered: !filter.is_empty(),
                        select: format!("SELECT {} FROM {}{filter}", list.join(", "), main(table)),
                        columns: columns.into_iter().map(|(c, _)| c).collect(),
                    })
                })
                .collect();
            RoleViews {
                role: scope.role.clone(),
                views,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::policy::demo_policy as policy;

    #[test]
    fn each_role_gets_views_of_what_it_may_read() {
        let sql = statements(&policy(), Dialect::Postgres, "public", "reader").unwrap();
        let view = |role: &str, table: &str| {
            sql.iter()
                .find(|s| s.starts_with(&format!("CREATE VIEW \"steward_{role}\".\"{table}\"")))
                .cloned()
                .unwrap_or_else(|| panic!("no view {role}.{table}"))
        };
        let analyst = view("analyst", "customers");
        assert!(analyst.contains("\"region\"") && !analyst.contains("contact_email"));
        let support = view("support", "customers");
        assert!(support.contains("ELSE '****' END AS \"contact_email\""));
        assert!(!support.contains("company_name"), "{support}");
        let emea = view("analyst_emea", "support_tickets");
        assert!(
            emea.contains("WHERE") && emea.contains("region = 'EMEA'"),
            "{emea}"
        );
        assert!(
            sql.iter()
                .any(|s| s == "GRANT \"steward_analyst\" TO \"reader\"")
        );
        // The catalogue reader sees public columns only.
        assert!(!view("catalog", "customers").contains("company_name"));
    }

    #[test]
    fn sqlite_views_name_base_tables_by_schema() {
        let views = sqlite_views(&policy());
        let role = |r: &str| views.iter().find(|v| v.role == r).unwrap();
        let emea = role("analyst_emea");
        let tickets = emea
            .views
            .iter()
            .find(|v| v.table == "support_tickets")
            .unwrap();
        assert!(
            tickets.select.starts_with("SELECT ")
                && tickets
                    .select
                    .contains("FROM main.\"support_tickets\" WHERE")
                && tickets
                    .select
                    .contains("FROM main.\"customers\" WHERE (region = 'EMEA')"),
            "{}",
            tickets.select
        );
        assert!(
            !tickets.select.contains(" customers "),
            "{}",
            tickets.select
        );
        let customers = role("analyst")
            .views
            .iter()
            .find(|v| v.table == "customers")
            .unwrap();
        assert!(!customers.columns.contains(&"contact_email".to_owned()));
        let masked = role("support")
            .views
            .iter()
            .find(|v| v.table == "customers")
            .unwrap();
        assert!(
            masked
                .select
                .contains("ELSE '****' END AS \"contact_email\"")
        );
        assert!(
            role("catalog")
                .views
                .iter()
                .all(|v| !v.filtered && !v.select.contains("WHERE"))
        );
        assert!(tickets.filtered);
    }

    #[test]
    fn names_that_are_not_identifiers_are_refused() {
        assert!(statements(&policy(), Dialect::Postgres, "public", "x; DROP").is_err());
        assert!(statements(&policy(), Dialect::Sqlite, "main", "r").is_err());
        let sf = statements(&policy(), Dialect::Snowflake, "public", "steward").unwrap();
        assert!(
            sf.iter()
                .any(|s| s.starts_with("CREATE OR REPLACE SECURE VIEW \"STEWARD_ANALYST\""))
        );
    }
}
