//! Slack: verifying that a request came from Slack (retries are recognised
//! with [`crate::dedupe::Dedupe`] by `event_id`). The Events API and `/ask`
//! endpoints build on these.
//!
//! Verification follows Slack's "Verifying requests from Slack": the
//! `X-Slack-Signature` header is `v0=` + hex HMAC-SHA256 (RFC 2104) keyed with
//! the app's signing secret over `v0:{X-Slack-Request-Timestamp}:{raw body}`,
//! compared in constant time; a timestamp more than five minutes from now is
//! refused, so a captured request cannot be replayed later.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

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
