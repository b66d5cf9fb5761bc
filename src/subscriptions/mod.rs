//! Subscriptions: "send me weekly active users every Monday at 9:00". A
//! question is answered again on a schedule (`schedule.rs`: cron in a time
//! zone) and delivered to the recipient's web inbox or as a Slack direct
//! message.
//!
//! Invariant: **a delivery is computed under the recipient's grants at send
//! time**, never the creator's or those of the moment it was created. The
//! recipient is the user who created it; at each run their principal is
//! resolved again (the identity provider's last word in the identity
//! directory, else a configured dev user). A recipient with no role left
//! gets a notice, never data, and the subscription pauses. A Slack direct
//! message goes only to a Slack user who maps to the recipient at send time.
//!
//! Every run is a question with its own audit event (channel
//! `subscription`). Runs are exactly-once across instances: the delivery
//! row (subscription, scheduled time) is claimed by one instance
//! (`store.rs`, with a lease for a crashed claimer). A run missed while no
//! instance was up is sent once when one is, marked late; the runs in
//! between are not sent.

pub mod schedule;
mod store;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use store::{LEASE_SECS, SubscriptionStore};

use crate::audit::Channel;
use crate::orchestrator::Orchestrator;
use crate::policy::Principal;
use crate::session::SessionStore;

/// Most subscriptions one user may hold.
pub const MAX_PER_USER: usize = 50;
/// A run started this long after its time is marked late (seconds).
pub const LATE_AFTER_SECS: i64 = 300;

/// Where a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The web chat's inbox (`GET /api/inbox`).
    Inbox,
    /// A Slack direct message to `slack_user`.
    Slack,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Inbox => "inbox",
            Target::Slack => "slack",
        }
    }
}

/// A threshold alert: the run delivers only when the metric's value for
/// the day before the run is above (or below) the threshold; otherwise the
/// run is recorded as `quiet` and nothing is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// The metric's name in the semantic layer.
    pub metric: String,
    /// Alert above the threshold (else below).
    pub above: bool,
    /// In the metric's own units (0.3 for 30% of a ratio).
    pub threshold: f64,
}

impl Alert {
    /// Whether `value` crosses the threshold.
    pub fn fires(&self, value: f64) -> bool {
        if self.above {
            value > self.threshold
        } else {
            value < self.threshold
        }
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Subscription {
    /// Random id (32 hex digits).
    pub id: String,
    /// The recipient, who created it.
    pub user: String,
    /// The question re-asked at each run.
    pub question: String,
    /// Five-field cron expression.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// Inbox or Slack.
    pub target: Target,
    /// The Slack user id, for Slack.
    pub slack_user: Option<String>,
    /// Paused subscriptions do not run.
    pub paused: bool,
    /// The next run (Unix seconds).
    pub next_run_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// A threshold alert, if this is one.
    pub alert: Option<Alert>,
}

/// A delivered run, as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// The subscription.
    pub subscription_id: String,
    /// Its question.
    pub question: String,
    /// `inbox` or `slack`.
    pub target: String,
    /// The run's scheduled time (Unix seconds).
    pub scheduled_for: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// `sent`, `notice` (no access: no data) or `refused` (Slack user not the recipient).
    pub outcome: String,
    /// Run after downtime.
    pub late: bool,
    /// The question's audit event.
    pub event_id: Option<String>,
    /// The answer (inbox only; `None` when it read personal data, which is
    /// never stored: ask again to see it).
    pub body: Option<serde_json::Value>,
}

/// A new subscription as requested.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The question.
    pub question: String,
    /// Five-field cron expression.
    pub cron: String,
    /// IANA time zone (default UTC).
    #[serde(default)]
    pub timezone: Option<String>,
    /// `inbox` (default) or `slack`.
    #[serde(default)]
    pub target: Option<Target>,
    /// The Slack user id for `slack`.
    #[serde(default)]
    pub slack_user: Option<String>,
    /// Make it a threshold alert on this metric; `question` is then
    /// replaced by "<metric label> yesterday".
    #[serde(default)]
    pub alert: Option<Alert>,
}

/// Checks and stores a subscription for `principal` at `now`; an alert's
/// metric must be in `layer`.
///
/// # Errors
/// A sentence for the client: a bad question, schedule, zone or Slack id,
/// an unknown alert metric or a threshold that is not a number, Slack when
/// it is off, too many subscriptions, or the database.
pub async fn create(
    store: &SubscriptionStore,
    layer: &crate::semantic::SemanticLayer,
    principal: &Principal,
    mut req: NewSubscription,
    max_question_chars: usize,
    slack_enabled: bool,
    now: i64,
) -> Result<Subscription, String> {
    if let Some(alert) = &req.alert {
        let metric = layer
            .metric(&alert.metric)
            .ok_or_else(|| format!("no metric named {:?}", alert.metric))?;
        if !alert.threshold.is_finite() {
            return Err("the threshold must be a number".into());
        }
        req.question = format!("{} yesterday", metric.label());
    }
    let question = crate::http::check_question(&req.question, max_question_chars)
        .map_err(|e| e.message)?
        .to_owned();
    let timezone = req.timezone.unwrap_or_else(|| "UTC".into());
    let schedule = schedule::Schedule::new(&req.cron, &timezone)?;
    let first = chrono::DateTime::from_timestamp(now, 0)
        .and_then(|t| schedule.next_after(t))
        .ok_or("that schedule never runs")?;
    let target = req.target.unwrap_or(Target::Inbox);
    let slack_user = match target {
        Target::Inbox => None,
        Target::Slack if !slack_enabled => return Err("Slack is not enabled here".into()),
        Target::Slack => {
            let id = req.slack_user.unwrap_or_default();
            if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err("slack_user must be a Slack user id such as U012AB3CD".into());
            }
            Some(id)
        }
    };
    let existing = store
        .list(Some(&principal.user))
        .await
        .map_err(|e| format!("steward's database failed: {e}"))?;
    if existing.len() >= MAX_PER_USER {
        return Err(format!("at most {MAX_PER_USER} subscriptions per user"));
    }
    let s = Subscription {
        id: crate::audit::new_id(),
        user: principal.user.clone(),
        question,
        cron: req.cron.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone,
        target,
        slack_user,
        paused: false,
        next_run_at: first.timestamp(),
        created_at: now,
        alert: req.alert,
    };
    store
        .add(&s)
        .await
        .map_err(|e| format!("steward's database failed: {e}"))?;
    Ok(s)
}

/// The subscription or threshold alert a chat message asks for, if any:
/// "send me … every Monday at 9:00", or "tell me when checkout conversion
/// falls below 30%" (checked every day at 9:00). An alert naming no metric
/// is an error sentence.
pub fn from_chat(
    layer: &crate::semantic::SemanticLayer,
    message: &str,
    timezone: Option<String>,
) -> Option<Result<NewSubscription, String>> {
    use crate::orchestrator::planner;
    if let Some(a) = schedule::alert_request(message) {
        let Some(metric) = planner::find_metric(&planner::normalize(&a.what), layer) else {
            return Some(Err(format!(
                "I know no metric called \"{}\"; alerts watch a named metric",
                a.what
            )));
        };
        let percent = metric.meta().format == Some(crate::semantic::ValueFormat::Percent);
        let threshold = if a.percent && percent {
            a.number / 100.0
        } else {
            a.number
        };
        return Some(Ok(NewSubscription {
            question: String::new(),
            cron: "0 9 * * *".into(),
            timezone,
            target: None,
            slack_user: None,
            alert: Some(Alert {
                metric: metric.name.clone(),
                above: a.above,
                threshold,
            }),
        }));
    }
    let (cron, question) = schedule::from_phrase(message)?;
    Some(Ok(NewSubscription {
        question,
        cron,
        timezone,
        target: None,
        slack_user: None,
        alert: None,
    }))
}

/// The next run of `s` after `now` (Unix seconds); far in the future when
/// the schedule no longer parses or never runs again.
pub fn next_run(s: &Subscription, now: i64) -> i64 {
    schedule::Schedule::new(&s.cron, &s.timezone)
        .ok()
        .and_then(|sc| sc.next_after(chrono::DateTime::from_timestamp(now, 0)?))
        .map_or(i64::MAX / 2, |t| t.timestamp())
}

/// How a claimed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Delivered: the answer, or a notice that nothing may be sent.
    Delivered,
    /// An alert whose threshold was not crossed: nothing sent.
    Quiet,
    /// Not sent, for good (a Slack user who is not the recipient).
    Refused,
    /// No answer now (audit trail down, steward busy): the claim stays
    /// open, the schedule does not advance, and a tick after the lease
    /// tries again.
    Retry,
}

/// What a scheduler needs to run deliveries.
#[derive(Clone)]
pub struct Deliverer {
    /// Answers the questions.
    pub orchestrator: Arc<Orchestrator>,
    /// steward's database (the identity directory).
    pub sessions: SessionStore,
    /// Subscriptions and deliveries.
    pub store: SubscriptionStore,
    /// Dev users (dev identity mode only).
    pub dev_users: Option<Arc<crate::auth::DevIdentities>>,
    /// Slack, when enabled.
    pub slack: Option<Arc<crate::slack::Slack>>,
    /// This instance's name in claims.
    pub instance: String,
}

impl Deliverer {
    /// The recipient's principal now: the identity provider's last word
    /// (identity directory), else a dev user in dev identity mode; `None`
    /// when there is none or it holds no role.
    async fn recipient(&self, user: &str) -> Option<Principal> {
        let from_directory = match self.sessions.identity_by_user(user).await {
            Ok(entry) => entry.map(|e| Principal {
                user: e.user,
                roles: e.roles,
                groups: e.groups,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "subscription: identity directory unavailable");
                return None;
            }
        };
        from_directory
            .or_else(|| self.dev_users.as_ref()?.principal(user))
            .filter(|p| !p.roles.is_empty())
    }

    /// Runs every due subscription once; returns how many runs this
    /// instance delivered. Errors are logged per run.
    pub async fn tick(&self, now: i64) -> usize {
        let due = match self.store.due(now).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "subscriptions: could not read due runs");
                return 0;
            }
        };
        let mut delivered = 0;
        for s in due {
            let scheduled = s.next_run_at;
            let late = now - scheduled > LATE_AFTER_SECS;
            match self
                .store
                .claim(&s.id, scheduled, &self.instance, now, late)
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "subscriptions: claim failed");
                    continue;
                }
            }
            // Box: an answer's future is large; keep it off the tick's stack.
            match Box::pin(self.deliver(&s, scheduled, late, now)).await {
                Run::Delivered => delivered += 1,
                Run::Refused | Run::Quiet => {}
                Run::Retry => continue,
            }
            if let Err(e) = self
                .store
                .advance(&s.id, scheduled, next_run(&s, now.max(scheduled)))
                .await
            {
                tracing::warn!(error = %e, "subscriptions: could not schedule the next run");
            }
        }
        delivered
    }

    /// Answers one run under the recipient's current grants and delivers it.
    async fn deliver(&self, s: &Subscription, scheduled: i64, late: bool, now: i64) -> Run {
        let finish =
            |outcome: &'static str, event: Option<String>, body: Option<serde_json::Value>| {
                let store = self.store.clone();
                let id = s.id.clone();
                async move {
                    if let Err(e) = store
                        .finish(
                            &id,
                            scheduled,
                            outcome,
                            event.as_deref(),
                            body.as_ref(),
                            now,
                        )
                        .await
                    {
                        tracing::warn!(error = %e, "subscriptions: could not record a delivery");
                    }
                }
            };
        let Some(principal) = self.recipient(&s.user).await else {
            let text = "You no longer have access to steward, so this subscription was paused and nothing was sent.";
            if let Err(e) = self.store.set_paused(&s.id, true, s.next_run_at).await {
                tracing::warn!(error = %e, "subscriptions: could not pause");
            }
            self.send_notice(s, text).await;
            finish("notice", None, Some(serde_json::json!({"notice": text}))).await;
            return Run::Delivered;
        };
        // Slack: only to a Slack user who is the recipient right now.
        if s.target == Target::Slack {
            let slack_user = s.slack_user.clone().unwrap_or_default();
            let Some(slack) = self.slack.as_ref() else {
                finish("refused", None, None).await;
                return Run::Refused;
            };
            match crate::slack::reply::resolve(slack, &self.sessions, &slack_user, now).await {
                Ok(Some(p)) if p.user == s.user => {}
                Ok(_) => {
                    tracing::warn!("subscription: the Slack user is not the recipient; not sent");
                    finish("refused", None, None).await;
                    return Run::Refused;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "subscription: Slack unreachable; will retry after the lease");
                    return Run::Retry;
                }
            }
        }
        let answer = match self
            .orchestrator
            .ask(&principal, Channel::Subscription, &s.question)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "subscription: no answer; will retry after the lease");
                return Run::Retry;
            }
        };
        let event = answer.event_id.clone();
        // An alert sends only when its metric, as the recipient may see it,
        // crossed the threshold.
        if let Some(alert) = &s.alert {
            let value = (answer.metric.as_deref() == Some(alert.metric.as_str()))
                .then(|| answer.key_numbers.first().map(|k| k.value))
                .flatten();
            if !value.is_some_and(|v| alert.fires(v)) {
                finish("quiet", event, None).await;
                return Run::Quiet;
            }
        }
        match s.target {
            Target::Slack => {
                let mut message = crate::slack::blocks::render(&answer);
                if late {
                    message["text"] = serde_json::json!(format!(
                        "(late) {}",
                        message["text"].as_str().unwrap_or_default()
                    ));
                }
                let to = crate::slack::reply::Destination::Direct {
                    user: s.slack_user.clone().unwrap_or_default(),
                };
                if let Some(slack) = &self.slack {
                    crate::slack::reply::deliver(slack, &to, message).await;
                }
                finish("sent", event, None).await;
            }
            Target::Inbox => {
                // Personal data is never kept at rest in the inbox.
                let reads_pii = answer
                    .queries
                    .iter()
                    .any(|q| q.classes.contains(&crate::policy::ColumnClass::Pii));
                let body = (!reads_pii)
                    .then(|| serde_json::to_value(&answer).ok())
                    .flatten();
                finish("sent", event, body).await;
            }
        }
        Run::Delivered
    }

    /// Tells the recipient a run sent no data (Slack only; the inbox keeps
    /// the notice as the delivery).
    async fn send_notice(&self, s: &Subscription, text: &str) {
        if let (Target::Slack, Some(slack), Some(user)) = (s.target, &self.slack, &s.slack_user) {
            let to = crate::slack::reply::Destination::Direct { user: user.clone() };
            crate::slack::reply::deliver(slack, &to, crate::slack::blocks::notice(text)).await;
        }
    }
}
