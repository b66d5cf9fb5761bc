//! The web chat's conversation history (`history`, migration 0005): per user,
//! the questions asked (redacted by [`crate::redact`]) with their
//! conversation and answer kind — never answers or rows, so the history is no
//! second copy of warehouse data. Revoking a user clears it.

use serde::Serialize;
use sqlx::Row;

use super::{SessionError, SessionStore};

/// One asked question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Asked {
    /// Conversation id (as the chat API uses it).
    pub conversation_id: String,
    /// The question, redacted.
    pub question: String,
    /// The answer kind it got.
    pub kind: String,
    /// Unix seconds.
    pub asked_at: i64,
}

/// Most questions kept per user (older ones are dropped as new ones come).
pub const MAX_HISTORY: i64 = 500;

impl SessionStore {
    /// Records that `user` asked `question` (redacted here) in `conversation`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn record_asked(
        &self,
        user: &str,
        conversation: &str,
        question: &str,
        kind: &str,
        now: i64,
    ) -> Result<(), SessionError> {
        sqlx::query(self.sql(
            "INSERT INTO history (id, user_id, conversation_id, question, kind, asked_at) VALUES ($1, $2, $3, $4, $5, $6)",
        ))
        .bind(crate::audit::new_id())
        .bind(user)
        .bind(conversation)
        .bind(crate::redact::redact(question).into_owned())
        .bind(kind)
        .bind(now)
        .execute(&self.pool)
        .await?;
        sqlx::query(self.sql(
            "DELETE FROM history WHERE user_id = $1 AND id NOT IN \
             (SELECT id FROM history WHERE user_id = $2 ORDER BY asked_at DESC, id LIMIT $3)",
        ))
        .bind(user)
        .bind(user)
        .bind(MAX_HISTORY)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `user`'s questions, newest first (at most `limit`).
    ///
    /// # Errors
    /// Database failures.
    pub async fn history(&self, user: &str, limit: i64) -> Result<Vec<Asked>, SessionError> {
        let rows = sqlx::query(self.sql(
            "SELECT conversation_id, question, kind, asked_at FROM history WHERE user_id = $1 \
             ORDER BY asked_at DESC, id DESC LIMIT $2",
        ))
        .bind(user)
        .bind(limit.clamp(1, MAX_HISTORY))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Asked {
                    conversation_id: r.try_get("conversation_id")?,
                    question: r.try_get("question")?,
                    kind: r.try_get("kind")?,
                    asked_at: r.try_get("asked_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(SessionError::from)
    }

    /// Deletes `user`'s history (and conversation state). Returns how many questions.
    ///
    /// # Errors
    /// Database failures.
    pub async fn clear_history(&self, user: &str) -> Result<u64, SessionError> {
        sqlx::query(self.sql("DELETE FROM conversations WHERE user_id = $1"))
            .bind(user)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(self.sql("DELETE FROM history WHERE user_id = $1"))
            .bind(user)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
