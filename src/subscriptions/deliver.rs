//! Running due subscriptions: [`Deliverer::tick`] claims each due run,
//! resolves its recipients again, answers under their grants and delivers
//! (see the module above for the rules).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::{LATE_AFTER_SECS, Subscription, SubscriptionStore, Target, next_run};
use crate::audit::{Cause, Channel};
use crate::orchestrator::{Answer, Orchestrator};
use crate::policy::Principal;
use crate::session::SessionStore;

/// How a claimed run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Delivered: the answer, or a notice that nothing may be sent.
    Delivered,
    /// An alert whose threshold was not crossed (or still is): nothing sent.
    Quiet,
    /// Not sent, for good (a Slack user who is not the recipient, a channel
    /// whose members may not all see the answer).
    Refused,
    /// No answer now (audit trail down, steward busy, Slack or the identity
    /// directory unreachable): the claim stays open, the schedule does not
    /// advance, and a tick after the lease tries again.
    Retry,
}

/// Who a run is for, as far as steward can tell now.
enum Recipient {
    /// Their principal now.
    Current(Principal),
    /// No role any more.
    NoAccess,
    /// The provider has not confirmed their roles recently.
    Unconfirmed,
}

/// What a run's answer is compared on across a channel's members: all a
/// post shows (the statement and its reading included, so one member's row
/// filter or mask is never shown to the others), but not when it was
/// computed or whether from the cache.
fn content(a: &Answer) -> serde_json::Value {
    serde_json::json!([
        a.kind,
        a.answer,
        a.data,
        a.key_numbers,
        a.citations,
        a.notes,
        a.reason,
        a.sql,
        a.interpretation,
        a.suggestions
    ])
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
    /// `[subscriptions]`.
    pub settings: crate::settings::SubscriptionSettings,
    /// The hour (Unix seconds / 3600) of this instance's last retention purge.
    pub last_purge: Arc<AtomicI64>,
}

impl Deliverer {
    /// The recipient now: the identity provider's last word (identity
    /// directory) if recent enough, else a dev user in dev identity mode.
    ///
    /// # Errors
    /// The directory being unreachable.
    async fn recipient(&self, user: &str, now: i64) -> Result<Recipient, String> {
        let entry = self
            .sessions
            .identity_by_user(user)
            .await
            .map_err(|e| e.to_string())?;
        let principal = match entry {
            Some(e) if e.updated_at < now - self.settings.identity_max_age_secs => {
                return Ok(Recipient::Unconfirmed);
            }
            Some(e) => Some(e.into_principal()),
            None => self.dev_users.as_ref().and_then(|d| d.principal(user)),
        };
        Ok(match principal.filter(|p| !p.roles.is_empty()) {
            Some(p) => Recipient::Current(p),
            None => Recipient::NoAccess,
        })
    }

    /// Runs every due subscription once; returns how many runs this
    /// instance delivered. Errors are logged per run. Once an hour it also
    /// purges deliveries older than `subscriptions.inbox_keep_days`.
    pub async fn tick(&self, now: i64) -> usize {
        if self.last_purge.swap(now / 3600, Ordering::Relaxed) != now / 3600 {
            match self
                .store
                .purge(now - self.settings.inbox_keep_days * 86_400)
                .await
            {
                Ok(n) if n > 0 => {
                    tracing::info!(purged = n, "subscriptions: old deliveries purged")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "subscriptions: purge failed"),
            }
        }
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

    /// Answers one run under the recipient's current grants (a channel's:
    /// every member's) and delivers it.
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
        let notice = |text: String| serde_json::json!({ "notice": text });
        let principal = match self.recipient(&s.user, now).await {
            Ok(Recipient::Current(p)) => p,
            Ok(Recipient::NoAccess) => {
                let text = "You no longer have access to steward, so this subscription was paused and nothing was sent.";
                if let Err(e) = self.store.set_paused(&s.id, true, s.next_run_at).await {
                    tracing::warn!(error = %e, "subscriptions: could not pause");
                }
                self.send_notice(s, None, text).await;
                finish("notice", None, Some(notice(text.into()))).await;
                return Run::Delivered;
            }
            Ok(Recipient::Unconfirmed) => {
                let text = "Nothing was sent: your identity provider has not confirmed your access to steward recently. Sign in to steward once to keep receiving this subscription.";
                self.send_notice(s, None, text).await;
                finish("notice", None, Some(notice(text.into()))).await;
                return Run::Delivered;
            }
            Err(e) => {
                tracing::warn!(error = %e, "subscription: identity directory unavailable; will retry after the lease");
                return Run::Retry;
            }
        };
        let slack = match (s.target, self.slack.as_ref()) {
            (Target::Inbox, _) => None,
            (_, Some(slack)) => Some(slack),
            (_, None) => {
                finish(
                    "refused",
                    None,
                    Some(notice("Slack is not enabled here.".into())),
                )
                .await;
                return Run::Refused;
            }
        };
        let answer = match (s.target, slack) {
            (Target::Channel, Some(slack)) => match self.for_channel(slack, s, now).await {
                Ok(Ok(answer)) => answer,
                Ok(Err((reason, owner))) => {
                    tracing::info!(subscription = %s.id, %reason, "subscription: not posted to the channel");
                    let text = format!("Nothing was posted to the channel: {reason}.");
                    self.send_notice(s, owner, &text).await;
                    finish("refused", None, Some(notice(text))).await;
                    return Run::Refused;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "subscription: channel run failed; will retry after the lease");
                    return Run::Retry;
                }
            },
            (target, slack) => {
                // A direct message goes only to a Slack user who is the recipient right now.
                if let (Target::Slack, Some(slack)) = (target, slack) {
                    let slack_user = s.slack_user.clone().unwrap_or_default();
                    match crate::slack::reply::resolve(slack, &self.sessions, &slack_user, now)
                        .await
                    {
                        Ok(Some(p)) if p.user == s.user => {}
                        Ok(_) => {
                            tracing::warn!(
                                "subscription: the Slack user is not the recipient; not sent"
                            );
                            finish("refused", None, None).await;
                            return Run::Refused;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "subscription: Slack unreachable; will retry after the lease");
                            return Run::Retry;
                        }
                    }
                }
                match self
                    .orchestrator
                    .ask_caused(&principal, &delivery_cause(s), None, &s.question)
                    .await
                {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "subscription: no answer; will retry after the lease");
                        return Run::Retry;
                    }
                }
            }
        };
        let event = answer.event_id.clone();
        // An alert sends once per crossing of its metric, as the recipient
        // may see it.
        if let Some(alert) = &s.alert {
            let value = (answer.metric.as_deref() == Some(alert.metric.as_str()))
                .then(|| answer.key_numbers.first().map(|k| k.value))
                .flatten();
            let (send, firing) = alert.step(value, s.alert_firing);
            if firing != s.alert_firing
                && let Err(e) = self.store.set_alert_firing(&s.id, firing).await
            {
                tracing::warn!(error = %e, "subscriptions: could not record the alert's state");
                return Run::Retry;
            }
            if !send {
                finish("quiet", event, None).await;
                return Run::Quiet;
            }
        }
        match (s.target, slack) {
            (Target::Inbox, _) | (_, None) => {
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
            (target, Some(slack)) => {
                let mut shown = answer;
                let channel = if target == Target::Channel {
                    // Feedback buttons bind to one asker; a channel post has none.
                    shown.event_id = None;
                    s.slack_channel.clone()
                } else {
                    s.slack_user.clone()
                };
                let mut message = crate::slack::blocks::render(&shown);
                if late {
                    message["text"] = serde_json::json!(format!(
                        "(late) {}",
                        message["text"].as_str().unwrap_or_default()
                    ));
                }
                let to = crate::slack::reply::Destination::Post {
                    channel: channel.unwrap_or_default(),
                };
                crate::slack::reply::deliver(slack, &to, message).await;
                finish("sent", event, None).await;
            }
        }
        Run::Delivered
    }

    /// A channel run: every member's principal, the creator among them,
    /// and the answer if all of them get the same one. `Ok(Err((reason,
    /// creator's Slack id)))` when it may not be posted.
    ///
    /// # Errors
    /// Slack, the directory or the audit trail failing now (retry later).
    async fn for_channel(
        &self,
        slack: &crate::slack::Slack,
        s: &Subscription,
        now: i64,
    ) -> Result<Result<Answer, (String, Option<String>)>, String> {
        use crate::slack::api::SlackApiError;
        let channel = s.slack_channel.as_deref().unwrap_or_default();
        let max = self.settings.max_channel_members;
        let members = match slack.api.members(channel, max + 1).await {
            Ok(m) => m,
            Err(SlackApiError::Refused { code, .. }) => {
                return Ok(Err((
                    format!(
                        "Slack would not list the channel's members ({code}); is steward in the channel?"
                    ),
                    None,
                )));
            }
            Err(e) => return Err(e.to_string()),
        };
        let bot = slack.api.bot_user().await.map_err(|e| e.to_string())?;
        let members: Vec<String> = members.into_iter().filter(|m| *m != bot).collect();
        if members.len() > max {
            return Ok(Err((
                format!(
                    "the channel has more than {max} members, too many to check each one's access"
                ),
                None,
            )));
        }
        let mut principals: Vec<Principal> = Vec::new();
        let mut owner = None;
        for m in &members {
            match crate::slack::reply::resolve(slack, &self.sessions, m, now).await? {
                Some(p) => {
                    if p.user == s.user {
                        owner = Some(m.clone());
                    }
                    if !principals.iter().any(|q| q.user == p.user) {
                        principals.push(p);
                    }
                }
                None => {
                    return Ok(Err((
                        "a member of the channel is not known to steward, so I can't tell what they may see".into(),
                        None,
                    )));
                }
            }
        }
        if owner.is_none() {
            return Ok(Err((
                "you are not a member of the channel any more".into(),
                None,
            )));
        }
        let mut first: Option<(Answer, serde_json::Value)> = None;
        for p in &principals {
            let answer = self
                .orchestrator
                .ask_caused(p, &delivery_cause(s), None, &s.question)
                .await
                .map_err(|e| e.to_string())?;
            let shown = content(&answer);
            match &first {
                None => first = Some((answer, shown)),
                Some((_, seen)) if *seen == shown => {}
                Some(_) => {
                    return Ok(Err((
                        "members of the channel may see different data for this question".into(),
                        owner,
                    )));
                }
            }
        }
        Ok(first
            .map(|(a, _)| a)
            .ok_or_else(|| ("the channel has no members".to_owned(), owner)))
    }

    /// Tells the recipient a run sent no data by Slack direct message (to
    /// `to`, else the subscription's Slack user); the inbox keeps the
    /// notice as the delivery.
    async fn send_notice(&self, s: &Subscription, to: Option<String>, text: &str) {
        let Some(slack) = &self.slack else { return };
        if let Some(user) = to.or_else(|| s.slack_user.clone()) {
            let to = crate::slack::reply::Destination::Post { channel: user };
            crate::slack::reply::deliver(slack, &to, crate::slack::blocks::notice(text)).await;
        }
    }
}

/// A delivery's runs are attributed to the subscriber who created it, with
/// the subscription (its creation event) as parent: a channel member's
/// answer is computed under that member's grants but recorded as the
/// subscriber's delivery, not as a question the member asked.
fn delivery_cause(s: &Subscription) -> Cause {
    Cause {
        user: s.user.clone(),
        channel: Channel::Subscription,
        purpose: "delivery".into(),
        parent: Some(s.id.clone()),
    }
}
