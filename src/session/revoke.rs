//! Ending sessions: by id, user, identity-provider session (`sid`) or
//! subject (`sub`). Effective on the next request on every instance, since
//! [`SessionStore::authenticate`] reads the database each time.

use super::{SessionError, SessionStore};

impl SessionStore {
    /// Revokes one session by id. Returns whether a live one was revoked.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke(&self, id: &str, reason: &str, now: i64) -> Result<bool, SessionError> {
        Ok(self.revoke_where("id", id, reason, now).await? > 0)
    }

    /// Revokes every live session of a user, forgets the user's directory
    /// entry (so Slack stops recognising them until they sign in again) and
    /// clears their history. Returns how many sessions.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke_user(
        &self,
        user: &str,
        reason: &str,
        now: i64,
    ) -> Result<u64, SessionError> {
        self.forget_identity(user).await?;
        self.clear_history(user).await?;
        self.revoke_where("user_id", user, reason, now).await
    }

    /// Revokes the sessions of an identity-provider session (`sid`), as
    /// back-channel logout asks. Returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke_sid(&self, sid: &str, reason: &str, now: i64) -> Result<u64, SessionError> {
        self.revoke_where("idp_sid", sid, reason, now).await
    }

    /// Revokes every session of an identity-provider subject and forgets its
    /// directory entry. Returns how many sessions.
    ///
    /// # Errors
    /// Database failures.
    pub async fn revoke_sub(&self, sub: &str, reason: &str, now: i64) -> Result<u64, SessionError> {
        self.forget_identity(sub).await?;
        self.revoke_where("idp_sub", sub, reason, now).await
    }

    async fn revoke_where(
        &self,
        column: &'static str,
        value: &str,
        reason: &str,
        now: i64,
    ) -> Result<u64, SessionError> {
        let reason: String = reason.chars().take(200).collect();
        let done = sqlx::query(self.sql(&format!(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE {column} = $3 AND revoked_at IS NULL"
        )))
        .bind(now)
        .bind(reason)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
