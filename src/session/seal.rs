//! Sealing a session's refresh token under its cookie token.
//!
//! The key is HKDF-SHA256 (RFC 5869) of the cookie token (salt
//! `steward-session-v1`, info `refresh-token`); the cipher is AES-256-GCM with
//! a random 96-bit nonce (NIST SP 800-38D), the session id as associated data.
//! Sealed form: base64url(nonce ‖ ciphertext ‖ tag). Only a request carrying
//! the cookie can open it, so the session database alone yields no usable
//! refresh tokens. Implemented with aws-lc-rs (already linked for TLS and JWTs).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngExt;

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn key(cookie_token: &str) -> Option<LessSafeKey> {
    let prk = Salt::new(HKDF_SHA256, b"steward-session-v1").extract(cookie_token.as_bytes());
    let okm = prk.expand(&[b"refresh-token"], Len(32)).ok()?;
    let mut bytes = [0u8; 32];
    okm.fill(&mut bytes).ok()?;
    Some(LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &bytes).ok()?,
    ))
}

/// Seals `secret` for session `session_id` under `cookie_token`; `None` only
/// if the cipher fails.
pub(super) fn seal(cookie_token: &str, session_id: &str, secret: &str) -> Option<String> {
    let key = key(cookie_token)?;
    let nonce_bytes: [u8; NONCE_LEN] = rand::rng().random();
    let mut buf = secret.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(session_id.as_bytes()),
        &mut buf,
    )
    .ok()?;
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buf);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Opens what [`seal`] made; `None` for a wrong token, session id or a
/// tampered value.
pub(super) fn open(cookie_token: &str, session_id: &str, sealed: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < NONCE_LEN {
        return None;
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let key = key(cookie_token)?;
    let mut buf = rest.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).ok()?,
            Aad::from(session_id.as_bytes()),
            &mut buf,
        )
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_cookie_and_session_open_a_sealed_token() {
        let sealed = seal("cookie-a", "s1", "refresh-123").unwrap();
        assert!(!sealed.contains("refresh-123"));
        assert_eq!(
            open("cookie-a", "s1", &sealed).as_deref(),
            Some("refresh-123")
        );
        assert_eq!(open("cookie-b", "s1", &sealed), None);
        assert_eq!(open("cookie-a", "s2", &sealed), None);
        // Fresh nonce each time.
        assert_ne!(seal("cookie-a", "s1", "refresh-123").unwrap(), sealed);
        // Any flipped byte fails authentication.
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(open("cookie-a", "s1", &URL_SAFE_NO_PAD.encode(raw)), None);
        assert_eq!(open("cookie-a", "s1", "!!"), None);
        assert_eq!(open("cookie-a", "s1", ""), None);
    }
}
