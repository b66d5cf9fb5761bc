//! Logout tokens signed here with a throwaway P-256 test key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use super::*;

/// A key made for these tests only (tests/fixtures/keys).
const TEST_KEY: &str = include_str!("../../../tests/fixtures/keys/test-ec-p256.pem");
const TEST_JWKS: &str = include_str!("../../../tests/fixtures/keys/test-ec-p256.jwks.json");
const ISS: &str = "http://127.0.0.1:9400";
const AUD: &str = "steward";

fn jwks() -> JwkSet {
    serde_json::from_str(TEST_JWKS).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn good_claims() -> serde_json::Value {
    json!({
        "iss": ISS, "aud": AUD, "iat": now(), "jti": "j-1", "sid": "sid-1", "sub": "alice",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}}
    })
}

fn sign(claims: &serde_json::Value, typ: Option<&str>, kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = typ.map(str::to_owned);
    header.kid = kid.map(str::to_owned);
    encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(TEST_KEY.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn check(token: &str) -> Result<LogoutRequest, LogoutTokenError> {
    validate(token, &jwks(), ISS, AUD, now(), 300)
}

#[test]
fn a_well_formed_logout_token_is_accepted() {
    let ok = check(&sign(&good_claims(), Some("logout+jwt"), Some("k1"))).unwrap();
    assert_eq!(ok.sid.as_deref(), Some("sid-1"));
    assert_eq!(ok.sub.as_deref(), Some("alice"));
    assert_eq!(ok.jti, "j-1");
    // sub alone is enough; a single key needs no kid.
    let mut c = good_claims();
    c.as_object_mut().unwrap().remove("sid");
    assert!(check(&sign(&c, Some("logout+jwt"), None)).is_ok());
}

#[test]
fn each_rule_is_enforced() {
    let with = |f: &dyn Fn(&mut serde_json::Map<String, serde_json::Value>)| {
        let mut c = good_claims();
        f(c.as_object_mut().unwrap());
        sign(&c, Some("logout+jwt"), Some("k1"))
    };
    let cases: Vec<(String, LogoutTokenError)> = vec![
        (
            sign(&good_claims(), Some("JWT"), Some("k1")),
            LogoutTokenError::WrongType,
        ),
        (
            sign(&good_claims(), None, Some("k1")),
            LogoutTokenError::WrongType,
        ),
        (
            sign(&good_claims(), Some("logout+jwt"), Some("other")),
            LogoutTokenError::UnknownKey,
        ),
        (
            with(&|c| {
                c.remove("events");
            }),
            LogoutTokenError::NoEvent,
        ),
        (
            with(&|c| {
                c.insert("events".into(), json!({BACKCHANNEL_LOGOUT_EVENT: "yes"}));
            }),
            LogoutTokenError::NoEvent,
        ),
        (
            with(&|c| {
                c.insert("events".into(), json!({"http://example.com/other": {}}));
            }),
            LogoutTokenError::NoEvent,
        ),
        (
            with(&|c| {
                c.insert("nonce".into(), json!("n"));
            }),
            LogoutTokenError::Nonce,
        ),
        (
            with(&|c| {
                c.remove("sid");
                c.remove("sub");
            }),
            LogoutTokenError::NoSubject,
        ),
        (
            with(&|c| {
                c.remove("jti");
            }),
            LogoutTokenError::NoJti,
        ),
        (
            with(&|c| {
                c.remove("iat");
            }),
            LogoutTokenError::IssuedAt,
        ),
        (
            with(&|c| {
                c.insert("iat".into(), json!(now() - 3600));
            }),
            LogoutTokenError::IssuedAt,
        ),
        (
            with(&|c| {
                c.insert("iat".into(), json!(now() + 3600));
            }),
            LogoutTokenError::IssuedAt,
        ),
    ];
    for (token, want) in cases {
        assert_eq!(check(&token), Err(want.clone()), "{want}");
    }
    for (name, token) in [
        (
            "wrong issuer",
            with(&|c| {
                c.insert("iss".into(), json!("http://evil"));
            }),
        ),
        (
            "wrong audience",
            with(&|c| {
                c.insert("aud".into(), json!("someone-else"));
            }),
        ),
        (
            "expired",
            with(&|c| {
                c.insert("exp".into(), json!(now() - 600));
            }),
        ),
    ] {
        assert!(
            matches!(check(&token), Err(LogoutTokenError::Invalid(_))),
            "{name}"
        );
    }
}

#[test]
fn forged_tokens_are_refused() {
    let good = sign(&good_claims(), Some("logout+jwt"), Some("k1"));
    let parts: Vec<&str> = good.split('.').collect();
    // alg "none" with no signature.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"logout+jwt"}"#);
    let none = format!("{none_header}.{}.", parts[1]);
    assert_eq!(check(&none), Err(LogoutTokenError::Malformed));
    // HS256 keyed with the public key's coordinates (algorithm confusion).
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("logout+jwt".into());
    header.kid = Some("k1".into());
    let hs = encode(
        &header,
        &good_claims(),
        &EncodingKey::from_secret(b"5gbVZtuk66riRSQEM1jYyg1KlOX4T8r7ogjzKoQA6Uk"),
    )
    .unwrap();
    assert_eq!(check(&hs), Err(LogoutTokenError::Malformed));
    // A payload swapped under a valid signature.
    let mut other = good_claims();
    other["sub"] = json!("bob");
    let swapped_payload = sign(&other, Some("logout+jwt"), Some("k1"));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        swapped_payload.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert!(matches!(check(&forged), Err(LogoutTokenError::Invalid(_))));
    for junk in ["", "a.b", "a.b.c", &"x".repeat(10_000)] {
        assert_eq!(check(junk), Err(LogoutTokenError::Malformed), "{junk:.20}");
    }
}
