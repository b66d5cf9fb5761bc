//! Access policy: the schema allow-list, column classes, roles and grants.
//!
//! Everything here is pure: a [`Policy`] is loaded once from `policies/`
//! (`schema.yaml`, `roles.yaml`) and then answers questions about a
//! [`Principal`] without I/O. The SQL guard (`crate::sql`) asks it whether a
//! table or column may be read; the orchestrator asks it what a principal may do.

mod load;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use load::{PolicyError, SourceFile};

/// Who is asking: a user name and the steward roles it holds.
///
/// Roles come from the dev identity table in configuration today and from the
/// identity provider's groups once single sign-on is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// Stable user identifier (a dev user name, later the OIDC `sub` or email).
    pub user: String,
    /// Role names as defined in `roles.yaml`.
    pub roles: Vec<String>,
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

/// What a role may do with a column class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The column may be read and used anywhere in a query.
    Allow,
    /// The column may not appear anywhere in a query.
    Deny,
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
    /// Allow-listed columns by name (lower case).
    pub columns: BTreeMap<String, ColumnDef>,
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
}

/// The effective rights of a principal: the union over its known roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The principal's user name, for explanations.
    pub user: String,
    /// The principal's role names, for explanations ("role analyst").
    pub roles: Vec<String>,
    capabilities: Vec<Capability>,
    allowed_classes: Vec<ColumnClass>,
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
            capabilities: vec![Capability::Metrics],
            allowed_classes: vec![ColumnClass::Public],
            audited: false,
        }
    }

    /// Whether the principal holds a capability.
    pub fn can(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// What the principal may do with a column class.
    pub fn access(&self, class: ColumnClass) -> Access {
        if self.allowed_classes.contains(&class) {
            Access::Allow
        } else {
            Access::Deny
        }
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
    /// Computes the effective grants of a principal. Role names the policy does
    /// not define grant nothing (start-up validation rejects them for dev users).
    pub fn grants(&self, principal: &Principal) -> Grants {
        let mut capabilities = Vec::new();
        let mut allowed_classes = Vec::new();
        let mut audited = false;
        for role in principal.roles.iter().filter_map(|r| self.roles.get(r)) {
            for c in &role.can {
                if !capabilities.contains(c) {
                    capabilities.push(*c);
                }
            }
            for (class, access) in &role.columns {
                if *access == Access::Allow && !allowed_classes.contains(class) {
                    allowed_classes.push(*class);
                }
            }
            audited |= role.audited;
        }
        Grants {
            user: principal.user.clone(),
            roles: principal.roles.clone(),
            capabilities,
            allowed_classes,
            audited,
        }
    }

    /// Tables and columns the grants may read, for `describe_schema`-style views:
    /// `(table, [(column, def)])`, denied columns left out.
    pub fn visible_schema(&self, grants: &Grants) -> Vec<(&str, Vec<(&str, &ColumnDef)>)> {
        self.schema
            .tables
            .iter()
            .map(|(t, def)| {
                let cols = def
                    .columns
                    .iter()
                    .filter(|(_, c)| grants.access(c.class) == Access::Allow)
                    .map(|(n, c)| (n.as_str(), c))
                    .collect();
                (t.as_str(), cols)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies"
        )))
        .expect("demo policies load")
    }

    fn who(roles: &[&str]) -> Principal {
        Principal {
            user: "u".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
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
