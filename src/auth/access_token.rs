//! Validating OAuth 2.0 access tokens that API clients send as
//! `Authorization: Bearer …` (JWT profile, RFC 9068): `typ` `at+jwt`, the
//! provider's key, `iss`, `aud` (steward's API resource), a required `exp`,
//! then who it speaks for: a user (`sub` with `groups`) or a client acting for
//! itself (`client_id` = `sub`, client credentials grant).

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

use super::jwt::{self, JwtError};

/// Who a valid access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    /// A user, with the provider's groups.
    User {
        /// Subject.
        sub: String,
        /// Provider groups.
        groups: Vec<String>,
        /// When the user authenticated (Unix seconds; RFC 9068 §2.2.1 `auth_time`), if stated.
        auth_time: Option<i64>,
    },
    /// An OAuth client acting for itself.
    Client {
        /// Client id.
        client_id: String,
    },
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    client_id: Option<String>,
    groups: Option<Vec<String>>,
    auth_time: Option<i64>,
}

/// Validates an access token from `issuer` for the API `audience`.
///
/// # Errors
/// [`JwtError`] from the shared checks, or `Invalid` when the token names no
/// subject.
pub fn validate(
    token: &str,
    keys: &JwkSet,
    issuer: &str,
    audience: &str,
) -> Result<Bearer, JwtError> {
    let claims: Claims = jwt::verify(token, keys, &["at+jwt"], issuer, audience, true)?;
    match (claims.sub, claims.client_id) {
        (Some(sub), Some(client)) if sub == client && claims.groups.is_none() => {
            Ok(Bearer::Client { client_id: client })
        }
        (Some(sub), _) => Ok(Bearer::User {
            sub,
            groups: claims.groups.unwrap_or_default(),
            auth_time: claims.auth_time,
        }),
        (None, _) => Err(JwtError::Invalid("the token has no subject".into())),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/keys/test-ec-p256.pem");
    const JWKS: &str = include_str!("../../tests/fixtures/keys/test-ec-p256.jwks.json");
    const ISS: &str = "http://idp";
    const AUD: &str = "urn:steward:api";

    fn token(typ: &str, claims: serde_json::Value) -> String {
        let mut h = Header::new(Algorithm::ES256);
        h.typ = Some(typ.into());
        h.kid = Some("k1".into());
        encode(
            &h,
            &claims,
            &EncodingKey::from_ec_pem(KEY.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn check(t: &str) -> Result<Bearer, JwtError> {
        validate(t, &serde_json::from_str(JWKS).unwrap(), ISS, AUD)
    }

    #[test]
    fn users_and_clients_are_told_apart() {
        let exp = chrono::Utc::now().timestamp() + 600;
        let user = token(
            "at+jwt",
            json!({"iss": ISS, "aud": AUD, "exp": exp, "sub": "alice", "client_id": "cli", "groups": ["g"]}),
        );
        assert_eq!(
            check(&user),
            Ok(Bearer::User {
                sub: "alice".into(),
                groups: vec!["g".into()],
                auth_time: None,
            })
        );
        let client = token(
            "application/at+jwt",
            json!({"iss": ISS, "aud": AUD, "exp": exp, "sub": "cli", "client_id": "cli"}),
        );
        assert_eq!(
            check(&client),
            Ok(Bearer::Client {
                client_id: "cli".into()
            })
        );
    }

    #[test]
    fn id_tokens_expired_tokens_and_other_audiences_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let base = json!({"iss": ISS, "aud": AUD, "exp": now + 600, "sub": "alice"});
        assert_eq!(check(&token("JWT", base.clone())), Err(JwtError::WrongType));
        let mut no_exp = base.clone();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert!(matches!(
            check(&token("at+jwt", no_exp)),
            Err(JwtError::Invalid(_))
        ));
        let mut expired = base.clone();
        expired["exp"] = json!(now - 600);
        assert!(matches!(
            check(&token("at+jwt", expired)),
            Err(JwtError::Invalid(_))
        ));
        let mut other = base.clone();
        other["aud"] = json!("steward");
        assert!(matches!(
            check(&token("at+jwt", other)),
            Err(JwtError::Invalid(_))
        ));
        let mut nobody = base;
        nobody.as_object_mut().unwrap().remove("sub");
        assert!(matches!(
            check(&token("at+jwt", nobody)),
            Err(JwtError::Invalid(_))
        ));
        assert_eq!(check("Bearer x"), Err(JwtError::Malformed));
    }
}
