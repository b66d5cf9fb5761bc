//! Subscriptions: "send me weekly active users every Monday at 9:00". A
//! question is answered again on a schedule (`schedule.rs`: cron in a time
//! zone) and delivered to the recipient's web inbox, as a Slack direct
//! message, or to a Slack channel.
//!
//! Invariant: **a delivery is computed under the recipient's grants at send
//! time**, never the creator's or those of the moment it was created. The
//! recipient is the user who created it; at each run their principal is
//! resolved again (the identity provider's last word in the identity
//! directory, no older than `subscriptions.identity_max_age_secs`, else a
//! configured dev user). A recipient with no role left gets a notice, never
//! data, and the subscription pauses; one whose roles the provider has not
//! confirmed recently gets a notice asking them to sign in. A Slack direct
//! message goes only to a Slack user who maps to the recipient at send time.
//!
//! A Slack channel's recipients are **all its members**: at each run every
//! member (steward's own bot aside) must map to a principal, the creator
//! must be one of them, and the question is answered under each member's
//! grants. Only when every member gets the same answer is it posted;
//! otherwise the run is refused and the creator told why. So a channel sees
//! only what each of its members could ask for themselves.
//!
//! A threshold alert fires once per crossing: it delivers when its metric
//! crosses the threshold and stays quiet until the value has been back on
//! the other side.
//!
//! Every run is a question with its own audit event (channel
//! `subscription`). Runs are exactly-once across instances: the delivery
//! row (subscription, scheduled time) is claimed by one instance
//! (`store.rs`, with a lease for a crashed claimer). A run missed while no
//! instance was up is sent once when one is, marked late; the runs in
//! between are not sent.

mod deliver;
pub mod schedule;
mod store;

use serde::{Deserialize, Serialize};

pub use deliver::Deliverer;
pub use store::{LEASE_SECS, SubscriptionStore};

use crate::orchestrator::Answer;
use crate::policy::Principal;

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
    /// A post in the Slack channel `slack_channel`.
    Channel,
}

impl Target {
    fn as_str(self) -> &'static str {
        match self {
            Target::Inbox => "inbox",
            Target::Slack => "slack",
            Target::Channel => "channel",
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

    /// One run of the alert: given the metric's `value` (`None` when the
    /// recipient got none) and whether it was `firing` after the last run,
    /// `(send, firing now)`. It sends once per crossing: when the threshold
    /// is crossed and was not at the last run.
    pub fn step(&self, value: Option<f64>, firing: bool) -> (bool, bool) {
        let crossed = value.is_some_and(|v| self.fires(v));
        (crossed && !firing, crossed)
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
    /// Inbox, Slack direct message or Slack channel.
    pub target: Target,
    /// The Slack user id, for Slack.
    pub slack_user: Option<String>,
    /// The Slack channel id, for a channel.
    pub slack_channel: Option<String>,
    /// Paused subscriptions do not run.
    pub paused: bool,
    /// The next run (Unix seconds).
    pub next_run_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// A threshold alert, if this is one.
    pub alert: Option<Alert>,
    /// An alert that fired and has not cleared since.
    pub alert_firing: bool,
}

/// A delivered run, as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    /// The subscription.
    pub subscription_id: String,
    /// Its question.
    pub question: String,
    /// `inbox`, `slack` or `channel`.
    pub target: String,
    /// The run's scheduled time (Unix seconds).
    pub scheduled_for: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// `sent`, `notice` (no access: no data) or `refused` (a Slack user
    /// not the recipient, or a channel whose members may not all see it).
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
    /// `inbox` (default), `slack` or `channel`.
    #[serde(default)]
    pub target: Option<Target>,
    /// The Slack user id for `slack`.
    #[serde(default)]
    pub slack_user: Option<String>,
    /// The Slack channel id for `channel`.
    #[serde(default)]
    pub slack_channel: Option<String>,
    /// Make it a threshold alert on this metric; `question` is then
    /// replaced by "<metric label> yesterday".
    #[serde(default)]
    pub alert: Option<Alert>,
}

/// Who acts on a subscription, through which channel, and the audit trail
/// the action is recorded in.
#[derive(Clone, Copy)]
pub struct Actor<'a> {
    /// The person acting.
    pub principal: &'a Principal,
    /// Where they act from.
    pub channel: crate::audit::Channel,
    /// The audit trail.
    pub audit: &'a crate::audit::AuditLog,
}

/// Checks and stores a subscription for `actor` at `now`, with an audit
/// event of kind `subscription` (outcome `created`, the subscription's id as
/// the event's, so its deliveries name it as parent); an alert's metric
/// must be in `layer`.
///
/// # Errors
/// A sentence for the client: a bad question, schedule, zone or Slack id,
/// an unknown alert metric or a threshold that is not a number, Slack when
/// it is off, too many subscriptions, or the database.
pub async fn create(
    store: &SubscriptionStore,
    layer: &crate::semantic::SemanticLayer,
    actor: Actor<'_>,
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
    let slack_id = |id: Option<String>, first: &[char], what: &str| {
        let id = id.unwrap_or_default();
        let ok = id.len() <= 32
            && id.starts_with(first)
            && id.chars().all(|c| c.is_ascii_alphanumeric());
        ok.then_some(id).ok_or_else(|| what.to_owned())
    };
    if target != Target::Inbox && !slack_enabled {
        return Err("Slack is not enabled here".into());
    }
    let (slack_user, slack_channel) = match target {
        Target::Inbox => (None, None),
        Target::Slack => (
            Some(slack_id(
                req.slack_user,
                &['U', 'W'],
                "slack_user must be a Slack user id such as U012AB3CD",
            )?),
            None,
        ),
        Target::Channel => (
            None,
            Some(slack_id(
                req.slack_channel,
                &['C', 'G'],
                "slack_channel must be a Slack channel id such as C012AB3CD (ask in the channel itself from Slack)",
            )?),
        ),
    };
    let s = Subscription {
        id: crate::audit::new_id(),
        user: actor.principal.user.clone(),
        question,
        cron: req.cron.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone,
        target,
        slack_user,
        slack_channel,
        paused: false,
        next_run_at: first.timestamp(),
        created_at: now,
        alert: req.alert,
        alert_firing: false,
    };
    let added = store
        .add_within(&s, MAX_PER_USER)
        .await
        .map_err(|e| format!("steward's database failed: {e}"))?;
    if !added {
        return Err(format!("at most {MAX_PER_USER} subscriptions per user"));
    }
    let detail = serde_json::json!({
        "subscription": s.id, "question": s.question, "cron": s.cron,
        "target": s.target.as_str(), "alert": s.alert.is_some(),
    });
    actor
        .audit
        .record_action(
            actor.principal,
            actor.channel,
            crate::audit::EventKind::Subscription,
            "created",
            &s.id,
            detail,
        )
        .await
        .map_err(|e| format!("steward's audit trail failed: {e}"))?;
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
            slack_channel: None,
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
        target: schedule::for_channel(message).then_some(Target::Channel),
        slack_user: None,
        slack_channel: None,
        alert: None,
    }))
}

/// Creates the subscription a chat message asked for (see [`from_chat`])
/// and says so, or why not as a refusal. Its runs are answered later, each
/// under the recipients' grants of that moment.
pub async fn answer_request(
    store: &SubscriptionStore,
    layer: &crate::semantic::SemanticLayer,
    actor: Actor<'_>,
    request: Result<NewSubscription, String>,
    max_question_chars: usize,
    slack_enabled: bool,
    now: i64,
) -> Answer {
    use crate::orchestrator::AnswerKind;
    let created = match request {
        Ok(req) => {
            create(
                store,
                layer,
                actor,
                req,
                max_question_chars,
                slack_enabled,
                now,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let s = match created {
        Ok(s) => s,
        Err(reason) => {
            return Answer::refusal(format!("I couldn't subscribe you: {reason}."), reason);
        }
    };
    let next = chrono::DateTime::from_timestamp(s.next_run_at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let place = match s.target {
        Target::Inbox => "in your inbox",
        Target::Slack => "by Slack direct message",
        Target::Channel => {
            "in this channel, only while every member of the channel may see the same answer"
        }
    };
    let whose = if s.target == Target::Channel {
        "the members"
    } else {
        "you"
    };
    let text = match &s.alert {
        Some(a) => format!(
            "Alert set: I'll check \"{}\" on the schedule `{}` ({}), first on {next}, and tell you {place} when it goes {} {}, once per crossing, with what {whose} may see at that moment. Pause or delete it under Subscriptions.",
            s.question,
            s.cron,
            s.timezone,
            if a.above { "above" } else { "below" },
            a.threshold
        ),
        None => format!(
            "Subscribed: I'll answer \"{}\" on the schedule `{}` ({}), first on {next}, with what {whose} may see at that moment, {place}. Pause or delete it under Subscriptions.",
            s.question, s.cron, s.timezone
        ),
    };
    Answer::new(AnswerKind::Subscription, text)
}

/// The next run of `s` after `now` (Unix seconds); far in the future when
/// the schedule no longer parses or never runs again.
pub fn next_run(s: &Subscription, now: i64) -> i64 {
    schedule::Schedule::new(&s.cron, &s.timezone)
        .ok()
        .and_then(|sc| sc.next_after(chrono::DateTime::from_timestamp(now, 0)?))
        .map_or(i64::MAX / 2, |t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alert_sends_once_per_crossing() {
        let below = Alert {
            metric: "m".into(),
            above: false,
            threshold: 0.3,
        };
        // Values over successive runs, and what each run does.
        let runs = [
            (Some(0.4), false),
            (Some(0.2), true),
            (Some(0.1), false),
            (None, false),
            (Some(0.25), true),
            (Some(0.3), false),
            (Some(0.29), true),
        ];
        let mut firing = false;
        for (i, (value, sends)) in runs.into_iter().enumerate() {
            let (send, now) = below.step(value, firing);
            assert_eq!(send, sends, "run {i}: {value:?}");
            firing = now;
        }
        let above = Alert {
            above: true,
            ..below
        };
        assert_eq!(above.step(Some(0.31), false), (true, true));
        assert_eq!(above.step(Some(0.3), true), (false, false));
        assert_eq!(above.step(Some(f64::NAN), false), (false, false));
    }
}
