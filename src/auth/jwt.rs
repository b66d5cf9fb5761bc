//! Signed-JWT checks shared by logout tokens and access tokens: an explicit
//! `typ`, an asymmetric algorithm (never `none`, never HMAC — a verifier
//! keyed with a public key must not accept MACs), the provider key named by
//! `kid` (or its only key), signature, `iss`, `aud` and, when present or
//! required, `exp` (jsonwebtoken, aws-lc-rs backend; RFC 7519, RFC 8725 §3.1).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::de::DeserializeOwned;

/// Allowed clock skew, seconds.
pub const LEEWAY_SECS: i64 = 60;

/// Algorithms accepted from an identity provider.
pub const ACCEPTED: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// Why a JWT failed the shared checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Not a JWS compact serialization, or an algorithm outside [`ACCEPTED`].
    Malformed,
    /// `typ` is not one of the expected types.
    WrongType,
    /// No provider key matches.
    UnknownKey,
    /// Signature, issuer, audience or expiry failed (jsonwebtoken's message).
    Invalid(String),
}

/// Verifies `token` and returns its claims. `types` are the accepted `typ`
/// values (case-insensitive, with or without `application/`).
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &JwkSet,
    types: &[&str],
    issuer: &str,
    audience: &str,
    require_exp: bool,
) -> Result<T, JwtError> {
    let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
    if !ACCEPTED.contains(&header.alg) {
        return Err(JwtError::Malformed);
    }
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        let t = t.strip_prefix("application/").unwrap_or(&t);
        types.contains(&t)
    });
    if !typ_ok {
        return Err(JwtError::WrongType);
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(JwtError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| JwtError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    if require_exp {
        validation.set_required_spec_claims(&["iss", "aud", "exp"]);
    } else {
        validation.set_required_spec_claims(&["iss", "aud"]);
    }
    validation.validate_exp = true;
    validation.leeway = LEEWAY_SECS.unsigned_abs();
    decode::<T>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|e| JwtError::Invalid(e.to_string()))
}
