//! Access policy: the schema allow-list, column classes, roles and grants.
//!
//! Everything here is pure: a [`Policy`] is loaded once from `policies/`
//! (`schema.yaml`, `roles.yaml`) and then answers questions about a
//! [`Principal`] without I/O. The SQL guard (`crate::sql`) asks it whether a
//! table or column may be read; the orchestrator asks it what a principal may do.

pub mod enforce;
mod entity;
mod load;
pub mod propose;

use std::collections::BTreeMap;
use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use entity::ForeignKey;
pub(crate) use load::is_identifier;
pub(crate) use load::strip_location;
pub use load::{PolicyError, SourceFile};

/// Who is asking: a user name and the steward roles it holds.
///
/// Roles come from the dev identity table in configuration (dev mode), or
/// from the identity provider's groups through `policies/identity.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable user identifier (a dev user name, or the OIDC `sub`).
    pub user: String,
    /// Role names as defined in `roles.yaml`.
    pub roles: Vec<String>,
    /// Other groups the identity belongs to (a dev user's configured names
    /// that are not roles, later the identity provider's groups). Policy
    /// ignores them; document ACLs may name them.
    pub groups: Vec<String>,
}

impl Principal {
    /// The names a document ACL is matched against: roles, then other groups.
    pub fn acl_groups(&self) -> Vec<String> {
        let mut all = self.roles.clone();
        all.extend(
            self.groups
                .iter()
                .filter(|g| !self.roles.contains(g))
                .cloned(),
        );
        all
    }
}

/// Sensitivity class of a column, from `schema.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnClass {
    /// Safe for anyone who may run SQL.
    Public,
    /// Business-confidential, but not personal data.
    Sensitive,
    /// Personal data, including free text that may contain it.
    Pii,
}

impl fmt::Display for ColumnClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnClass::Public => "public",
            ColumnClass::Sensitive => "sensitive",
            ColumnClass::Pii => "PII",
        })
    }
}

/// What a role may do with a column class, from least to most permissive.
///
/// The masking actions rewrite every reference to the column (select list,
/// WHERE, JOIN, GROUP BY, ORDER BY, function arguments) so that filtering or
/// sorting on it cannot reveal the original value either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The column may not appear anywhere in a query.
    Deny,
    /// Every reference reads `NULL`.
    Null,
    /// Every reference reads a fixed mask (`'****'`, `NULL` stays `NULL`).
    Mask,
    /// Every reference reads a one-way hash of the value (PostgreSQL `md5`),
    /// so equal values still join and count; on SQLite, which has no hash
    /// function, the column is denied instead.
    Hash,
    /// The column may be read and used anywhere in a query.
    Allow,
}

/// A capability a role can hold (`can:` in `roles.yaml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    /// Query named metrics through the semantic layer.
    Metrics,
    /// Have ad-hoc SQL written and run (through the guard).
    Sql,
    /// Use admin endpoints.
    Admin,
    /// Review proposed verified queries (the data steward's queue): edit,
    /// approve or reject them.
    Steward,
}

/// One allow-listed column.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDef {
    /// Sensitivity class.
    pub class: ColumnClass,
    /// What the column holds, for people and prompts.
    #[serde(default)]
    pub description: String,
    /// Words people use for this column (lower case).
    #[serde(default)]
    pub synonyms: Vec<String>,
    /// The key this column refers to, as `table.column` (a foreign key). Row
    /// filters follow these keys: a row whose key points at a filtered-out
    /// row of the referenced table is filtered out too.
    #[serde(default)]
    pub references: Option<String>,
}

/// One allow-listed table.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// What one row is.
    #[serde(default)]
    pub description: String,
    /// Words people use for this table (lower case).
    #[serde(default)]
    pub synonyms: Vec<String>,
    /// Columns shown when rows are listed without naming columns.
    #[serde(default)]
    pub display: Vec<String>,
    /// Allow-listed columns by name (lower case), in the order the policy
    /// lists them (`policy init` writes the database's own column order),
    /// which is the order `SELECT *` expands to and prompts show.
    pub columns: IndexMap<String, ColumnDef>,
}

/// The schema allow-list: the only tables and columns steward may touch.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Tables by name (lower case).
    pub tables: BTreeMap<String, TableDef>,
}

impl Schema {
    /// Looks a table up case-insensitively.
    pub fn table(&self, name: &str) -> Option<(&str, &TableDef)> {
        let lower = name.to_ascii_lowercase();
        self.tables
            .get_key_value(&lower)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Looks a column up case-insensitively.
    pub fn column(&self, table: &str, column: &str) -> Option<&ColumnDef> {
        self.table(table)?
            .1
            .columns
            .get(&column.to_ascii_lowercase())
    }
}

/// One role from `roles.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Capabilities.
    #[serde(default)]
    pub can: Vec<Capability>,
    /// Access per column class; a class not named is denied.
    #[serde(default)]
    pub columns: BTreeMap<ColumnClass, Access>,
    /// Whether every data access by this role is audited in detail.
    #[serde(default)]
    pub audited: bool,
    /// Row filters: table → SQL predicate over that table's columns, e.g.
    /// `customers: "region = 'EMEA'"`. The guard replaces every read of the
    /// table with a filtered subquery, so no join, UNION or subquery escapes it.
    #[serde(default)]
    pub row_filters: BTreeMap<String, String>,
}

/// The loaded policy: schema allow-list, roles and execution limits.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Tables and columns steward may use.
    pub schema: Schema,
    /// Roles by name.
    pub roles: BTreeMap<String, RoleDef>,
    /// Upper bound on rows any statement returns (the LIMIT clamp).
    pub max_rows: u64,
    /// Statement timeout in milliseconds.
    pub statement_timeout_ms: u64,
    /// Keys between allow-listed tables (`references:` in `schema.yaml`, and
    /// the semantic models' entities), which row filters follow; changed only
    /// through [`Policy::add_foreign_keys`], which recomputes the filters.
    foreign_keys: Vec<ForeignKey>,
    /// Each role's row filters after following the keys: table → predicate.
    effective_filters: BTreeMap<String, BTreeMap<String, String>>,
}

/// The rights of one role: what a statement runs under.
///
/// A statement runs under exactly one role at a time (see [`Policy::grants`]),
/// so what it may read is never a mix of two roles' rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrants {
    /// The role's name (`roles.yaml`).
    pub role: String,
    capabilities: Vec<Capability>,
    class_access: BTreeMap<ColumnClass, Access>,
    /// Table → predicate after following keys (absent: all rows).
    row_filters: BTreeMap<String, String>,
}

impl RoleGrants {
    /// Whether the role holds a capability.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// What the role may do with a column class (unnamed classes: deny).
    pub fn access(&self, class: ColumnClass) -> Access {
        self.class_access
            .get(&class)
            .copied()
            .unwrap_or(Access::Deny)
    }

    /// The row filter on a table (lower-case name), keys followed, if any.
    pub fn row_filter(&self, table: &str) -> Option<&str> {
        self.row_filters.get(table).map(String::as_str)
    }

    /// "role analyst", for messages.
    pub fn phrase(&self) -> String {
        format!("role {}", self.role)
    }

    /// How much the role may read, for ordering: fewer filtered tables first,
    /// then more permissive column access.
    fn breadth(&self) -> (usize, std::cmp::Reverse<u32>) {
        let rank: u32 = self.class_access.values().map(|a| *a as u32).sum();
        (self.row_filters.len(), std::cmp::Reverse(rank))
    }
}

/// The rights of a principal: one [`RoleGrants`] per known role, broadest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The principal's user name, for explanations.
    pub user: String,
    /// The principal's role names, for explanations ("role analyst").
    pub roles: Vec<String>,
    /// Per known role, broadest first: what a statement may run under.
    scopes: Vec<RoleGrants>,
    /// Whether any of the roles is audited.
    pub audited: bool,
}

impl Grants {
    /// The grants steward itself uses to read the *catalogue*: the distinct
    /// values of public categorical dimensions, so the planner can recognise
    /// "iOS" or "EMEA" in a question. Metrics capability and the `public`
    /// class only: no sensitive or personal value ever enters the catalogue.
    pub fn catalog() -> Grants {
        Grants {
            user: "steward-catalog".into(),
            roles: vec!["catalog".into()],
            scopes: vec![RoleGrants {
                role: "catalog".into(),
                capabilities: vec![Capability::Metrics],
                class_access: BTreeMap::from([(ColumnClass::Public, Access::Allow)]),
                row_filters: BTreeMap::new(),
            }],
            audited: false,
        }
    }

    /// Every role's grants, broadest first.
    pub fn scopes(&self) -> &[RoleGrants] {
        &self.scopes
    }

    /// Whether any of the principal's roles holds a capability.
    pub fn can(&self, capability: Capability) -> bool {
        self.scopes.iter().any(|s| s.can(capability))
    }

    /// The roles holding `capability`, broadest first: the guard tries a
    /// statement under each in turn and runs it under the first that accepts it.
    pub fn scopes_for(&self, capability: Capability) -> impl Iterator<Item = &RoleGrants> {
        self.scopes.iter().filter(move |s| s.can(capability))
    }

    /// The most permissive access any role holding `sql` or `metrics` has to
    /// a class (unnamed classes: deny). For describing the schema; a single
    /// statement still gets one role's access.
    pub fn access(&self, class: ColumnClass) -> Access {
        self.scopes
            .iter()
            .map(|s| s.access(class))
            .max()
            .unwrap_or(Access::Deny)
    }

    /// The row filter on a table when every role that may run SQL filters it
    /// (the broadest role's predicate), for describing the schema.
    pub fn row_filter(&self, table: &str) -> Option<&str> {
        let mut sql = self.scopes_for(Capability::Sql).peekable();
        sql.peek()?;
        let mut first = None;
        for s in sql {
            let f = s.row_filter(table)?;
            first.get_or_insert(f);
        }
        first
    }

    /// "role analyst" / "roles analyst, admin" / "no role", for messages.
    pub fn roles_phrase(&self) -> String {
        match self.roles.len() {
            0 => "no role".to_owned(),
            1 => format!("role {}", self.roles[0]),
            _ => format!("roles {}", self.roles.join(", ")),
        }
    }
}

impl Policy {
    /// Computes the grants of a principal: one [`RoleGrants`] per role the
    /// policy defines, ordered broadest first (fewest filtered tables, then
    /// most permissive column access, then as listed).
    ///
    /// Roles are never merged. A statement runs under exactly one role: the
    /// first that holds the capability its origin needs and under which the
    /// guard accepts it. So a capability comes with the columns and rows of
    /// the role that grants it, and a role without `sql` (say `viewer`, which
    /// reads every region through metrics) never widens what ad-hoc SQL sees.
    /// Role names the policy does not define grant nothing (start-up
    /// validation rejects them for dev users).
    pub fn grants(&self, principal: &Principal) -> Grants {
        let mut scopes: Vec<RoleGrants> = Vec::new();
        let mut audited = false;
        for name in &principal.roles {
            let Some(role) = self.roles.get(name) else {
                continue;
            };
            if scopes.iter().any(|s| &s.role == name) {
                continue;
            }
            audited |= role.audited;
            scopes.push(RoleGrants {
                role: name.clone(),
                capabilities: role.can.clone(),
                class_access: role.columns.clone(),
                row_filters: self
                    .effective_filters
                    .get(name)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        // Stable: equal breadth keeps the principal's order.
        scopes.sort_by_key(RoleGrants::breadth);
        Grants {
            user: principal.user.clone(),
            roles: principal.roles.clone(),
            scopes,
            audited,
        }
    }

    /// Keys between allow-listed tables that row filters follow.
    pub fn foreign_keys(&self) -> &[ForeignKey] {
        &self.foreign_keys
    }

    /// The grants of one role by name, if the policy defines it.
    pub fn role_grants(&self, role: &str) -> Option<RoleGrants> {
        let grants = self.grants(&Principal {
            user: role.to_owned(),
            roles: vec![role.to_owned()],
            groups: Vec::new(),
        });
        grants.scopes.into_iter().next()
    }

    /// Every role at once (for checking that a statement names only
    /// allow-listed things, and for operator tools such as `steward eval`): a
    /// statement passes when some role accepts it.
    pub fn every_role(&self) -> Grants {
        self.grants(&Principal {
            user: "every-role".into(),
            roles: self.roles.keys().cloned().collect(),
            groups: Vec::new(),
        })
    }

    /// Tables and columns the grants may read (possibly masked), for
    /// `describe_schema`-style views: `(table, [(column, def)])`, denied
    /// columns left out.
    pub fn visible_schema(&self, grants: &Grants) -> Vec<(&str, Vec<(&str, &ColumnDef)>)> {
        self.schema
            .tables
            .iter()
            .map(|(t, def)| {
                let cols = def
                    .columns
                    .iter()
                    .filter(|(_, c)| grants.access(c.class) != Access::Deny)
                    .map(|(n, c)| (n.as_str(), c))
                    .collect();
                (t.as_str(), cols)
            })
            .collect()
    }
}

/// The demo policy in `policies/`, for unit tests.
#[cfg(test)]
pub(crate) fn demo_policy() -> Policy {
    Policy::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies"
    )))
    .expect("demo policies load")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        demo_policy()
    }

    fn who(roles: &[&str]) -> Principal {
        Principal {
            user: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn analyst_may_not_read_pii_but_compliance_may() {
        let p = policy();
        assert_eq!(
            p.grants(&who(&["analyst"])).access(ColumnClass::Pii),
            Access::Deny
        );
        assert_eq!(
            p.grants(&who(&["compliance"])).access(ColumnClass::Pii),
            Access::Allow
        );
        assert!(p.grants(&who(&["compliance"])).audited);
    }

    #[test]
    fn grants_are_the_union_of_roles() {
        let p = policy();
        let g = p.grants(&who(&["viewer", "admin"]));
        assert!(g.can(Capability::Sql) && g.can(Capability::Admin) && g.can(Capability::Metrics));
        assert_eq!(g.access(ColumnClass::Pii), Access::Deny);
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        let g = policy().grants(&who(&["superuser"]));
        assert!(!g.can(Capability::Metrics));
        assert_eq!(g.access(ColumnClass::Public), Access::Deny);
    }

    #[test]
    fn viewer_cannot_run_sql() {
        assert!(!policy().grants(&who(&["viewer"])).can(Capability::Sql));
    }

    #[test]
    fn visible_schema_hides_denied_columns() {
        let p = policy();
        let g = p.grants(&who(&["analyst"]));
        let schema = p.visible_schema(&g);
        let (_, customers) = schema.iter().find(|(t, _)| *t == "customers").unwrap();
        assert!(customers.iter().all(|(c, _)| *c != "contact_email"));
        assert!(customers.iter().any(|(c, _)| *c == "region"));
    }
}
