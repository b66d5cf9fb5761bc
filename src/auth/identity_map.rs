//! `policies/identity.yaml`: identity-provider groups and OAuth clients →
//! steward roles. Pure: loading validates that every role exists.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::policy::{Policy, Principal};

/// The file name inside the policy directory.
pub const FILE: &str = "identity.yaml";

/// Group and client → role tables.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IdentityMap {
    /// Provider group → roles.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// OAuth client id → roles.
    #[serde(default)]
    pub clients: BTreeMap<String, Vec<String>>,
}

impl IdentityMap {
    /// Reads `dir/identity.yaml`; a missing file is an empty map (nobody
    /// signs in with a role).
    ///
    /// # Errors
    /// `identity.yaml: reason` for malformed YAML or a role `roles.yaml` lacks.
    pub fn load(dir: &Path, policy: &Policy) -> Result<IdentityMap, String> {
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(IdentityMap::default()),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let map: IdentityMap =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for (kind, table) in [("group", &map.groups), ("client", &map.clients)] {
            for (name, roles) in table {
                if let Some(r) = roles.iter().find(|r| !policy.roles.contains_key(*r)) {
                    return Err(format!(
                        "{}: {kind} {name:?} maps to role {r:?}, which roles.yaml does not define",
                        path.display()
                    ));
                }
            }
        }
        Ok(map)
    }

    /// The principal of a user with these provider groups; `None` when no
    /// group grants a role.
    pub fn user(&self, user: &str, groups: &[String]) -> Option<Principal> {
        let mut roles: Vec<String> = Vec::new();
        for g in groups {
            for r in self.groups.get(g).into_iter().flatten() {
                if !roles.contains(r) {
                    roles.push(r.clone());
                }
            }
        }
        (!roles.is_empty()).then(|| Principal {
            user: user.to_owned(),
            roles,
            groups: groups.to_vec(),
        })
    }

    /// The principal of an OAuth client acting for itself; `None` when unlisted.
    pub fn client(&self, client_id: &str) -> Option<Principal> {
        let roles = self.clients.get(client_id).filter(|r| !r.is_empty())?;
        Some(Principal {
            user: format!("client:{client_id}"),
            roles: roles.clone(),
            groups: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"))).unwrap()
    }

    #[test]
    fn the_shipped_map_loads_and_maps_groups_and_clients() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies"));
        let map = IdentityMap::load(dir, &policy()).unwrap();
        let p = map
            .user("alice", &["data-analysts".into(), "book-club".into()])
            .unwrap();
        assert_eq!(p.roles, vec!["analyst"]);
        assert_eq!(
            p.acl_groups(),
            vec!["analyst", "data-analysts", "book-club"]
        );
        assert!(map.user("eve", &["book-club".into()]).is_none());
        assert!(map.user("eve", &[]).is_none());
        assert_eq!(map.client("steward-api").unwrap().roles, vec!["viewer"]);
        assert!(map.client("unknown").is_none());
    }

    #[test]
    fn unknown_roles_and_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "groups:\n  g: [superuser]\n").unwrap();
        let e = IdentityMap::load(dir.path(), &policy()).unwrap_err();
        assert!(e.contains("superuser"), "{e}");
        std::fs::write(dir.path().join(FILE), "grops:\n  g: [admin]\n").unwrap();
        assert!(IdentityMap::load(dir.path(), &policy()).is_err());
        std::fs::remove_file(dir.path().join(FILE)).unwrap();
        assert_eq!(
            IdentityMap::load(dir.path(), &policy()).unwrap(),
            IdentityMap::default()
        );
    }
}
