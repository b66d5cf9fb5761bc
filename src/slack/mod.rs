//! Slack: the Events API (`app_mention`, direct messages) and the `/ask`
//! slash command (endpoints in `src/http/slack.rs`).
//!
//! Every request is verified ([`verify`], Slack's "Verifying requests from
//! Slack"): the `X-Slack-Signature` header is `v0=` + hex HMAC-SHA256 (RFC
//! 2104) keyed with the app's signing secret over
//! `v0:{X-Slack-Request-Timestamp}:{raw body}`, compared in constant time; a
//! timestamp more than five minutes from now is refused, and a signature seen
//! before is refused as a replay. Retries are recognised by `event_id`.
//! Requests are acknowledged at once; the answer follows through
//! `response_url` or `chat.postMessage` ([`reply`]), formatted with Block Kit
//! ([`blocks`]). Slack users become principals through the identity provider
//! ([`reply::resolve`]).

pub mod api;
pub mod blocks;
pub mod reply;

use std::path::PathBuf;

use hmac::{Hmac, KeyInit, Mac};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// `[slack]` settings. The signing secret and bot token never live here:
/// they come from `STEWARD_SLACK_SIGNING_SECRET` / `STEWARD_SLACK_BOT_TOKEN`,
/// or from the files named below (container secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// Serve `/slack/events` and `/slack/commands` (otherwise they are 404).
    pub enabled: bool,
    /// Slack's Web API base (tests point it at a local capture server).
    pub api_base_url: String,
    /// `response_url`s must start with this (Slack's are `https://hooks.slack.com/…`).
    pub response_url_prefix: String,
    /// Answers to questions asked in channels are posted in the thread for
    /// everyone (`true`) or shown only to the asker (`false`, the default:
    /// an answer is computed under the asker's grants, which other channel
    /// members may not hold).
    pub public_answers: bool,
    /// A Slack user is recognised through a web sign-in (or re-validation)
    /// no older than this (seconds).
    pub identity_max_age_secs: i64,
    /// Where unrecognised users are sent to sign in once (e.g.
    /// `https://steward.example.com/auth/login`).
    pub sign_in_url: Option<String>,
    /// File holding the signing secret, if not in the environment.
    pub signing_secret_file: Option<PathBuf>,
    /// File holding the bot token (`xoxb-…`), if not in the environment.
    pub bot_token_file: Option<PathBuf>,
    /// Workspace (team) ids served; empty: any workspace the app is installed in.
    pub allowed_teams: Vec<String>,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            enabled: false,
            api_base_url: "https://slack.com/api".into(),
            response_url_prefix: "https://hooks.slack.com/".into(),
            public_answers: false,
            identity_max_age_secs: 7 * 24 * 3600,
            sign_in_url: None,
            signing_secret_file: None,
            bot_token_file: None,
            allowed_teams: Vec::new(),
        }
    }
}

/// A configured Slack app.
pub struct Slack {
    /// Settings.
    pub settings: SlackSettings,
    /// The signing secret (never printed).
    pub signing_secret: SecretString,
    /// The Web API client.
    pub api: api::SlackApi,
}

/// Reads a secret from the environment variable `var`, else from `file`.
fn secret(var: &str, file: Option<&PathBuf>) -> Result<Option<SecretString>, String> {
    if let Ok(v) = std::env::var(var)
        && !v.trim().is_empty()
    {
        return Ok(Some(SecretString::from(v.trim().to_owned())));
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("slack: cannot read {}: {e}", path.display()))?;
    Ok(Some(SecretString::from(text.trim().to_owned())))
}

impl Slack {
    /// The app for `settings`, or `None` when Slack is not enabled.
    ///
    /// # Errors
    /// Enabled without a signing secret or bot token; an unreadable secret
    /// file; a base URL that is not http(s).
    pub fn from_settings(settings: &SlackSettings) -> Result<Option<Slack>, String> {
        if !settings.enabled {
            return Ok(None);
        }
        let signing_secret = secret(
            "STEWARD_SLACK_SIGNING_SECRET",
            settings.signing_secret_file.as_ref(),
        )?
        .ok_or("slack.enabled needs STEWARD_SLACK_SIGNING_SECRET or slack.signing_secret_file")?;
        let bot_token = secret("STEWARD_SLACK_BOT_TOKEN", settings.bot_token_file.as_ref())?
            .ok_or("slack.enabled needs STEWARD_SLACK_BOT_TOKEN or slack.bot_token_file")?;
        for (key, url) in [
            ("api_base_url", &settings.api_base_url),
            ("response_url_prefix", &settings.response_url_prefix),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(format!("slack.{key} must be an http(s) URL"));
            }
        }
        Ok(Some(Slack {
            api: api::SlackApi::new(&settings.api_base_url, bot_token),
            settings: settings.clone(),
            signing_secret,
        }))
    }
}

/// Largest accepted distance between the request timestamp and now, seconds.
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a request is not accepted as Slack's. Messages name the header, never
/// its value or the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackAuthError {
    /// A required header is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("X-Slack-Request-Timestamp is not a Unix time")]
    BadTimestamp,
    /// The timestamp is more than [`MAX_SKEW_SECS`] from now (a replay, or a skewed clock).
    #[error("request timestamp is more than {MAX_SKEW_SECS} s from now")]
    Stale,
    /// The signature is malformed or does not match.
    #[error("X-Slack-Signature does not match")]
    BadSignature,
}

/// Checks a request's signature.
///
/// `timestamp` and `signature` are the raw `X-Slack-Request-Timestamp` and
/// `X-Slack-Signature` header values, `body` the raw request body (before any
/// parsing), `now` the current Unix time in seconds.
///
/// # Errors
/// [`SlackAuthError`] for a stale or malformed timestamp and for a malformed
/// or wrong signature.
pub fn verify(
    signing_secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), SlackAuthError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SlackAuthError::BadTimestamp)?;
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(SlackAuthError::Stale);
    }
    let hex_sig = signature
        .strip_prefix("v0=")
        .ok_or(SlackAuthError::BadSignature)?;
    let given = hex::decode(hex_sig).map_err(|_| SlackAuthError::BadSignature)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(signing_secret).map_err(|_| SlackAuthError::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| SlackAuthError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Slack's published example (api.slack.com, "Verifying requests from Slack").
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_published_test_vector_verifies() {
        assert_eq!(verify(SECRET, TS, BODY, SIG, 1_531_420_618), Ok(()));
        assert_eq!(verify(SECRET, TS, BODY, SIG, 1_531_420_618 + 300), Ok(()));
    }

    #[test]
    fn forged_replayed_and_malformed_requests_fail() {
        let now = 1_531_420_618;
        let mut body = BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify(SECRET, TS, &body, SIG, now),
            Err(SlackAuthError::BadSignature)
        );
        assert_eq!(
            verify(b"another-secret", TS, BODY, SIG, now),
            Err(SlackAuthError::BadSignature)
        );
        assert_eq!(
            verify(SECRET, TS, BODY, SIG, now + 301),
            Err(SlackAuthError::Stale)
        );
        assert_eq!(
            verify(SECRET, TS, BODY, SIG, now - 301),
            Err(SlackAuthError::Stale)
        );
        assert_eq!(
            verify(SECRET, "1531420619", BODY, SIG, now),
            Err(SlackAuthError::BadSignature),
            "the timestamp is signed"
        );
        for bad in ["", "v1=a2114d57", "v0=zz", "v0=", &SIG[..20]] {
            assert_eq!(
                verify(SECRET, TS, BODY, bad, now),
                Err(SlackAuthError::BadSignature),
                "{bad}"
            );
        }
        for bad in ["", "soon", "1e9", "-"] {
            assert_eq!(
                verify(SECRET, bad, BODY, SIG, now),
                Err(SlackAuthError::BadTimestamp),
                "{bad}"
            );
        }
        // Error messages never carry the secret or the signature.
        let e = verify(SECRET, TS, &body, SIG, now).unwrap_err().to_string();
        assert!(!e.contains("8f742231") && !e.contains("a2114d57"));
    }
}
