//! Identity: who is asking. Dev identities from configuration (named by the
//! `X-Steward-Dev-User` header or chosen in the web chat's picker, loopback
//! binds only), and the OpenID Provider: web sign-in ([`sso`]), session
//! re-validation ([`revalidate`]), bearer tokens ([`access_token`]),
//! back-channel logout ([`logout_token`]), groups → roles ([`identity_map`]).

pub mod access_token;
pub mod identity_map;
pub mod jwt;
pub mod logout_token;
pub mod oidc;
pub mod revalidate;
pub mod sso;

use std::collections::BTreeMap;

use crate::policy::{Policy, Principal};

/// The header naming a dev user.
pub const DEV_USER_HEADER: &str = "x-steward-dev-user";

/// Dev identities: user name → (roles the policy defines, every configured name).
#[derive(Debug, Clone)]
pub struct DevIdentities {
    users: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

impl DevIdentities {
    /// Builds the table. Names the policy does not define as roles are kept
    /// only as groups (for document ACLs) and logged (a dev user set written
    /// for one policy directory may name roles another lacks); they grant no
    /// data access. A user with no known role has no principal.
    pub fn new(users: &BTreeMap<String, Vec<String>>, policy: &Policy) -> Self {
        let mut table = BTreeMap::new();
        for (user, roles) in users {
            let known: Vec<String> = roles
                .iter()
                .filter(|r| policy.roles.contains_key(*r))
                .cloned()
                .collect();
            for r in roles.iter().filter(|r| !policy.roles.contains_key(*r)) {
                tracing::info!(user = %user, group = %r, "dev user name is not a role in roles.yaml; kept as a group for document ACLs only");
            }
            if !known.is_empty() {
                table.insert(user.clone(), (known, roles.clone()));
            }
        }
        DevIdentities { users: table }
    }

    /// The principal for a user name, if configured.
    pub fn principal(&self, user: &str) -> Option<Principal> {
        self.users.get(user).map(|(roles, groups)| Principal {
            user: user.to_owned(),
            roles: roles.clone(),
            groups: groups.clone(),
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
        let a = ids.principal("a").unwrap();
        assert_eq!(a.roles, vec!["analyst"]);
        assert_eq!(a.acl_groups(), vec!["analyst", "superuser"]);
        assert!(ids.principal("z").is_none());
    }
}
