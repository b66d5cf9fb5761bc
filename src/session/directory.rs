//! What the identity provider last said about each user (`idp_users`,
//! migration 0003), written at sign-in and at every re-validation, and ids
//! seen recently (`seen_ids`), shared by all instances.
//!
//! The directory is how a Slack user becomes a principal: Slack's verified
//! email is looked up among users the provider vouched for (verified email)
//! recently enough. Revoking a user's sessions also removes their entry.

use sqlx::Row;

use super::{SessionError, SessionStore, digest, names_json, names_of};

/// A user as the identity provider last described them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// OpenID Connect subject.
    pub sub: String,
    /// Verified email (compared lower-cased).
    pub email: String,
    /// steward user id.
    pub user: String,
    /// Roles mapped from the provider's groups.
    pub roles: Vec<String>,
    /// Other groups.
    pub groups: Vec<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

impl DirectoryEntry {
    /// The principal the provider's last word makes of this user.
    pub fn into_principal(self) -> crate::policy::Principal {
        crate::policy::Principal {
            user: self.user,
            roles: self.roles,
            groups: self.groups,
        }
    }
}

/// A row of `idp_users` (all its columns selected).
fn entry_of(row: &sqlx::any::AnyRow) -> Result<DirectoryEntry, sqlx::Error> {
    let list = |col: &str| names_of(row, col);
    Ok(DirectoryEntry {
        sub: row.try_get("sub")?,
        email: row.try_get("email")?,
        user: row.try_get("user_id")?,
        roles: list("roles")?,
        groups: list("groups")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl SessionStore {
    /// Records (or replaces) what the provider said about `entry.sub`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_identity(&self, entry: &DirectoryEntry) -> Result<(), SessionError> {
        sqlx::query(self.sql(
            "INSERT INTO idp_users (sub, email, user_id, roles, groups, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (sub) DO UPDATE SET email = excluded.email, user_id = excluded.user_id, \
             roles = excluded.roles, groups = excluded.groups, updated_at = excluded.updated_at",
        ))
        .bind(&entry.sub)
        .bind(entry.email.to_lowercase())
        .bind(&entry.user)
        .bind(names_json(&entry.roles))
        .bind(names_json(&entry.groups))
        .bind(entry.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The entry for a verified email, if exactly one subject holds it and it
    /// was updated after `not_before` (Unix seconds).
    ///
    /// # Errors
    /// Database failures.
    pub async fn identity_by_email(
        &self,
        email: &str,
        not_before: i64,
    ) -> Result<Option<DirectoryEntry>, SessionError> {
        let rows = sqlx::query(self.sql(
            "SELECT sub, email, user_id, roles, groups, updated_at FROM idp_users WHERE email = $1",
        ))
        .bind(email.trim().to_lowercase())
        .fetch_all(&self.pool)
        .await?;
        // Two subjects claiming one email is ambiguous: refuse rather than guess.
        let [row] = rows.as_slice() else {
            return Ok(None);
        };
        let entry = entry_of(row)?;
        Ok((entry.updated_at >= not_before).then_some(entry))
    }

    /// The most recent entry for steward user `user`, whatever its age.
    ///
    /// # Errors
    /// Database failures.
    pub async fn identity_by_user(
        &self,
        user: &str,
    ) -> Result<Option<DirectoryEntry>, SessionError> {
        let row = sqlx::query(self.sql(
            "SELECT sub, email, user_id, roles, groups, updated_at FROM idp_users WHERE user_id = $1 \
             ORDER BY updated_at DESC LIMIT 1",
        ))
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(entry_of).transpose()?)
    }

    /// Removes the directory entries of a user or subject. Returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_identity(&self, user_or_sub: &str) -> Result<u64, SessionError> {
        let done = sqlx::query(self.sql("DELETE FROM idp_users WHERE user_id = $1 OR sub = $2"))
            .bind(user_or_sub)
            .bind(user_or_sub)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Whether `kind:id` is seen for the first time within `ttl_secs` (and now
    /// remembered), across every instance sharing this database.
    ///
    /// # Errors
    /// Database failures.
    pub async fn first_seen(
        &self,
        kind: &str,
        id: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, SessionError> {
        sqlx::query(self.sql("DELETE FROM seen_ids WHERE seen_at < $1"))
            .bind(now - ttl_secs)
            .execute(&self.pool)
            .await?;
        let done =
            sqlx::query(self.sql(
                "INSERT INTO seen_ids (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            ))
            .bind(digest(&format!("{kind}:{id}")))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
