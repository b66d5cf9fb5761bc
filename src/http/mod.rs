//! HTTP interface (axum): the chat API, the Metrics API, health and the web page.
//! Each area exports a `router()`; they are merged in [`router`].

mod audit;
mod auth;
mod chat;
mod docs;
pub use audit::parse_time;
pub use chat::check_question;
mod boards;
mod error;
mod health;
mod metrics;
pub mod rate;
mod review;
mod sessions;
mod slack;
mod subscriptions;
pub mod web;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

pub use error::ApiError;

use crate::auth::{DEV_USER_HEADER, DevIdentities};
use crate::orchestrator::Orchestrator;
use crate::policy::Principal;
use crate::settings::Limits;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Answers questions.
    pub orchestrator: Arc<Orchestrator>,
    /// Dev identities.
    pub identities: Arc<DevIdentities>,
    /// Request limits.
    pub limits: Arc<Limits>,
    /// Sign-in sessions.
    pub sessions: crate::session::SessionStore,
    /// The OpenID Provider, when configured.
    pub oidc: Option<Arc<crate::auth::oidc::Provider>>,
    /// Provider groups and OAuth clients → roles (`policies/identity.yaml`).
    pub identity: Arc<crate::auth::identity_map::IdentityMap>,
    /// Web sign-in, when `auth.oidc.redirect_uri` is set.
    pub sso: Option<Arc<crate::auth::sso::Sso>>,
    /// The Slack app, when `slack.enabled`.
    pub slack: Option<Arc<crate::slack::Slack>>,
    /// Dev identity mode (loopback only): the dev header and dev sign-in work.
    pub dev_mode: bool,
    /// The bearer token `/metrics` requires, from `STEWARD_METRICS_TOKEN`
    /// (unset: `/metrics` is open, for a scraper on a private network).
    pub metrics_token: Option<Arc<secrecy::SecretString>>,
    /// Questions per user ([`rate::QuestionLimiter`]).
    pub questions: Arc<rate::QuestionLimiter>,
    /// Answers in flight ([`rate::Admission`]).
    pub admission: Arc<rate::Admission>,
    /// Set once shutdown began: `/readyz` fails so load balancers stop
    /// sending new work while in-flight answers finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// What the review loop's regression run answers.
    pub review: Arc<crate::review::RegressionSets>,
}

/// The session cookie's name (HttpOnly; the token is never readable by scripts).
pub const SESSION_COOKIE: &str = "steward_session";
/// The CSRF cookie's name (readable by the page, echoed in `X-CSRF-Token`).
pub const CSRF_COOKIE: &str = "steward_csrf";
/// The header state-changing requests must carry when signed in by cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The value of cookie `name` in a request, if any.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// 403 `csrf` unless the request's `X-CSRF-Token` is session `id`'s token.
///
/// # Errors
/// [`ApiError`] 403, or 503 when the session store fails.
pub(crate) async fn require_csrf(
    state: &AppState,
    id: &str,
    headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ok = state
        .sessions
        .check_csrf(id, given)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong X-CSRF-Token header",
        ))
    }
}

/// The principal of a session cookie; state-changing requests must also
/// carry the session's CSRF token.
async fn cookie_principal(
    state: &AppState,
    parts: &Parts,
    token: &str,
) -> Result<Principal, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let session = state
        .sessions
        .authenticate(token, now)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "session_expired",
                "your session has ended; sign in again",
            )
        })?;
    let session = match &state.sso {
        Some(sso) => {
            use crate::auth::revalidate::{Revalidated, revalidate};
            let outcome = revalidate(&state.sessions, sso, &state.identity, session, token, now)
                .await
                .map_err(|e| ApiError::internal("session_store", e))?;
            match outcome {
                Revalidated::Current(s) => *s,
                Revalidated::Ended(why) => {
                    return Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "session_expired",
                        why,
                    ));
                }
                Revalidated::Unavailable => {
                    return Err(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "identity_provider",
                        "your roles cannot be confirmed with the identity provider right now; try again shortly",
                    ));
                }
            }
        }
        None => session,
    };
    let safe = matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if !safe {
        require_csrf(state, &session.id, &parts.headers).await?;
    }
    Ok(Principal {
        user: session.user,
        roles: session.roles,
        groups: session.groups,
    })
}

/// Longest accepted bearer token, in bytes.
const MAX_BEARER_BYTES: usize = 16 * 1024;

/// The principal of an `Authorization: Bearer` access token.
async fn bearer_principal(state: &AppState, value: &str) -> Result<Principal, ApiError> {
    let invalid = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            message.to_owned(),
        )
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_BEARER_BYTES)
        .ok_or_else(|| invalid("use Authorization: Bearer <access token>"))?;
    let provider = state
        .oidc
        .as_ref()
        .ok_or_else(|| invalid("bearer tokens need an identity provider (auth.oidc)"))?;
    let bearer = provider.bearer(token).await.map_err(|e| match e {
        crate::auth::oidc::OidcError::Keys(cause) => ApiError::internal("identity_provider", cause),
        _ => invalid("the access token is not valid"),
    })?;
    let principal = match &bearer {
        crate::auth::access_token::Bearer::User { sub, groups, .. } => {
            state.identity.user(sub, groups)
        }
        crate::auth::access_token::Bearer::Client { client_id } => state.identity.client(client_id),
    };
    principal.ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "no_role",
            "this identity maps to no steward role (policies/identity.yaml)",
        )
    })
}

/// 403 unless the principal holds the `admin` capability.
///
/// # Errors
/// [`ApiError`] 403 `forbidden`.
pub(crate) fn require_admin(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    if state
        .orchestrator
        .policy
        .grants(principal)
        .can(crate::policy::Capability::Admin)
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs the admin role",
        ))
    }
}

/// The audit channel of a request: a session cookie is the web chat; a
/// bearer token or the dev header, the API.
pub(crate) fn channel_of(headers: &axum::http::HeaderMap) -> crate::audit::Channel {
    if headers.get(header::AUTHORIZATION).is_none() && cookie(headers, SESSION_COOKIE).is_some() {
        crate::audit::Channel::Web
    } else {
        crate::audit::Channel::Api
    }
}

/// Writes the audit event of a governed action the request took
/// ([`crate::audit::AuditLog::record_action`]); a failure is a 500, so no
/// action is reported done without its event.
pub(crate) async fn record_action(
    state: &AppState,
    principal: &Principal,
    headers: &axum::http::HeaderMap,
    kind: crate::audit::EventKind,
    outcome: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .orchestrator
        .audit
        .record_action(
            principal,
            channel_of(headers),
            kind,
            outcome,
            subject,
            detail,
        )
        .await
        .map(drop)
        .map_err(|e| ApiError::internal("audit", e))
}

/// The authenticated principal of a request.
pub struct CurrentPrincipal(pub Principal);

impl FromRequestParts<AppState> for CurrentPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let value = auth.to_str().unwrap_or_default();
            return bearer_principal(state, value).await.map(CurrentPrincipal);
        }
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            return cookie_principal(state, parts, token)
                .await
                .map(CurrentPrincipal);
        }
        let Some(value) = parts.headers.get(DEV_USER_HEADER) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "name a user with the X-Steward-Dev-User header",
            ));
        };
        let name = value.to_str().unwrap_or_default();
        state
            .identities
            .principal(name)
            .map(CurrentPrincipal)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unknown_user",
                    "that user is not configured",
                )
            })
    }
}

/// All routes.
pub fn router(state: AppState) -> Router {
    let limit = state.limits.max_body_bytes;
    Router::new()
        .merge(web::router())
        .merge(health::router())
        .route("/api/users", get(users))
        .route("/api/me", get(me))
        .merge(auth::router())
        .merge(audit::router())
        .route("/metrics", get(prometheus_metrics))
        .merge(chat::router())
        .merge(metrics::router())
        .merge(docs::router())
        .merge(sessions::router())
        .merge(slack::router())
        .merge(review::router())
        .merge(subscriptions::router())
        .merge(boards::router())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            loopback_host,
        ))
        .layer(axum::middleware::from_fn(track))
        .with_state(state)
}

/// In dev identity mode, which trusts a header naming the user, only
/// loopback `Host` names are served: a remote web page that rebinds its own
/// DNS name to 127.0.0.1 sends its own name as `Host` and is refused, so it
/// cannot act as a dev user from the victim's browser (DNS rebinding).
async fn loopback_host(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if state.dev_mode {
        let host = request
            .headers()
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !is_loopback_host(host) {
            return ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "not_loopback",
                "dev identity mode answers only requests addressed to localhost, 127.0.0.1 or [::1]",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// Whether a `Host` header (with or without port) names this machine's
/// loopback interface: `localhost`, `127.0.0.0/8` or `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Dev users for the web page's picker (names only; loopback dev mode).
async fn users(State(state): State<AppState>) -> Json<Vec<String>> {
    Json(state.identities.names().map(str::to_owned).collect())
}

/// `GET /api/me`: who the request is from — `{"user", "roles", "groups", "admin"}`.
async fn me(
    State(state): State<AppState>,
    CurrentPrincipal(principal): CurrentPrincipal,
) -> Json<serde_json::Value> {
    let admin = require_admin(&state, &principal).is_ok();
    let grants = state.orchestrator.policy.grants(&principal);
    Json(serde_json::json!({
        "user": principal.user,
        "roles": principal.roles,
        "groups": principal.groups,
        "admin": admin,
        "sql": grants.can(crate::policy::Capability::Sql),
        "steward": grants.can(crate::policy::Capability::Steward),
    }))
}

/// `GET /metrics`: operational metrics in the Prometheus text format
/// (counts, latencies and token totals; no users, questions or values).
/// With `STEWARD_METRICS_TOKEN` set, only `Authorization: Bearer <token>`
/// gets them (compared in constant time); anything else is 401.
async fn prometheus_metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if let Some(token) = &state.metrics_token {
        use secrecy::ExposeSecret;
        use subtle::ConstantTimeEq;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        let expected = token.expose_secret().as_bytes();
        let same = given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected));
        if !same {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "/metrics needs the bearer token configured in STEWARD_METRICS_TOKEN",
            )
            .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::prometheus::render(),
    )
        .into_response()
}

/// Counts and times every request by its matched route (`unmatched` for 404s).
async fn track(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    crate::prometheus::http_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod host_tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_hosts_pass() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "127.1.2.3",
            "[::1]:8080",
            "[::1]",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:80",
            "[::2]:80",
            "127.0.0.1.nip.io",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
