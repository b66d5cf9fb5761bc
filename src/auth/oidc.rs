//! The OpenID Provider as steward's relying party sees it: settings, the
//! provider's signing keys (discovered from `{issuer}/.well-known/openid-configuration`,
//! cached, refreshed when a token names an unknown `kid`), and back-channel
//! logout requests checked against them (OpenID Connect Discovery 1.0,
//! Back-Channel Logout 1.0).

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

use super::access_token::{self, Bearer};
use super::jwt::JwtError;
use super::logout_token::{self, LogoutRequest, LogoutTokenError};
use crate::dedupe::Dedupe;

/// `[auth.oidc]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The provider's issuer URL (its discovery document lives below it).
    pub issuer: String,
    /// steward's client id at the provider (the `aud` of its tokens).
    pub client_id: String,
    /// Oldest accepted logout token, seconds since its `iat`.
    #[serde(default = "default_max_age")]
    pub logout_token_max_age_secs: i64,
    /// The audience (resource) of access tokens for steward's API.
    #[serde(default = "default_api_audience")]
    pub api_audience: String,
    /// steward's sign-in callback as registered at the provider
    /// (`https://steward.example.com/auth/callback`); unset: no web sign-in.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Where the provider sends a user after signing out (registered there too).
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// A signed-in session's roles are re-validated with the provider (refresh
    /// token) once they are this old (seconds; see [`super::revalidate`]).
    #[serde(default = "default_revalidate_after")]
    pub revalidate_after_secs: i64,
}

fn default_revalidate_after() -> i64 {
    300
}

impl OidcSettings {
    /// Settings for `issuer` and `client_id`, everything else at its default
    /// (no web sign-in until `redirect_uri` is set).
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> OidcSettings {
        OidcSettings {
            issuer: issuer.into(),
            client_id: client_id.into(),
            logout_token_max_age_secs: default_max_age(),
            api_audience: default_api_audience(),
            redirect_uri: None,
            post_logout_redirect_uri: None,
            revalidate_after_secs: default_revalidate_after(),
        }
    }

    /// These settings with web sign-in at `base` (`{base}/auth/callback`,
    /// and back to `{base}/` after signing out).
    pub fn with_web_sign_in(self, base: &str) -> OidcSettings {
        OidcSettings {
            redirect_uri: Some(format!("{base}/auth/callback")),
            post_logout_redirect_uri: Some(format!("{base}/")),
            ..self
        }
    }
}

fn default_max_age() -> i64 {
    300
}

fn default_api_audience() -> String {
    "urn:steward:api".into()
}

/// Why the provider's keys could not be used, or a logout token was refused.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// Discovery or the JWKS could not be fetched or read.
    #[error("the identity provider's keys are unavailable: {0}")]
    Keys(String),
    /// The logout token is invalid.
    #[error(transparent)]
    Token(#[from] LogoutTokenError),
    /// The logout token's `jti` was seen before.
    #[error("the logout token was already used")]
    Replay,
    /// The access token is invalid.
    #[error("the access token is not valid")]
    Bearer(JwtError),
}

/// Keys are refetched after this long.
const KEYS_TTL: Duration = Duration::from_secs(600);
/// An unknown `kid` refetches keys at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(30);

/// The configured provider.
pub struct Provider {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: RwLock<Option<(Instant, JwkSet)>>,
    seen: Dedupe,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Provider {
    /// A provider client; nothing is fetched until keys are needed.
    pub fn new(settings: OidcSettings) -> Provider {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        let ttl = Duration::from_secs(settings.logout_token_max_age_secs.unsigned_abs() + 120);
        Provider {
            settings,
            http,
            keys: RwLock::new(None),
            seen: Dedupe::new(ttl, 100_000),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Keys(format!("GET {url}: {}", e.without_url())))?;
        if !resp.status().is_success() {
            return Err(OidcError::Keys(format!(
                "GET {url}: HTTP {}",
                resp.status()
            )));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| OidcError::Keys(e.without_url().to_string()))?;
        if bytes.len() > 1024 * 1024 {
            return Err(OidcError::Keys(format!("{url}: response too large")));
        }
        serde_json::from_slice(&bytes).map_err(|e| OidcError::Keys(format!("{url}: {e}")))
    }

    /// The provider's keys, from cache unless stale (or `refresh` and the
    /// cache is older than [`MIN_REFETCH`]).
    async fn keys(&self, refresh: bool) -> Result<JwkSet, OidcError> {
        if let Some((at, keys)) = self.keys.read().await.as_ref() {
            let age = at.elapsed();
            if age < KEYS_TTL && !(refresh && age >= MIN_REFETCH) {
                return Ok(keys.clone());
            }
        }
        let issuer = self.settings.issuer.trim_end_matches('/');
        let discovery: Discovery = self
            .get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await?;
        if discovery.issuer.trim_end_matches('/') != issuer {
            return Err(OidcError::Keys(
                "the discovery document names another issuer".into(),
            ));
        }
        let keys: JwkSet = self.get_json(&discovery.jwks_uri).await?;
        *self.keys.write().await = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// Runs `check` with the provider's keys, once more with freshly fetched
    /// keys if it reports an unknown key (the provider rotated them).
    async fn with_keys<T, E>(
        &self,
        check: impl Fn(&JwkSet) -> Result<T, E>,
        unknown_key: impl Fn(&E) -> bool,
    ) -> Result<Result<T, E>, OidcError> {
        let first = check(&self.keys(false).await?);
        match first {
            Err(e) if unknown_key(&e) => Ok(check(&self.keys(true).await?)),
            other => Ok(other),
        }
    }

    /// Validates a logout token at `now` (Unix seconds) and refuses replays.
    ///
    /// # Errors
    /// [`OidcError`]: keys unavailable, an invalid token, or a replay.
    pub async fn logout_request(&self, token: &str, now: i64) -> Result<LogoutRequest, OidcError> {
        let s = &self.settings;
        let request = self
            .with_keys(
                |keys| {
                    logout_token::validate(
                        token,
                        keys,
                        &s.issuer,
                        &s.client_id,
                        now,
                        s.logout_token_max_age_secs,
                    )
                },
                |e| *e == LogoutTokenError::UnknownKey,
            )
            .await??;
        if !self.seen.first_time(&request.jti) {
            return Err(OidcError::Replay);
        }
        Ok(request)
    }

    /// Validates a bearer access token for steward's API.
    ///
    /// # Errors
    /// [`OidcError::Keys`] when keys are unavailable, [`OidcError::Bearer`]
    /// for an invalid token.
    pub async fn bearer(&self, token: &str) -> Result<Bearer, OidcError> {
        let s = &self.settings;
        self.with_keys(
            |keys| access_token::validate(token, keys, &s.issuer, &s.api_audience),
            |e| *e == JwtError::UnknownKey,
        )
        .await?
        .map_err(OidcError::Bearer)
    }
}
