//! Validating OpenID Connect Back-Channel Logout 1.0 logout tokens (§2.4,
//! §2.6), which an identity provider POSTs to `/auth/backchannel-logout` to
//! end a user's sessions. Validation is done here, not by a library that
//! treats the token like an ID token, because the rules differ:
//!
//! 1. the JOSE header's `typ` is `logout+jwt` and `alg` is an asymmetric
//!    algorithm (never `none`, never an HMAC keyed with public material);
//! 2. the signature verifies with the provider's key (JWKS, by `kid`);
//! 3. `iss` is the provider, `aud` contains this client, `iat` is present and
//!    neither in the future nor older than the allowed age, `exp` (if present)
//!    has not passed;
//! 4. `events` holds the member `http://schemas.openid.net/event/backchannel-logout`
//!    whose value is a JSON object;
//! 5. `sid`, `sub` or both are present; `nonce` is absent (so an ID token
//!    can never be replayed as a logout token); `jti` is present, so callers
//!    can refuse a replay.
//!
//! The JWT checks shared with access tokens are in [`super::jwt`].

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

pub use super::jwt::LEEWAY_SECS;
use super::jwt::{self, JwtError};

/// The back-channel logout event type.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What a valid logout token asks to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The provider's session id: end the sessions started in it.
    pub sid: Option<String>,
    /// The subject: without `sid`, end all of the subject's sessions.
    pub sub: Option<String>,
    /// The token id, for replay detection.
    pub jti: String,
}

/// Why a logout token is refused (safe to log: no token material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// Not a JWS compact serialization, or an algorithm outside the allowed set.
    #[error("not a signed JWT with an accepted algorithm")]
    Malformed,
    /// `typ` is not `logout+jwt`.
    #[error("the token's typ is not logout+jwt")]
    WrongType,
    /// No key in the provider's JWKS matches.
    #[error("no provider key matches the token")]
    UnknownKey,
    /// Signature, issuer, audience or expiry check failed.
    #[error("the token failed validation: {0}")]
    Invalid(String),
    /// `iat` is missing, in the future, or too old.
    #[error("the token's iat is missing, in the future or too old")]
    IssuedAt,
    /// The back-channel logout event is missing or not an object.
    #[error("the token does not carry the back-channel logout event")]
    NoEvent,
    /// Neither `sid` nor `sub`.
    #[error("the token names neither sid nor sub")]
    NoSubject,
    /// A `nonce` claim is present (forbidden in logout tokens).
    #[error("the token carries a nonce")]
    Nonce,
    /// No `jti`.
    #[error("the token has no jti")]
    NoJti,
}

#[derive(Debug, Deserialize)]
struct Claims {
    iat: Option<i64>,
    jti: Option<String>,
    sid: Option<String>,
    sub: Option<String>,
    nonce: Option<serde_json::Value>,
    events: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Validates `token` from `issuer` for the client `audience` at `now` (Unix
/// seconds); `max_age_secs` bounds how old `iat` may be.
///
/// # Errors
/// [`LogoutTokenError`] naming the first rule the token breaks.
pub fn validate(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    audience: &str,
    now: i64,
    max_age_secs: i64,
) -> Result<LogoutRequest, LogoutTokenError> {
    let claims: Claims = jwt::verify(token, keys, &["logout+jwt"], issuer, audience, false)
        .map_err(|e| match e {
            JwtError::Malformed => LogoutTokenError::Malformed,
            JwtError::WrongType => LogoutTokenError::WrongType,
            JwtError::UnknownKey => LogoutTokenError::UnknownKey,
            JwtError::Invalid(why) => LogoutTokenError::Invalid(why),
        })?;
    match claims.iat {
        Some(iat) if iat <= now + LEEWAY_SECS && now - iat <= max_age_secs => {}
        _ => return Err(LogoutTokenError::IssuedAt),
    }
    if !claims
        .events
        .as_ref()
        .and_then(|e| e.get(BACKCHANNEL_LOGOUT_EVENT))
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(LogoutTokenError::NoEvent);
    }
    if claims.nonce.is_some() {
        return Err(LogoutTokenError::Nonce);
    }
    if claims.sid.is_none() && claims.sub.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or(LogoutTokenError::NoJti)?;
    Ok(LogoutRequest {
        sid: claims.sid,
        sub: claims.sub,
        jti,
    })
}

#[cfg(test)]
mod tests;
