//! Re-validation bookkeeping: one instance at a time claims a session whose
//! roles are due for re-validation, redeems its refresh token, and records
//! what the provider said (migration 0003). The exchange itself is
//! [`crate::auth::revalidate`].

use sqlx::Row;

use super::{Session, SessionError, SessionStore, names_json, seal};

/// The outcome of claiming a session for re-validation.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Another request (on any instance) is re-validating it, or it ended.
    Lost,
    /// Claimed, but the session has no refresh token it can open.
    NoToken,
    /// Claimed, with the refresh token in clear.
    Token(String),
}

impl SessionStore {
    /// Claims `session` for re-validation at `now`, if no other request has
    /// since its `validated_at` was read; opens its refresh token with the
    /// cookie token.
    ///
    /// # Errors
    /// Database failures.
    pub async fn claim_refresh(
        &self,
        session: &Session,
        cookie_token: &str,
        now: i64,
    ) -> Result<Claim, SessionError> {
        let claimed = sqlx::query(self.sql(
            "UPDATE sessions SET validated_at = $1 WHERE id = $2 AND COALESCE(validated_at, created_at) = $3 AND revoked_at IS NULL",
        ))
        .bind(now)
        .bind(&session.id)
        .bind(session.validated_at)
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(Claim::Lost);
        }
        let row = sqlx::query(self.sql("SELECT refresh_token FROM sessions WHERE id = $1"))
            .bind(&session.id)
            .fetch_one(&self.pool)
            .await?;
        let sealed: Option<String> = row.try_get("refresh_token")?;
        Ok(sealed
            .and_then(|s| seal::open(cookie_token, &session.id, &s))
            .map_or(Claim::NoToken, Claim::Token))
    }

    /// Gives a claim back after the provider could not be reached, so the
    /// next request tries again.
    ///
    /// # Errors
    /// Database failures.
    pub async fn release_refresh(
        &self,
        session: &Session,
        claimed_at: i64,
    ) -> Result<(), SessionError> {
        sqlx::query(
            self.sql("UPDATE sessions SET validated_at = $1 WHERE id = $2 AND validated_at = $3"),
        )
        .bind(session.validated_at)
        .bind(&session.id)
        .bind(claimed_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records re-validated roles and groups (and a rotated refresh token).
    /// Returns the session as it now stands.
    ///
    /// # Errors
    /// Database failures.
    pub async fn apply_refresh(
        &self,
        session: &Session,
        cookie_token: &str,
        roles: Vec<String>,
        groups: Vec<String>,
        rotated: Option<&str>,
    ) -> Result<Session, SessionError> {
        let roles_json = names_json(&roles);
        let groups_json = names_json(&groups);
        let query = match rotated.and_then(|r| seal::seal(cookie_token, &session.id, r)) {
            Some(sealed) => sqlx::query(self.sql(
                "UPDATE sessions SET roles = $1, groups = $2, refresh_token = $3 WHERE id = $4",
            ))
            .bind(roles_json)
            .bind(groups_json)
            .bind(sealed),
            None => {
                sqlx::query(self.sql("UPDATE sessions SET roles = $1, groups = $2 WHERE id = $3"))
                    .bind(roles_json)
                    .bind(groups_json)
            }
        };
        query.bind(&session.id).execute(&self.pool).await?;
        Ok(Session {
            roles,
            groups,
            ..session.clone()
        })
    }
}
