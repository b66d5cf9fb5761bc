//! A bounded, expiring memory of ids seen recently: Slack event ids (Slack
//! retries a delivery it got no 2xx for within 3 s) and logout-token `jti`s
//! (a replayed token is refused).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers ids for a while, so a repeated one is recognised.
pub struct Dedupe {
    seen: Mutex<HashMap<String, Instant>>,
    ttl: Duration,
    capacity: usize,
}

impl Dedupe {
    /// Ids are remembered for `ttl`; at most `capacity` at a time (the oldest
    /// are forgotten first when full).
    pub fn new(ttl: Duration, capacity: usize) -> Dedupe {
        Dedupe {
            seen: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// Whether `event_id` is new (and now remembered).
    pub fn first_time(&self, event_id: &str) -> bool {
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        let now = Instant::now();
        seen.retain(|_, at| now.duration_since(*at) < self.ttl);
        if seen.contains_key(event_id) {
            return false;
        }
        if seen.len() >= self.capacity
            && let Some(oldest) = seen
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
        seen.insert(event_id.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_recognised_and_memory_is_bounded() {
        let d = Dedupe::new(Duration::from_secs(60), 2);
        assert!(d.first_time("Ev1"));
        assert!(!d.first_time("Ev1"));
        assert!(d.first_time("Ev2"));
        assert!(d.first_time("Ev3"));
        assert_eq!(d.seen.lock().unwrap().len(), 2);
        let short = Dedupe::new(Duration::from_millis(0), 10);
        assert!(short.first_time("x"));
        assert!(short.first_time("x"), "forgotten after the ttl");
    }
}
