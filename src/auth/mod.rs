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
    /// Builds the table, checking every role exists in the policy.
    ///
    /// # Errors
    /// A message naming the user and the unknown role.
    pub fn new(users: &BTreeMap<String, Vec<String>>, policy: &Policy) -> Result<Self, String> {
        for (user, roles) in users {
            for r in roles {
                if !policy.roles.contains_key(r) {
                    return Err(format!(
                        "dev user {user} has role {r}, which roles.yaml does not define"
                    ));
                }
            }
        }
        Ok(DevIdentities {
            users: users.clone(),
        })
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
