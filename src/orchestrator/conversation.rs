//! Conversations: per (user, conversation id) the last metric plan, so a
//! follow-up question can continue it, and the last [`MAX_TURNS`] questions
//! with the SQL that ran for them, for the language model's prompt.
//!
//! In memory and bounded: at most [`MAX_CONVERSATIONS`] are kept, the oldest
//! forgotten first. Keys include the user, so one user can never continue
//! another's conversation. Only plans, questions and SQL are kept — never
//! answers or rows.
//! (A shared store in the database, so any instance can continue a
//! conversation, comes with server-side sessions.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::planner::MetricPlan;

/// Conversations remembered at once.
pub const MAX_CONVERSATIONS: usize = 10_000;
/// Earlier turns remembered per conversation.
pub const MAX_TURNS: usize = 4;

/// One earlier turn: the question and the SQL that ran for it, if any.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Turn {
    /// The question as asked.
    pub question: String,
    /// The validated SQL of the turn's main statement.
    pub sql: Option<String>,
    /// Whether the language model answered it.
    pub by_model: bool,
}

#[derive(Default)]
struct Conversation {
    metric: Option<MetricPlan>,
    turns: VecDeque<Turn>,
}

/// Conversation state per (user, conversation id).
#[derive(Default)]
pub struct ConversationStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    plans: HashMap<(String, String), Conversation>,
    order: VecDeque<(String, String)>,
}

impl ConversationStore {
    /// The last metric plan of a user's conversation.
    pub fn last(&self, user: &str, conversation: &str) -> Option<MetricPlan> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .plans
            .get(&(user.to_owned(), conversation.to_owned()))
            .and_then(|c| c.metric.clone())
    }

    /// The earlier turns of a user's conversation, oldest first.
    pub fn history(&self, user: &str, conversation: &str) -> Vec<Turn> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .plans
            .get(&(user.to_owned(), conversation.to_owned()))
            .map(|c| c.turns.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Remembers the metric plan of the latest turn.
    pub fn record(&self, user: &str, conversation: &str, plan: MetricPlan) {
        self.update(user, conversation, |c| c.metric = Some(plan));
    }

    /// Remembers a turn. `metric` replaces the metric plan when `Some`
    /// (`Some(None)` forgets it: the turn was not about a metric).
    pub fn record_turn(
        &self,
        user: &str,
        conversation: &str,
        turn: Turn,
        metric: Option<Option<MetricPlan>>,
    ) {
        self.update(user, conversation, |c| {
            if let Some(m) = metric {
                c.metric = m;
            }
            c.turns.push_back(turn);
            while c.turns.len() > MAX_TURNS {
                c.turns.pop_front();
            }
        });
    }

    fn update(&self, user: &str, conversation: &str, f: impl FnOnce(&mut Conversation)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (user.to_owned(), conversation.to_owned());
        let fresh = !inner.plans.contains_key(&key);
        f(inner.plans.entry(key.clone()).or_default());
        if fresh {
            inner.order.push_back(key);
            while inner.order.len() > MAX_CONVERSATIONS {
                if let Some(old) = inner.order.pop_front() {
                    inner.plans.remove(&old);
                }
            }
        }
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
        }
    }

    #[test]
    fn conversations_are_per_user_and_bounded() {
        let store = ConversationStore::default();
        store.record("alice", "c1", plan("dau"));
        assert_eq!(store.last("alice", "c1").unwrap().metric, "dau");
        assert!(
            store.last("bob", "c1").is_none(),
            "another user cannot continue it"
        );
        for i in 0..MAX_CONVERSATIONS {
            store.record("alice", &format!("x{i}"), plan("signups"));
        }
        assert!(
            store.last("alice", "c1").is_none(),
            "the oldest is forgotten"
        );
        assert!(
            store
                .last("alice", &format!("x{}", MAX_CONVERSATIONS - 1))
                .is_some()
        );
    }

    #[test]
    fn turns_are_bounded_and_a_non_metric_turn_can_forget_the_plan() {
        let store = ConversationStore::default();
        store.record("alice", "c", plan("dau"));
        for i in 0..MAX_TURNS + 2 {
            store.record_turn(
                "alice",
                "c",
                Turn {
                    question: format!("q{i}"),
                    sql: None,
                    by_model: false,
                },
                None,
            );
        }
        let h = store.history("alice", "c");
        assert_eq!(h.len(), MAX_TURNS);
        assert_eq!(h[0].question, "q2");
        assert!(store.last("alice", "c").is_some(), "kept when not replaced");
        store.record_turn(
            "alice",
            "c",
            Turn {
                question: "x".into(),
                sql: Some("SELECT 1".into()),
                by_model: true,
            },
            Some(None),
        );
        assert!(store.last("alice", "c").is_none());
        assert!(store.history("bob", "c").is_empty());
    }
}
