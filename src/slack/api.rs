//! The few Slack Web API methods steward calls (<https://api.slack.com/methods>):
//! `users.info` (to learn a user's verified email), `conversations.members`
//! and `auth.test` (who reads a channel, and which member is steward's own
//! bot), `chat.postMessage`, `chat.postEphemeral`, and posting to a slash
//! command's `response_url`.
//! Requests carry the bot token as `Authorization: Bearer`; redirects are not
//! followed; responses over 1 MB are refused. Errors name the method and
//! Slack's error code, never the token.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// Largest Slack response read, bytes.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a Slack call failed.
#[derive(Debug, thiserror::Error)]
pub enum SlackApiError {
    /// Slack could not be reached, or answered with an HTTP error.
    #[error("slack {method}: {reason}")]
    Http {
        /// The API method or "response_url".
        method: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// Slack answered `{"ok": false, "error": …}`.
    #[error("slack {method}: {code}")]
    Refused {
        /// The API method.
        method: &'static str,
        /// Slack's error code (`user_not_found`, `not_in_channel`, …).
        code: String,
    },
}

/// A Slack user as far as identity goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackUser {
    /// The email, present only when Slack says it is confirmed.
    pub verified_email: Option<String>,
    /// Deleted (deactivated) users and bots are never principals.
    pub active_human: bool,
    /// The user's IANA time zone (`tz`), when Slack gives one.
    pub tz: Option<String>,
}

/// A Web API client with the bot token.
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    /// The bot's own user id, from the first successful `auth.test`: a
    /// token's bot never changes, so later channel runs do not ask again.
    bot: tokio::sync::OnceCell<String>,
}

impl SlackApi {
    /// A client for `base` (`https://slack.com/api`).
    pub fn new(base: &str, token: SecretString) -> SlackApi {
        SlackApi {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_owned(),
            token,
            bot: tokio::sync::OnceCell::new(),
        }
    }

    async fn read(
        method: &'static str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, SlackApiError> {
        let http = |reason: String| SlackApiError::Http { method, reason };
        let resp = resp.map_err(|e| http(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(http(format!("HTTP {}", resp.status().as_u16())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(http("response too large".into()));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| http(e.without_url().to_string()))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(http("response too large".into()));
        }
        serde_json::from_slice(&body).map_err(|_| http("response is not JSON".into()))
    }

    fn check(method: &'static str, v: Value) -> Result<Value, SlackApiError> {
        if v["ok"].as_bool() == Some(true) {
            Ok(v)
        } else {
            let code: String = v["error"]
                .as_str()
                .unwrap_or("unknown_error")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            Err(SlackApiError::Refused { method, code })
        }
    }

    /// `users.info`: whether `user` is an active human, and their email if
    /// Slack has confirmed it (`is_email_confirmed`; needs `users:read.email`).
    ///
    /// # Errors
    /// [`SlackApiError`] when Slack fails or refuses.
    pub async fn user(&self, user: &str) -> Result<SlackUser, SlackApiError> {
        let v = self.get("users.info", &[("user", user)]).await?;
        let u = &v["user"];
        let active_human = u["deleted"].as_bool() != Some(true)
            && u["is_bot"].as_bool() != Some(true)
            && u["id"].as_str() == Some(user);
        let confirmed = u["is_email_confirmed"].as_bool() == Some(true);
        let verified_email = u["profile"]["email"]
            .as_str()
            .filter(|e| confirmed && e.contains('@'))
            .map(|e| e.trim().to_lowercase());
        Ok(SlackUser {
            verified_email,
            active_human,
            tz: u["tz"].as_str().map(str::to_owned),
        })
    }

    /// GETs `method` with `query`; the checked JSON reply.
    async fn get(
        &self,
        method: &'static str,
        query: &[(&str, &str)],
    ) -> Result<Value, SlackApiError> {
        let mut url = url::Url::parse(&format!("{}/{method}", self.base)).map_err(|e| {
            SlackApiError::Http {
                method,
                reason: e.to_string(),
            }
        })?;
        url.query_pairs_mut().extend_pairs(query);
        let resp = self
            .http
            .get(url)
            .bearer_auth(self.token.expose_secret())
            .send()
            .await;
        Self::check(method, Self::read(method, resp).await?)
    }

    /// `conversations.members`: the user ids in `channel`, following
    /// `response_metadata.next_cursor`, but never more than `max + 1` ids
    /// (enough to tell the channel is too large).
    ///
    /// # Errors
    /// [`SlackApiError`] when Slack fails or refuses (`channel_not_found`,
    /// `not_in_channel` when the bot was not added).
    pub async fn members(&self, channel: &str, max: usize) -> Result<Vec<String>, SlackApiError> {
        let mut out = Vec::new();
        let mut cursor = String::new();
        let limit = (max + 1).clamp(1, 1000).to_string();
        loop {
            let v = self
                .get(
                    "conversations.members",
                    &[("channel", channel), ("limit", &limit), ("cursor", &cursor)],
                )
                .await?;
            out.extend(
                v["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_owned)),
            );
            cursor = v["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if cursor.is_empty() || out.len() > max {
                return Ok(out);
            }
        }
    }

    /// `auth.test`: the user id of steward's own bot, asked once per
    /// client (a failure is not remembered; the next call asks again).
    ///
    /// # Errors
    /// [`SlackApiError`] when Slack fails or refuses.
    pub async fn bot_user(&self) -> Result<String, SlackApiError> {
        self.bot
            .get_or_try_init(|| async {
                let v = self.get("auth.test", &[]).await?;
                v["user_id"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or(SlackApiError::Refused {
                        method: "auth.test",
                        code: "no_user_id".into(),
                    })
            })
            .await
            .cloned()
    }

    /// Calls a JSON-bodied Web API method (`chat.postMessage`, `chat.postEphemeral`).
    ///
    /// # Errors
    /// [`SlackApiError`] when Slack fails or refuses.
    pub async fn post(&self, method: &'static str, body: &Value) -> Result<(), SlackApiError> {
        let resp = self
            .http
            .post(format!("{}/{method}", self.base))
            .bearer_auth(self.token.expose_secret())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await;
        Self::check(method, Self::read(method, resp).await?).map(|_| ())
    }

    /// Posts to a slash command's `response_url` (no token: the URL is the credential).
    ///
    /// # Errors
    /// [`SlackApiError`] when the hook fails.
    pub async fn respond(&self, response_url: &str, body: &Value) -> Result<(), SlackApiError> {
        let resp = self
            .http
            .post(response_url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| SlackApiError::Http {
                method: "response_url",
                reason: e.without_url().to_string(),
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(SlackApiError::Http {
                method: "response_url",
                reason: format!("HTTP {}", resp.status().as_u16()),
            })
        }
    }
}
