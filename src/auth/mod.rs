//! Identity: who is asking. Today: dev identities from configuration, named
//! by the `X-Steward-Dev-User` header, allowed only on loopback binds.

use std::collections::BTreeMap;

use crate::policy::{Policy, Principal};

/// The header naming a dev user.
pub const DEV_USER_HEADER: &str = "x-steward-dev-user";

/// Dev identities: user name → roles.
#[derive(Debug, Clone)]
pub struct DevIdentities {
    users: BTreeMap<String, Vec<String>>,
}

impl DevIdentities {
    /// Builds the table. Roles the policy does not define are dropped with a
    /// warning (a dev user set written for one policy directory may name roles
    /// another lacks); dropping a role only ever removes access.
    pub fn new(users: &BTreeMap<String, Vec<String>>, policy: &Policy) -> Self {
        let mut table = BTreeMap::new();
        for (user, roles) in users {
            let known: Vec<String> = roles
                .iter()
                .filter(|r| policy.roles.contains_key(*r))
                .cloned()
                .collect();
            for r in roles.iter().filter(|r| !policy.roles.contains_key(*r)) {
                tracing::warn!(user = %user, role = %r, "dev user role is not defined in roles.yaml; ignored");
            }
            if !known.is_empty() {
                table.insert(user.clone(), known);
            }
        }
        DevIdentities { users: table }
    }

    /// The principal for a user name, if configured.
    pub fn principal(&self, user: &str) -> Option<Principal> {
        self.users.get(user).map(|roles| Principal {
            user: user.to_owned(),
            roles: roles.clone(),
        })
    }

    /// Configured user names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_the_policy_lacks_are_dropped_and_users_without_roles_vanish() {
        let policy = Policy::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/policies"
        )))
        .unwrap();
        let users = BTreeMap::from([
            (
                "a".to_owned(),
                vec!["analyst".to_owned(), "superuser".to_owned()],
            ),
            ("z".to_owned(), vec!["superuser".to_owned()]),
        ]);
        let ids = DevIdentities::new(&users, &policy);
        assert_eq!(ids.principal("a").unwrap().roles, vec!["analyst"]);
        assert!(ids.principal("z").is_none());
    }
}
