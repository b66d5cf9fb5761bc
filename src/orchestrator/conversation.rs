//! Conversations: the last metric plan of each (user, conversation id), so a
//! follow-up question can continue it.
//!
//! In memory and bounded: at most [`MAX_CONVERSATIONS`] are kept, the oldest
//! forgotten first. Keys include the user, so one user can never continue
//! another's conversation. Only plans are kept — never answers or rows.
//! (A shared store in the database, so any instance can continue a
//! conversation, comes with server-side sessions.)

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::planner::MetricPlan;

/// Conversations remembered at once.
pub const MAX_CONVERSATIONS: usize = 10_000;

/// The last metric plan per (user, conversation id).
#[derive(Default)]
pub struct ConversationStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    plans: HashMap<(String, String), MetricPlan>,
    order: VecDeque<(String, String)>,
}

impl ConversationStore {
    /// The last metric plan of a user's conversation.
    pub fn last(&self, user: &str, conversation: &str) -> Option<MetricPlan> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .plans
            .get(&(user.to_owned(), conversation.to_owned()))
            .cloned()
    }

    /// Remembers the metric plan of the latest turn.
    pub fn record(&self, user: &str, conversation: &str, plan: MetricPlan) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (user.to_owned(), conversation.to_owned());
        if inner.plans.insert(key.clone(), plan).is_none() {
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
}
