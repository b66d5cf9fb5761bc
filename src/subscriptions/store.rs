//! Subscriptions and their deliveries in steward's database (migration
//! 0009). A delivery row is the lease: its primary key (subscription,
//! scheduled time) lets one instance claim a run; an unfinished claim older
//! than [`LEASE_SECS`] may be taken over.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Delivery, Subscription, Target};
use crate::session::SessionStore;

/// How long a claimed run may stay unfinished before another instance may
/// take it over (seconds).
pub const LEASE_SECS: i64 = 300;

/// Subscriptions and deliveries.
#[derive(Clone)]
pub struct SubscriptionStore {
    db: SessionStore,
}

const COLUMNS: &str = "id, user_id, question, cron, timezone, target, slack_user, paused, next_run_at, created_at, alert, slack_channel, alert_firing";

fn subscription_of(row: &AnyRow) -> Result<Subscription, sqlx::Error> {
    let target: String = row.try_get("target")?;
    Ok(Subscription {
        id: row.try_get("id")?,
        user: row.try_get("user_id")?,
        question: row.try_get("question")?,
        cron: row.try_get("cron")?,
        timezone: row.try_get("timezone")?,
        target: match target.as_str() {
            "slack" => Target::Slack,
            "channel" => Target::Channel,
            _ => Target::Inbox,
        },
        slack_user: row.try_get("slack_user")?,
        paused: row.try_get::<i64, _>("paused")? != 0,
        next_run_at: row.try_get("next_run_at")?,
        created_at: row.try_get("created_at")?,
        alert: row
            .try_get::<Option<String>, _>("alert")?
            .and_then(|a| serde_json::from_str(&a).ok()),
        slack_channel: row.try_get("slack_channel")?,
        alert_firing: row.try_get::<i64, _>("alert_firing")? != 0,
    })
}

impl SubscriptionStore {
    /// The store in steward's database.
    pub fn new(db: SessionStore) -> SubscriptionStore {
        SubscriptionStore { db }
    }

    /// Stores a new subscription unless its user already has `max`: the
    /// count and the insert are one serialized transaction
    /// ([`SessionStore::begin_serialized`]), so parallel requests cannot
    /// each see room for one more. `Ok(false)`: the user is at `max`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn add_within(&self, s: &Subscription, max: usize) -> Result<bool, sqlx::Error> {
        let mut tx = self
            .db
            .begin_serialized(&format!("subscriptions:{}", s.user))
            .await?;
        let n: i64 = sqlx::query(
            self.db
                .sql("SELECT COUNT(*) AS n FROM subscriptions WHERE user_id = $1"),
        )
        .bind(&s.user)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= max {
            return Ok(false);
        }
        sqlx::query(self.db.sql(&format!(
            "INSERT INTO subscriptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(&s.id)
        .bind(&s.user)
        .bind(&s.question)
        .bind(&s.cron)
        .bind(&s.timezone)
        .bind(s.target.as_str())
        .bind(s.slack_user.clone())
        .bind(i64::from(s.paused))
        .bind(s.next_run_at)
        .bind(s.created_at)
        .bind(s.alert.as_ref().and_then(|a| serde_json::to_string(a).ok()))
        .bind(s.slack_channel.clone())
        .bind(i64::from(s.alert_firing))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A user's subscriptions, or everyone's with `None`, oldest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list(&self, user: Option<&str>) -> Result<Vec<Subscription>, sqlx::Error> {
        let rows = sqlx::query(self.db.sql(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE ($1 = '' OR user_id = $1) ORDER BY created_at, id LIMIT 1000"
        )))
        .bind(user.unwrap_or_default())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(subscription_of).collect()
    }

    /// One subscription.
    ///
    /// # Errors
    /// Database failures.
    pub async fn get(&self, id: &str) -> Result<Option<Subscription>, sqlx::Error> {
        let row = sqlx::query(self.db.sql(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(subscription_of).transpose()
    }

    /// Pauses or resumes; a resumed subscription runs next at `next_run_at`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn set_paused(
        &self,
        id: &str,
        paused: bool,
        next_run_at: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            self.db
                .sql("UPDATE subscriptions SET paused = $1, next_run_at = $2 WHERE id = $3"),
        )
        .bind(i64::from(paused))
        .bind(next_run_at)
        .bind(id)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// Records whether an alert's threshold is crossed now, so it fires
    /// once per crossing.
    ///
    /// # Errors
    /// Database failures.
    pub async fn set_alert_firing(&self, id: &str, firing: bool) -> Result<(), sqlx::Error> {
        sqlx::query(
            self.db
                .sql("UPDATE subscriptions SET alert_firing = $1 WHERE id = $2"),
        )
        .bind(i64::from(firing))
        .bind(id)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// Deletes finished deliveries scheduled before `before` (Unix seconds);
    /// returns how many. Claims still open are kept.
    ///
    /// # Errors
    /// Database failures.
    pub async fn purge(&self, before: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            self.db
                .sql("DELETE FROM deliveries WHERE scheduled_for < $1 AND outcome IS NOT NULL"),
        )
        .bind(before)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes a subscription and its deliveries.
    ///
    /// # Errors
    /// Database failures.
    pub async fn delete(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            self.db
                .sql("DELETE FROM deliveries WHERE subscription_id = $1"),
        )
        .bind(id)
        .execute(self.db.pool())
        .await?;
        sqlx::query(self.db.sql("DELETE FROM subscriptions WHERE id = $1"))
            .bind(id)
            .execute(self.db.pool())
            .await
            .map(drop)
    }

    /// Subscriptions due at `now` (not paused), at most 100, earliest first.
    ///
    /// # Errors
    /// Database failures.
    pub async fn due(&self, now: i64) -> Result<Vec<Subscription>, sqlx::Error> {
        let rows = sqlx::query(self.db.sql(&format!(
            "SELECT {COLUMNS} FROM subscriptions WHERE paused = 0 AND next_run_at <= $1 ORDER BY next_run_at, id LIMIT 100"
        )))
        .bind(now)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(subscription_of).collect()
    }

    /// Claims the run of `subscription` scheduled at `scheduled_for` for
    /// `instance`: `true` for the one instance that may deliver it (the
    /// first, or the taker-over of a claim unfinished for [`LEASE_SECS`]).
    ///
    /// # Errors
    /// Database failures other than losing the claim.
    pub async fn claim(
        &self,
        subscription: &str,
        scheduled_for: i64,
        instance: &str,
        now: i64,
        late: bool,
    ) -> Result<bool, sqlx::Error> {
        let inserted = sqlx::query(self.db.sql(
            "INSERT INTO deliveries (subscription_id, scheduled_for, instance, claimed_at, late) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subscription_id, scheduled_for) DO NOTHING",
        ))
        .bind(subscription)
        .bind(scheduled_for)
        .bind(instance)
        .bind(now)
        .bind(i64::from(late))
        .execute(self.db.pool())
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(true);
        }
        let taken = sqlx::query(self.db.sql(
            "UPDATE deliveries SET instance = $1, claimed_at = $2 \
             WHERE subscription_id = $3 AND scheduled_for = $4 AND outcome IS NULL AND claimed_at < $5",
        ))
        .bind(instance)
        .bind(now)
        .bind(subscription)
        .bind(scheduled_for)
        .bind(now - LEASE_SECS)
        .execute(self.db.pool())
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Records a claimed run's outcome (`sent`, `notice`, `refused` or `quiet`), the
    /// question's audit event, and for the inbox the answer as JSON.
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish(
        &self,
        subscription: &str,
        scheduled_for: i64,
        outcome: &str,
        event_id: Option<&str>,
        body: Option<&serde_json::Value>,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(self.db.sql(
            "UPDATE deliveries SET outcome = $1, event_id = $2, body = $3, delivered_at = $4 \
             WHERE subscription_id = $5 AND scheduled_for = $6",
        ))
        .bind(outcome)
        .bind(event_id.map(str::to_owned))
        .bind(body.map(|b| b.to_string()))
        .bind(now)
        .bind(subscription)
        .bind(scheduled_for)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// Moves a subscription's next run from `from` to `to`, unless another
    /// instance already did.
    ///
    /// # Errors
    /// Database failures.
    pub async fn advance(&self, id: &str, from: i64, to: i64) -> Result<(), sqlx::Error> {
        sqlx::query(
            self.db.sql(
                "UPDATE subscriptions SET next_run_at = $1 WHERE id = $2 AND next_run_at = $3",
            ),
        )
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(self.db.pool())
        .await
        .map(drop)
    }

    /// A user's finished deliveries (the inbox), newest first, at most `limit`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn inbox(&self, user: &str, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
        let rows = sqlx::query(self.db.sql(
            "SELECT d.subscription_id, d.scheduled_for, d.delivered_at, d.outcome, d.late, d.event_id, d.body, s.question, s.target \
             FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id \
             WHERE s.user_id = $1 AND d.outcome IS NOT NULL AND d.outcome <> 'quiet' ORDER BY d.scheduled_for DESC LIMIT $2",
        ))
        .bind(user)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let body: Option<String> = r.try_get("body")?;
                Ok(Delivery {
                    subscription_id: r.try_get("subscription_id")?,
                    question: r.try_get("question")?,
                    target: r.try_get("target")?,
                    scheduled_for: r.try_get("scheduled_for")?,
                    delivered_at: r.try_get("delivered_at")?,
                    outcome: r.try_get("outcome")?,
                    late: r.try_get::<i64, _>("late")? != 0,
                    event_id: r.try_get("event_id")?,
                    body: body.and_then(|b| serde_json::from_str(&b).ok()),
                })
            })
            .collect()
    }

    /// How many deliveries exist for a subscription (tests, operators).
    ///
    /// # Errors
    /// Database failures.
    pub async fn delivery_count(&self, subscription: &str) -> Result<i64, sqlx::Error> {
        sqlx::query(
            self.db
                .sql("SELECT COUNT(*) AS n FROM deliveries WHERE subscription_id = $1"),
        )
        .bind(subscription)
        .fetch_one(self.db.pool())
        .await?
        .try_get("n")
    }
}
