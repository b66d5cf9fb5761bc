//! Answering a Slack question after the request was acknowledged: who is
//! asking ([`resolve`]), the answer under their grants, and its delivery
//! ([`Destination`]).
//!
//! A Slack user becomes a principal only through the identity provider:
//! Slack's `users.info` must report an active human with a confirmed email,
//! and exactly one identity-provider subject must hold that email (verified
//! there too) in the directory written at web sign-in and re-validation
//! ([`crate::session::DirectoryEntry`]), no older than
//! `slack.identity_max_age_secs`. Anyone else gets a polite refusal that
//! says how to be recognised — never anonymous access.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Slack;
use super::api::SlackApiError;
use super::blocks;
use crate::audit::Channel;
use crate::orchestrator::Orchestrator;
use crate::policy::Principal;
use crate::session::SessionStore;
use crate::subscriptions::{self, Target};

/// Where an answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `chat.postMessage` in a thread: direct messages, or channels when
    /// `slack.public_answers` is on.
    Thread {
        /// Channel id.
        channel: String,
        /// The thread's parent `ts`.
        thread_ts: String,
    },
    /// `chat.postEphemeral` in a channel thread, seen only by the asker.
    Ephemeral {
        /// Channel id.
        channel: String,
        /// The asker's Slack user id.
        user: String,
        /// The thread's parent `ts`.
        thread_ts: String,
    },
    /// `chat.postMessage` outside any thread (subscriptions): to a user id
    /// (the direct message with the bot) or a channel id.
    Post {
        /// The Slack user or channel id.
        channel: String,
    },
    /// A slash command's `response_url`.
    ResponseUrl {
        /// The URL (checked against `slack.response_url_prefix`).
        url: String,
        /// Visible to the channel (`in_channel`) or the asker only (`ephemeral`).
        public: bool,
    },
}

/// A question from Slack.
#[derive(Debug, Clone)]
pub struct SlackQuestion {
    /// The asker's Slack user id.
    pub user: String,
    /// The question text, Slack markup removed.
    pub text: String,
    /// steward conversation id (one per Slack thread and user).
    pub conversation: String,
    /// The channel asked in (`None` for a direct message with the bot).
    pub channel: Option<String>,
    /// Where the answer goes.
    pub destination: Destination,
}

/// The principal of Slack user `user` at `now`, or `None` when steward cannot
/// vouch for them.
///
/// # Errors
/// Slack or the session store failing (text for the log, no secrets).
pub async fn resolve(
    slack: &Slack,
    store: &SessionStore,
    user: &str,
    now: i64,
) -> Result<Option<Principal>, String> {
    Ok(resolve_with_tz(slack, store, user, now)
        .await?
        .map(|(principal, _)| principal))
}

/// As [`resolve`], with the user's IANA time zone as Slack gives it, from
/// the same `users.info` call.
///
/// # Errors
/// As [`resolve`].
pub async fn resolve_with_tz(
    slack: &Slack,
    store: &SessionStore,
    user: &str,
    now: i64,
) -> Result<Option<(Principal, Option<String>)>, String> {
    let info = match slack.api.user(user).await {
        Ok(info) => info,
        Err(SlackApiError::Refused { code, .. })
            if code == "user_not_found" || code == "user_not_visible" =>
        {
            return Ok(None);
        }
        Err(e) => return Err(e.to_string()),
    };
    let (true, Some(email)) = (info.active_human, info.verified_email) else {
        return Ok(None);
    };
    let entry = store
        .identity_by_email(&email, now - slack.settings.identity_max_age_secs)
        .await
        .map_err(|e| e.to_string())?;
    Ok(entry.map(|e| (e.into_principal(), info.tz)))
}

/// The refusal for a Slack user steward cannot map to a principal.
pub fn unrecognised(settings: &super::SlackSettings) -> String {
    let how = match &settings.sign_in_url {
        Some(url) => format!("sign in to steward once at {url}"),
        None => "sign in to steward's web chat once".to_owned(),
    };
    format!(
        "Sorry, I can't answer yet: I don't know who you are in steward, and I only answer from data \
         you're allowed to see. Please {how} with your company account (the same email as your Slack \
         profile), then ask again."
    )
}

/// Removes Slack markup from message text: user, channel and special
/// mentions (`<@U…>`, `<#C…|name>`, `<!here>`), links (`<url|label>` →
/// label), and the `&amp;`/`&lt;`/`&gt;` escapes.
pub fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        if !(inner.starts_with('@') || inner.starts_with('!')) {
            let shown = inner.split_once('|').map_or(inner, |(_, label)| label);
            out.push_str(shown.trim_start_matches('#'));
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The request body delivering `message` to `to`.
fn body_for(to: &Destination, mut message: Value) -> (Option<&'static str>, Value) {
    let extra = match to {
        Destination::Thread { channel, thread_ts } => {
            json!({"channel": channel, "thread_ts": thread_ts, "unfurl_links": false, "unfurl_media": false})
        }
        Destination::Ephemeral {
            channel,
            user,
            thread_ts,
        } => json!({"channel": channel, "user": user, "thread_ts": thread_ts}),
        Destination::Post { channel } => {
            json!({"channel": channel, "unfurl_links": false, "unfurl_media": false})
        }
        Destination::ResponseUrl { public, .. } => json!({
            "response_type": if *public { "in_channel" } else { "ephemeral" },
            "replace_original": false,
        }),
    };
    if let (Some(m), Some(e)) = (message.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    let method = match to {
        Destination::Thread { .. } | Destination::Post { .. } => Some("chat.postMessage"),
        Destination::Ephemeral { .. } => Some("chat.postEphemeral"),
        Destination::ResponseUrl { .. } => None,
    };
    (method, message)
}

/// Sends `message` to `to`; failures are logged (there is no one to tell).
pub async fn deliver(slack: &Slack, to: &Destination, message: Value) {
    let (method, body) = body_for(to, message);
    let sent = match (method, to) {
        (Some(m), _) => slack.api.post(m, &body).await,
        (None, Destination::ResponseUrl { url, .. }) => slack.api.respond(url, &body).await,
        (None, _) => Ok(()),
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, "slack: could not deliver the answer");
    }
}

/// Records a feedback button press: `rating` on the answer whose audit
/// event is `event_id`, by Slack user `user`, who must map to the principal
/// that asked (else nothing is stored). The outcome goes to `to`, seen by
/// the presser only.
pub async fn feedback(
    slack: Arc<Slack>,
    store: SessionStore,
    orchestrator: Arc<Orchestrator>,
    user: String,
    event_id: String,
    rating: crate::review::Rating,
    to: Destination,
) {
    let now = chrono::Utc::now().timestamp();
    let text = match resolve(&slack, &store, &user, now).await {
        Ok(Some(principal)) => {
            let req = crate::review::FeedbackRequest {
                event_id,
                rating,
                comment: None,
                corrected_sql: None,
            };
            let review = crate::review::ReviewStore::new(store.clone());
            match crate::review::submit_feedback(
                &orchestrator,
                &review,
                &principal,
                Channel::Slack,
                req,
            )
            .await
            {
                Ok(out) if out.candidate_id.is_some() => {
                    "Thanks. Your feedback was sent to the data stewards for review.".to_owned()
                }
                Ok(_) => "Thanks for the feedback.".to_owned(),
                Err(e @ crate::review::ReviewError::NotFound(_)) => format!("Not recorded: {e}."),
                Err(e) => {
                    tracing::warn!(error = %e, "slack: feedback not recorded");
                    "Sorry, I couldn't record that just now.".to_owned()
                }
            }
        }
        Ok(None) => unrecognised(&slack.settings),
        Err(e) => {
            tracing::warn!(error = %e, "slack: could not identify the presser");
            "Sorry, I couldn't check who you are just now. Please try again in a minute.".to_owned()
        }
    };
    deliver(&slack, &to, blocks::notice(&text)).await;
}

/// Answers `q` and delivers the answer (or the reason there is none). The
/// asker's questions count against the same per-user rate as the web chat's
/// and the Metrics API's (`questions`).
pub async fn answer(
    slack: Arc<Slack>,
    store: SessionStore,
    orchestrator: Arc<Orchestrator>,
    questions: Arc<crate::http::rate::QuestionLimiter>,
    max_question_chars: usize,
    q: SlackQuestion,
) {
    let now = chrono::Utc::now().timestamp();
    let (principal, tz) = match resolve_with_tz(&slack, &store, &q.user, now).await {
        Ok(Some(asker)) => asker,
        Ok(None) => {
            tracing::info!("slack: question from an unrecognised user refused");
            let text = unrecognised(&slack.settings);
            return deliver(&slack, &q.destination, blocks::notice(&text)).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "slack: could not identify the asker");
            let text =
                "Sorry, I couldn't check who you are just now. Please try again in a minute.";
            return deliver(&slack, &q.destination, blocks::notice(text)).await;
        }
    };
    let question = match crate::http::check_question(&q.text, max_question_chars) {
        Ok(question) => question,
        Err(e) => return deliver(&slack, &q.destination, blocks::notice(&e.message)).await,
    };
    if let Err(e) = questions.check(&principal.user) {
        let text = format!(
            "Sorry, you are asking faster than this deployment allows. Please ask again in about {} seconds.",
            e.retry_after.unwrap_or(1)
        );
        return deliver(&slack, &q.destination, blocks::notice(&text)).await;
    }
    if let Some(request) = subscriptions::from_chat(&orchestrator.semantic, question, None) {
        // The schedule is read in the asker's Slack time zone (UTC when Slack gives none).
        let request = request.and_then(|mut req| {
            req.timezone = tz;
            if req.target == Some(Target::Channel) {
                req.slack_channel = Some(q.channel.clone().ok_or(
                    "ask for a channel subscription in the channel it should be posted to",
                )?);
            } else {
                req.target = Some(Target::Slack);
                req.slack_user = Some(q.user.clone());
            }
            Ok(req)
        });
        let answer = subscriptions::answer_request(
            &subscriptions::SubscriptionStore::new(store.clone()),
            &orchestrator.semantic,
            subscriptions::Actor {
                principal: &principal,
                channel: Channel::Slack,
                audit: &orchestrator.audit,
            },
            request,
            max_question_chars,
            true,
            now,
        )
        .await;
        return deliver(&slack, &q.destination, blocks::render(&answer)).await;
    }
    let answer = match orchestrator
        .ask_in(&principal, Channel::Slack, &q.conversation, question)
        .await
    {
        Ok(a) => a,
        Err(crate::orchestrator::AskError::Overloaded { retry_after_secs }) => {
            let text = format!(
                "Sorry, I'm busy answering other questions. Please ask again in about {retry_after_secs} seconds."
            );
            return deliver(&slack, &q.destination, blocks::notice(&text)).await;
        }
        Err(e) => {
            tracing::error!(error = %e, "slack: audit trail unavailable; answer withheld");
            let text = "Sorry, I can't answer right now: I could not record the question in the audit trail.";
            return deliver(&slack, &q.destination, blocks::notice(text)).await;
        }
    };
    tracing::info!(user = %principal.user, kind = ?answer.kind, "slack: answered");
    deliver(&slack, &q.destination, blocks::render(&answer)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_markup_is_removed_from_questions() {
        assert_eq!(
            plain_text("<@U0BOT> what was DAU &amp; WAU in <#C123|general>?"),
            "what was DAU & WAU in general?"
        );
        assert_eq!(
            plain_text("<!here> see <https://x.example|the wiki> and <https://y.example>"),
            "see the wiki and https://y.example"
        );
        assert_eq!(plain_text("a &lt;b&gt; <unclosed"), "a <b> <unclosed");
        assert_eq!(plain_text("   "), "");
    }

    #[test]
    fn each_destination_gets_its_fields() {
        let msg = blocks::notice("hi");
        let (m, b) = body_for(
            &Destination::Ephemeral {
                channel: "C1".into(),
                user: "U1".into(),
                thread_ts: "1.2".into(),
            },
            msg.clone(),
        );
        assert_eq!(m, Some("chat.postEphemeral"));
        assert_eq!(
            (&b["user"], &b["thread_ts"], &b["text"]),
            (&json!("U1"), &json!("1.2"), &json!("hi"))
        );
        let (m, b) = body_for(
            &Destination::ResponseUrl {
                url: "https://hooks.slack.com/x".into(),
                public: false,
            },
            msg,
        );
        assert_eq!((m, &b["response_type"]), (None, &json!("ephemeral")));
    }
}
