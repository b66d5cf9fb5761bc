//! Web sign-in with OpenID Connect: the authorization code flow with PKCE
//! (OpenID Connect Core 1.0 §3.1; RFC 7636) through the openidconnect crate.
//!
//! [`Sso::begin`] makes the provider URL with a fresh `state`, `nonce` and
//! PKCE challenge (recorded in the session database for ten minutes);
//! [`Sso::finish`] takes that record once, redeems the code with the PKCE
//! verifier and the client secret, and has openidconnect verify the ID token
//! against the provider's JWKS (signature, `iss`, `aud`, `nonce`, `exp`).
//! `groups` and `sid` are then read from the verified token.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::core::{CoreIdToken, CoreIdTokenClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    TokenResponse,
};
use tokio::sync::RwLock;

use super::oidc::OidcSettings;
use crate::session::{LoginAttempt, SessionStore};

/// Who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// Subject.
    pub sub: String,
    /// Provider groups.
    pub groups: Vec<String>,
    /// Provider session id, for back-channel logout.
    pub sid: Option<String>,
    /// Email, only when the provider says it is verified.
    pub email: Option<String>,
    /// Refresh token, when the provider issued one (for re-validation).
    pub refresh_token: Option<String>,
    /// When the user authenticated (Unix seconds), from `auth_time`.
    pub auth_time: Option<i64>,
    /// Where the user was going.
    pub return_to: String,
}

/// What a refresh said about a signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    /// Provider groups now.
    pub groups: Vec<String>,
    /// Verified email now.
    pub email: Option<String>,
    /// A rotated refresh token, when the provider issued a new one.
    pub refresh_token: Option<String>,
}

/// Sign-in failures. Messages name the step, never tokens.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    /// Settings are incomplete.
    #[error("single sign-on is not fully configured: {0}")]
    Config(String),
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider failed: {0}")]
    Provider(String),
    /// The callback's state is unknown, used or expired.
    #[error("the sign-in request is unknown or expired; start again")]
    UnknownState,
    /// The provider refused or the ID token did not verify.
    #[error("sign-in failed: {0}")]
    Rejected(String),
    /// The session database failed.
    #[error(transparent)]
    Store(#[from] crate::session::SessionError),
}

/// An error type for openidconnect's HTTP client hook.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

type HttpFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<openidconnect::HttpResponse, HttpError>> + Send>,
>;

async fn call(
    client: reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let mut builder = client
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (name, value) in &parts.headers {
        builder = builder.header(name, value);
    }
    let resp = builder
        .send()
        .await
        .map_err(|e| HttpError(e.without_url().to_string()))?;
    let mut out = openidconnect::http::Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        out = out.header(name, value);
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| HttpError(e.without_url().to_string()))?;
    out.body(bytes.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}

/// The email of verified ID token claims, only if `email_verified` is true.
fn verified_email(claims: &CoreIdTokenClaims) -> Option<String> {
    match (claims.email(), claims.email_verified()) {
        (Some(email), Some(true)) => Some(email.as_str().to_lowercase()),
        _ => None,
    }
}

/// Claims openidconnect's core types do not model, read from an ID token
/// openidconnect has already verified.
struct ExtraClaims {
    groups: Vec<String>,
    sid: Option<String>,
}

impl ExtraClaims {
    fn of(id_token: &CoreIdToken) -> ExtraClaims {
        let raw = id_token.to_string();
        let payload: serde_json::Value = raw
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let groups = payload["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        ExtraClaims {
            groups,
            sid: payload["sid"].as_str().map(str::to_owned),
        }
    }
}

/// How long discovery metadata (and the JWKS inside it) is reused.
const METADATA_TTL: Duration = Duration::from_secs(600);

/// The relying party.
pub struct Sso {
    settings: OidcSettings,
    secret: Option<secrecy::SecretString>,
    http: reqwest::Client,
    /// Discovery document and JWKS, with when they were fetched.
    metadata: RwLock<Option<(std::time::Instant, CoreProviderMetadata)>>,
    /// The provider's `end_session_endpoint` (RP-Initiated Logout 1.0), which
    /// openidconnect's core metadata type does not keep.
    end_session: RwLock<Option<String>>,
}

/// Keeps a `return_to` inside this site: a path, never another origin.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && p.len() <= 512 =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

impl Sso {
    /// A relying party for `settings`; the client secret is read from
    /// `STEWARD_OIDC_CLIENT_SECRET` (never from configuration files).
    pub fn new(settings: OidcSettings) -> Sso {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            // Following redirects from the provider would open an SSRF path.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Sso {
            settings,
            secret: std::env::var("STEWARD_OIDC_CLIENT_SECRET")
                .ok()
                .map(secrecy::SecretString::from),
            http,
            metadata: RwLock::new(None),
            end_session: RwLock::new(None),
        }
    }

    /// openidconnect's HTTP hook over steward's reqwest client (owned, so the
    /// future borrows nothing).
    fn http_client(&self) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture {
        let client = self.http.clone();
        move |req| Box::pin(call(client.clone(), req))
    }

    async fn client(
        &self,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SsoError,
    > {
        let redirect = self
            .settings
            .redirect_uri
            .clone()
            .ok_or_else(|| SsoError::Config("auth.oidc.redirect_uri is not set".into()))?;
        // Bound first: a guard in the match scrutinee would live through the
        // write below and deadlock.
        let cached = self.metadata.read().await.clone();
        let metadata = match cached {
            // Refetched every ten minutes, so rotated signing keys are picked up.
            Some((at, m)) if at.elapsed() < METADATA_TTL => m,
            _ => {
                let issuer = IssuerUrl::new(self.settings.issuer.clone())
                    .map_err(|e| SsoError::Config(format!("auth.oidc.issuer: {e}")))?;
                let http = self.http_client();
                let m = CoreProviderMetadata::discover_async(issuer, &http)
                    .await
                    .map_err(|e| SsoError::Provider(format!("discovery: {e}")))?;
                *self.metadata.write().await = Some((std::time::Instant::now(), m.clone()));
                *self.end_session.write().await = self.discover_end_session().await;
                m
            }
        };
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.secret
                .as_ref()
                .map(|s| ClientSecret::new(secrecy::ExposeSecret::expose_secret(s).to_owned())),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect)
                .map_err(|e| SsoError::Config(format!("auth.oidc.redirect_uri: {e}")))?,
        ))
    }

    /// Starts a sign-in: records the attempt and returns the provider URL.
    ///
    /// # Errors
    /// [`SsoError`] for incomplete settings, an unreachable provider or the store.
    /// With `reauthenticate`, the provider is asked to make the user enter
    /// their credentials again (`prompt=login`, `max_age=0`; step-up for
    /// admin re-runs), so the ID token's `auth_time` is now.
    pub async fn begin(
        &self,
        store: &SessionStore,
        return_to: Option<&str>,
        reauthenticate: bool,
        now: i64,
    ) -> Result<String, SsoError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in ["email", "profile", "groups"] {
            request = request.add_scope(Scope::new(scope.into()));
        }
        if reauthenticate {
            request = request
                .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
                .set_max_age(Duration::ZERO);
        }
        let (url, state, nonce) = request.url();
        store
            .begin_login(
                &LoginAttempt {
                    state: state.secret().clone(),
                    nonce: nonce.secret().clone(),
                    pkce_verifier: verifier.secret().clone(),
                    return_to: safe_return_to(return_to),
                },
                now,
            )
            .await?;
        Ok(url.to_string())
    }

    /// Finishes a sign-in from the callback's `code` and `state`.
    ///
    /// # Errors
    /// [`SsoError::UnknownState`] for an unknown, used or expired state;
    /// [`SsoError::Rejected`] when the code or ID token does not verify.
    pub async fn finish(
        &self,
        store: &SessionStore,
        code: &str,
        state: &str,
        now: i64,
    ) -> Result<SignedIn, SsoError> {
        let attempt = store
            .take_login(state, now)
            .await?
            .ok_or(SsoError::UnknownState)?;
        let client = self.client().await?;
        let http = self.http_client();
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| SsoError::Rejected(format!("code exchange: {e}")))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::Rejected("no ID token".into()))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, &Nonce::new(attempt.nonce.clone()))
            .map_err(|e| SsoError::Rejected(format!("ID token: {e}")))?;
        let extra = ExtraClaims::of(id_token);
        Ok(SignedIn {
            sub: claims.subject().as_str().to_owned(),
            groups: extra.groups,
            sid: extra.sid,
            email: verified_email(claims),
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
            auth_time: claims.auth_time().map(|t| t.timestamp()),
            return_to: attempt.return_to,
        })
    }

    /// Redeems a refresh token (RFC 6749 §6) and reads the refreshed ID
    /// token (OpenID Connect Core §12.2: same `sub`; no nonce). The provider
    /// refusing ([`SsoError::Rejected`]: revoked grant, disabled user) differs
    /// from the provider failing ([`SsoError::Provider`]).
    ///
    /// # Errors
    /// As above; [`SsoError::Config`] for incomplete settings.
    pub async fn refresh(&self, refresh_token: &str, sub: &str) -> Result<Refreshed, SsoError> {
        let client = self.client().await?;
        let http = self.http_client();
        let tokens = client
            .exchange_refresh_token(&RefreshToken::new(refresh_token.to_owned()))
            .map_err(|e| SsoError::Config(e.to_string()))?
            .request_async(&http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    SsoError::Rejected(format!("refresh refused: {}", r.error()))
                }
                other => SsoError::Provider(format!("refresh: {other}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SsoError::Provider("the refresh response has no ID token".into()))?;
        let verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&verifier, |_: Option<&Nonce>| Ok(()))
            .map_err(|e| SsoError::Rejected(format!("refreshed ID token: {e}")))?;
        if claims.subject().as_str() != sub {
            return Err(SsoError::Rejected(
                "the refreshed ID token names another subject".into(),
            ));
        }
        Ok(Refreshed {
            groups: ExtraClaims::of(id_token).groups,
            email: verified_email(claims),
            refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        })
    }

    /// How old a session's roles may get before re-validation (seconds, ≥ 1).
    pub fn revalidate_after_secs(&self) -> i64 {
        self.settings.revalidate_after_secs.max(1)
    }

    /// steward's registered callback URL.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.settings.redirect_uri.as_deref()
    }

    /// Where the provider should send a user after signing out.
    pub fn post_logout_redirect_uri(&self) -> Option<&str> {
        self.settings.post_logout_redirect_uri.as_deref()
    }

    async fn discover_end_session(&self) -> Option<String> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let body = self
            .http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .ok()?
            .bytes()
            .await
            .ok()?;
        let doc: serde_json::Value = serde_json::from_slice(&body).ok()?;
        doc["end_session_endpoint"].as_str().map(str::to_owned)
    }

    /// Where to send a user who signs out: the provider's end-session
    /// endpoint (RP-initiated logout), if it has one.
    pub async fn end_session_url(&self, post_logout: Option<&str>) -> Option<String> {
        let endpoint = self.end_session.read().await.clone()?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id);
        if let Some(p) = post_logout {
            url.query_pairs_mut()
                .append_pair("post_logout_redirect_uri", p);
        }
        Some(url.to_string())
    }
}
