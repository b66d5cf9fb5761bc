//! Load shedding at the door: per-user rate limits on questions (a keyed
//! GCRA limiter — governor, the generic cell rate algorithm of ITU-T I.371,
//! a token bucket — with `limits.questions_per_minute` sustained and
//! `limits.question_burst` on top), and [`Admission`], the bound on answers
//! in flight.

use std::num::NonZeroU32;

use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::settings::Limits;

/// Users tracked before idle ones are forgotten.
const FORGET_PAST: usize = 10_000;

/// Questions per user; `None` inside when the limit is off.
pub struct QuestionLimiter(Option<DefaultKeyedRateLimiter<String>>);

impl QuestionLimiter {
    /// The limiter `limits` describe (off when `questions_per_minute` is 0).
    pub fn new(limits: &Limits) -> QuestionLimiter {
        QuestionLimiter(NonZeroU32::new(limits.questions_per_minute).map(|rate| {
            let burst = NonZeroU32::new(limits.question_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        }))
    }

    /// Counts one question by `user`.
    ///
    /// # Errors
    /// 429 `rate_limited` with `Retry-After` (whole seconds, rounded up) when
    /// `user` is over the limit.
    pub fn check(&self, user: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        if limiter.len() > FORGET_PAST {
            limiter.retain_recent();
        }
        limiter.check_key(&user.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            crate::prometheus::shed("rate_limited");
            ApiError::rate_limited(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        })
    }
}

/// At most `limits.max_concurrent_answers` questions are answered at once;
/// a question waits up to `limits.queue_timeout_ms` for its turn, then gets
/// 503 `busy` with `Retry-After`. Work is thus bounded before it starts, and
/// a queued client learns within the timeout instead of waiting without end.
pub struct Admission {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Admission {
    /// The admission `limits` describe.
    pub fn new(limits: &Limits) -> Admission {
        Admission {
            permits: Arc::new(Semaphore::new(limits.max_concurrent_answers.max(1))),
            wait: Duration::from_millis(limits.queue_timeout_ms),
        }
    }

    /// A turn to answer, held until dropped.
    ///
    /// # Errors
    /// 503 `busy` with `Retry-After` when no turn freed up in time.
    pub async fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                crate::prometheus::shed("busy");
                Err(ApiError::busy(self.wait.as_secs()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, burst: u32) -> Limits {
        let mut l = crate::settings::Settings::default().limits;
        l.questions_per_minute = per_minute;
        l.question_burst = burst;
        l
    }

    #[test]
    fn a_user_past_the_burst_is_told_when_to_retry_and_others_are_not_affected() {
        let limiter = QuestionLimiter::new(&limits(6, 3));
        for _ in 0..3 {
            limiter.check("alice").unwrap();
        }
        let e = limiter.check("alice").unwrap_err();
        assert_eq!(e.status.as_u16(), 429);
        assert_eq!(e.code, "rate_limited");
        // One question per 10 s sustained: the next one is at most 10 s away.
        let wait = e.retry_after.unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        limiter.check("bob").unwrap();
    }

    #[tokio::test]
    async fn past_the_answers_in_flight_a_question_waits_then_is_turned_away() {
        let mut l = limits(0, 0);
        l.max_concurrent_answers = 1;
        l.queue_timeout_ms = 20;
        let admission = Admission::new(&l);
        let held = admission.admit().await.unwrap();
        let e = admission.admit().await.unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (503, "busy"));
        assert_eq!(e.retry_after, Some(1));
        drop(held);
        drop(admission.admit().await.unwrap());
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = QuestionLimiter::new(&limits(0, 0));
        for _ in 0..1000 {
            limiter.check("alice").unwrap();
        }
    }
}
