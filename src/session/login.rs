//! Sign-ins in progress (authorization code flow): recorded at redirect,
//! taken once by the callback (`login_attempts`, migration 0002).

use sqlx::Row;

use super::{SessionError, SessionStore, digest};

/// How long a sign-in may take, from redirect to callback (seconds).
pub const LOGIN_ATTEMPT_SECS: i64 = 600;

/// A sign-in in progress: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The OAuth `state` sent to the provider (stored hashed).
    pub state: String,
    /// The OpenID Connect `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636).
    pub pkce_verifier: String,
    /// Where to send the user afterwards (a local path).
    pub return_to: String,
}

impl SessionStore {
    /// Records a sign-in in progress under its `state`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_login(&self, attempt: &LoginAttempt, now: i64) -> Result<(), SessionError> {
        sqlx::query(self.sql(
            "INSERT INTO login_attempts (state_hash, nonce, pkce_verifier, return_to, created_at) VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(digest(&attempt.state))
        .bind(&attempt.nonce)
        .bind(&attempt.pkce_verifier)
        .bind(&attempt.return_to)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes the sign-in in progress named by `state` (once: a second call
    /// finds nothing); `None` when unknown or older than [`LOGIN_ATTEMPT_SECS`].
    ///
    /// # Errors
    /// Database failures.
    pub async fn take_login(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<LoginAttempt>, SessionError> {
        if state.is_empty() || state.len() > 512 {
            return Ok(None);
        }
        let hash = digest(state);
        let row = sqlx::query(self.sql(
            "SELECT nonce, pkce_verifier, return_to, created_at FROM login_attempts WHERE state_hash = $1",
        ))
        .bind(&hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let taken = sqlx::query(self.sql("DELETE FROM login_attempts WHERE state_hash = $1"))
            .bind(&hash)
            .execute(&self.pool)
            .await?;
        let created_at: i64 = row.try_get("created_at")?;
        if taken.rows_affected() != 1 || now - created_at > LOGIN_ATTEMPT_SECS {
            return Ok(None);
        }
        Ok(Some(LoginAttempt {
            state: state.to_owned(),
            nonce: row.try_get("nonce")?,
            pkce_verifier: row.try_get("pkce_verifier")?,
            return_to: row.try_get("return_to")?,
        }))
    }
}
