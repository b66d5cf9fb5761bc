//! Conversations: per (user, conversation id) the last metric plan, so a
//! follow-up question can continue it, and the last [`MAX_TURNS`] questions
//! with the SQL that ran for them, for the language model's prompt.
//!
//! Kept in steward's database (`conversations`, migration 0006), so a
//! follow-up may reach any instance. Keys include the user, so one user can
//! never continue another's conversation. Only plans, questions and SQL are
//! kept — never answers or rows. Conversations unused for [`IDLE_DAYS`] are
//! forgotten; revoking a user forgets theirs. The store is a convenience: if
//! the database fails, the question is answered without its context (and
//! the failure is logged).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::planner::MetricPlan;
use crate::session::{SessionError, SessionStore};

/// Earlier turns remembered per conversation.
pub const MAX_TURNS: usize = 4;
/// Conversations unused this long are forgotten (days).
pub const IDLE_DAYS: i64 = 7;

/// One earlier turn: the question and the SQL that ran for it, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The question as asked.
    pub question: String,
    /// The validated SQL of the turn's main statement.
    pub sql: Option<String>,
    /// Whether the language model answered it.
    pub by_model: bool,
}

/// What a conversation remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    /// The last metric plan, for follow-ups.
    pub metric: Option<MetricPlan>,
    /// Earlier turns, oldest first.
    pub turns: VecDeque<Turn>,
}

/// Conversation state per (user, conversation id), in steward's database.
#[derive(Clone)]
pub struct ConversationStore {
    db: SessionStore,
}

impl ConversationStore {
    /// A store in `db`.
    pub fn new(db: SessionStore) -> ConversationStore {
        ConversationStore { db }
    }

    /// A user's conversation (empty when unknown, or when the database fails).
    pub async fn get(&self, user: &str, conversation: &str) -> Conversation {
        match self.load(user, conversation).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "conversation unavailable; answering without it");
                Conversation::default()
            }
        }
    }

    async fn load(&self, user: &str, conversation: &str) -> Result<Conversation, SessionError> {
        let row = sqlx::query(
            self.db
                .sql("SELECT state FROM conversations WHERE user_id = $1 AND conversation_id = $2"),
        )
        .bind(user)
        .bind(conversation)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Conversation::default());
        };
        let state: String = row.try_get("state")?;
        Ok(serde_json::from_str(&state).unwrap_or_default())
    }

    /// Remembers a turn. `metric` replaces the metric plan when `Some`
    /// (`Some(None)` forgets it: the turn was not about a metric).
    pub async fn record_turn(
        &self,
        user: &str,
        conversation: &str,
        turn: Turn,
        metric: Option<Option<MetricPlan>>,
    ) {
        if let Err(e) = self.save(user, conversation, turn, metric).await {
            tracing::warn!(error = %e, "conversation not recorded");
        }
    }

    async fn save(
        &self,
        user: &str,
        conversation: &str,
        turn: Turn,
        metric: Option<Option<MetricPlan>>,
    ) -> Result<(), SessionError> {
        let mut c = self.load(user, conversation).await?;
        if let Some(m) = metric {
            c.metric = m;
        }
        c.turns.push_back(turn);
        while c.turns.len() > MAX_TURNS {
            c.turns.pop_front();
        }
        let state = serde_json::to_string(&c).unwrap_or_else(|_| "{}".into());
        let now = chrono::Utc::now().timestamp();
        sqlx::query(self.db.sql(
            "INSERT INTO conversations (user_id, conversation_id, state, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, conversation_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        ))
        .bind(user)
        .bind(conversation)
        .bind(state)
        .bind(now)
        .execute(self.db.pool())
        .await?;
        Ok(())
    }

    /// Forgets conversations unused for [`IDLE_DAYS`] at `now` (Unix
    /// seconds); run by the server's periodic purge, not per question.
    /// Returns how many.
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_idle(&self, now: i64) -> Result<u64, SessionError> {
        let done = sqlx::query(
            self.db
                .sql("DELETE FROM conversations WHERE updated_at < $1"),
        )
        .bind(now - IDLE_DAYS * 86_400)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(metric: &str) -> MetricPlan {
        MetricPlan {
            metric: metric.into(),
            ranges: vec![],
            grain: None,
            group_by: None,
            filters: vec![],
            rank: None,
        }
    }

    fn turn(q: &str) -> Turn {
        Turn {
            question: q.into(),
            sql: None,
            by_model: false,
        }
    }

    async fn store() -> (ConversationStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = SessionStore::connect(&crate::session::SessionSettings {
            database: format!("sqlite://{}", dir.path().join("c.db").display()),
            ..Default::default()
        })
        .await
        .unwrap();
        (ConversationStore::new(db), dir)
    }

    #[tokio::test]
    async fn conversations_are_per_user_bounded_and_can_forget_the_plan() {
        let (store, _dir) = store().await;
        store
            .record_turn("alice", "c", turn("q0"), Some(Some(plan("dau"))))
            .await;
        assert_eq!(store.get("alice", "c").await.metric.unwrap().metric, "dau");
        assert_eq!(
            store.get("bob", "c").await,
            Conversation::default(),
            "another user cannot continue it"
        );
        for i in 1..MAX_TURNS + 2 {
            store
                .record_turn("alice", "c", turn(&format!("q{i}")), None)
                .await;
        }
        let c = store.get("alice", "c").await;
        assert_eq!(c.turns.len(), MAX_TURNS);
        assert_eq!(c.turns[0].question, "q2");
        assert!(c.metric.is_some(), "kept when not replaced");
        store.record_turn("alice", "c", turn("x"), Some(None)).await;
        assert!(store.get("alice", "c").await.metric.is_none());
        let now = chrono::Utc::now().timestamp();
        assert_eq!(store.forget_idle(now).await.unwrap(), 0, "still fresh");
        assert_eq!(
            store
                .forget_idle(now + IDLE_DAYS * 86_400 + 1)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.get("alice", "c").await, Conversation::default());
    }
}
