//! Identity endpoints.
//!
//! - `GET /auth/login?return_to=/path[&reauth=1]` → 303 to the provider (code
//!   flow + PKCE; `reauth` asks for the credentials again: `prompt=login`).
//! - `GET /auth/callback?code=&state=` → verifies, maps groups to roles
//!   (`policies/identity.yaml`), starts a server-side session: cookie
//!   `steward_session` (random token; `HttpOnly`, `SameSite=Lax`, `Secure`
//!   unless the callback is on loopback) and `steward_csrf` (echoed in
//!   `X-CSRF-Token` on state-changing requests) → 303 to `return_to`.
//! - `POST /auth/logout` (CSRF-checked) → revokes the session, clears the
//!   cookies, 303 to the provider's end-session endpoint (RP-initiated logout)
//!   or `/`; with `Accept: application/json`, 200 `{"next": URL}` instead.
//! - `GET /auth/config` → how to sign in (mode, SSO, dev users).
//! - `POST /auth/dev-login` `{"user": NAME}` (dev mode only) → a session for a
//!   dev user, as the web chat's picker starts it.
//! - `POST /auth/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0,
//!   form field `logout_token`): every session started in the provider session
//!   (`sid`), or of the user (`sub`), ends at once; `Cache-Control: no-store` (§2.8).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::{ApiError, AppState, CSRF_COOKIE, SESSION_COOKIE, cookie, require_csrf};
use crate::auth::oidc::OidcError;
use crate::auth::sso::SsoError;
use crate::session::{DirectoryEntry, NewSession};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/backchannel-logout", post(backchannel_logout))
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", post(logout))
        .route("/auth/config", get(config))
        .route("/auth/dev-login", post(dev_login))
}

fn sso(state: &AppState) -> Result<&crate::auth::sso::Sso, ApiError> {
    state.sso.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "single sign-on is not configured",
        )
    })
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, location.to_owned())],
    )
        .into_response()
}

fn sso_error(e: SsoError) -> ApiError {
    match e {
        SsoError::UnknownState => ApiError::bad_request("invalid_state", e.to_string()),
        SsoError::Rejected(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "sign_in_failed", e.to_string())
        }
        SsoError::Config(_) | SsoError::Provider(_) | SsoError::Store(_) => {
            ApiError::internal("identity_provider", e)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginParams {
    return_to: Option<String>,
    /// `1`/`true`: make the user enter their credentials again (step-up).
    reauth: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    params: Result<Query<LoginParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let sso = sso(&state)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let now = chrono::Utc::now().timestamp();
    let url = sso
        .begin(
            &state.sessions,
            p.return_to.as_deref(),
            matches!(p.reauth.as_deref(), Some("1" | "true")),
            now,
        )
        .await
        .map_err(sso_error)?;
    // Bind the sign-in to this browser: the callback must come with this
    // cookie holding the same `state` (RFC 9700 §4.7.1), so an attacker
    // cannot finish their own sign-in in a victim's browser (login CSRF).
    let state_param = url::Url::parse(&url)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
        })
        .ok_or_else(|| {
            ApiError::internal("identity_provider", "the authorization URL has no state")
        })?;
    let attrs = cookie_attributes(&state, crate::session::LOGIN_ATTEMPT_SECS);
    let mut response = see_other(&url);
    if let Ok(cookie) = header::HeaderValue::from_str(&format!(
        "{LOGIN_STATE_COOKIE}={state_param}; HttpOnly; {}",
        attrs.replace("Path=/;", "Path=/auth/callback;")
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// The cookie binding a sign-in in progress to the browser that started it.
pub const LOGIN_STATE_COOKIE: &str = "steward_login_state";

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Cookie attributes: `Secure` unless steward's callback is on loopback HTTP.
fn cookie_attributes(state: &AppState, max_age: i64) -> String {
    // Dev mode listens on loopback only.
    let loopback_http = state.dev_mode
        || state
            .sso
            .as_ref()
            .and_then(|s| s.redirect_uri())
            .is_some_and(|u| {
                u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost")
            });
    let secure = if loopback_http { "" } else { "; Secure" };
    format!("Path=/; SameSite=Lax; Max-Age={max_age}{secure}")
}

async fn callback(
    State(state): State<AppState>,
    headers: header::HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let sso = sso(&state)?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    if let Some(error) = p.error {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_failed",
            format!("the identity provider refused the sign-in ({error})"),
        ));
    }
    let (Some(code), Some(st)) = (p.code, p.state) else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the callback needs code and state",
        ));
    };
    let bound = super::cookie(&headers, LOGIN_STATE_COOKIE).unwrap_or_default();
    if bound.len() != st.len()
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            bound.as_bytes(),
            st.as_bytes(),
        ))
    {
        return Err(ApiError::bad_request(
            "invalid_state",
            "this sign-in was not started in this browser; start again from /auth/login",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let who = sso
        .finish(&state.sessions, &code, &st, now)
        .await
        .map_err(sso_error)?;
    let principal = state.identity.user(&who.sub, &who.groups).ok_or_else(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "no_role",
            "you signed in, but none of your groups grants a steward role",
        )
    })?;
    if let Some(email) = &who.email {
        state
            .sessions
            .record_identity(&DirectoryEntry {
                sub: who.sub.clone(),
                email: email.clone(),
                user: principal.user.clone(),
                roles: principal.roles.clone(),
                groups: principal.groups.clone(),
                updated_at: now,
            })
            .await
            .map_err(|e| ApiError::internal("session_store", e))?;
    }
    let issued = state
        .sessions
        .create(
            NewSession {
                user: principal.user,
                roles: principal.roles,
                groups: principal.groups,
                idp_sub: Some(who.sub),
                idp_sid: who.sid,
                email: who.email,
                refresh_token: who.refresh_token,
                auth_time: who.auth_time,
            },
            now,
        )
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    tracing::info!(session = %issued.session.id, "signed in");
    let [session, csrf] = session_cookies(&state, &issued, now);
    let used = format!(
        "{LOGIN_STATE_COOKIE}=; HttpOnly; {}",
        cookie_attributes(&state, 0).replace("Path=/;", "Path=/auth/callback;")
    );
    Ok((
        StatusCode::SEE_OTHER,
        AppendHeaders([
            (header::LOCATION, who.return_to),
            session,
            csrf,
            (header::SET_COOKIE, used),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ]),
    )
        .into_response())
}

/// The two `Set-Cookie` headers of a new session.
fn session_cookies(
    state: &AppState,
    issued: &crate::session::Issued,
    now: i64,
) -> [(header::HeaderName, String); 2] {
    let attrs = cookie_attributes(state, issued.session.expires_at - now);
    [
        (
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}={}; HttpOnly; {attrs}", issued.token),
        ),
        (
            header::SET_COOKIE,
            format!("{CSRF_COOKIE}={}; {attrs}", issued.csrf),
        ),
    ]
}

/// `GET /auth/config`: how to sign in here — `{"mode": "dev"|"oidc", "sso":
/// bool, "dev_users": [names]}` (dev users only in dev mode).
async fn config(State(state): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "mode": if state.dev_mode { "dev" } else { "oidc" },
        "sso": state.sso.is_some(),
        "dev_users": state.identities.names().collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DevLogin {
    user: String,
}

/// `POST /auth/dev-login` `{"user": NAME}` (dev mode, which listens on
/// loopback only): starts a session for a configured dev user, as the web
/// chat's picker does. Same-origin only (`Origin`, when sent, must be this
/// host), so another site cannot sign a browser in.
async fn dev_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<axum::Json<DevLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    if !state.dev_mode {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "dev sign-in exists only in dev identity mode",
        ));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    if let (Some(origin), Some(host)) = (origin, host)
        && origin != format!("http://{host}")
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "sign in from steward's own page",
        ));
    }
    let axum::Json(req) = body?;
    let principal = state.identities.principal(&req.user).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown_user",
            "that user is not configured",
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let issued = state
        .sessions
        .create(
            NewSession {
                user: principal.user.clone(),
                roles: principal.roles.clone(),
                groups: principal.groups.clone(),
                ..NewSession::default()
            },
            now,
        )
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    tracing::info!(session = %issued.session.id, "dev sign-in");
    let [session, csrf] = session_cookies(&state, &issued, now);
    Ok((
        AppendHeaders([
            session,
            csrf,
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ]),
        axum::Json(serde_json::json!({"user": principal.user, "roles": principal.roles})),
    )
        .into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = cookie(&headers, SESSION_COOKIE).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "you are not signed in",
        )
    })?;
    let now = chrono::Utc::now().timestamp();
    let session = state
        .sessions
        .authenticate(token, now)
        .await
        .map_err(|e| ApiError::internal("session_store", e))?;
    if let Some(session) = session {
        require_csrf(&state, &session.id, &headers).await?;
        state
            .sessions
            .revoke(&session.id, "logout", now)
            .await
            .map_err(|e| ApiError::internal("session_store", e))?;
    }
    let attrs = cookie_attributes(&state, 0);
    let next = match &state.sso {
        Some(sso) => sso.end_session_url(sso.post_logout_redirect_uri()).await,
        None => None,
    }
    .unwrap_or_else(|| "/".to_owned());
    let cookies = AppendHeaders([
        (
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; HttpOnly; {attrs}"),
        ),
        (header::SET_COOKIE, format!("{CSRF_COOKIE}=; {attrs}")),
        (header::CACHE_CONTROL, "no-store".to_owned()),
    ]);
    // A script (the web chat) asks for JSON and navigates itself.
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return Ok((cookies, axum::Json(serde_json::json!({ "next": next }))).into_response());
    }
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, next)], cookies).into_response())
}

/// Longest accepted logout token, in bytes.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
struct LogoutForm {
    logout_token: String,
}

async fn backchannel_logout(
    State(state): State<AppState>,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    let result = async {
        let Some(provider) = &state.oidc else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no identity provider is configured",
            ));
        };
        let Form(form) = form.map_err(|_| {
            ApiError::bad_request(
                "invalid_request",
                "expected a form with a logout_token field",
            )
        })?;
        if form.logout_token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the logout token is too large",
            ));
        }
        let now = chrono::Utc::now().timestamp();
        let request = provider
            .logout_request(&form.logout_token, now)
            .await
            .map_err(|e| match e {
                OidcError::Keys(cause) => ApiError::internal("identity_provider", cause),
                other => ApiError::bad_request("invalid_logout_token", other.to_string()),
            })?;
        let store = &state.sessions;
        let revoked = match (&request.sid, &request.sub) {
            (Some(sid), _) => store.revoke_sid(sid, "back-channel logout", now).await,
            (None, Some(sub)) => store.revoke_sub(sub, "back-channel logout", now).await,
            (None, None) => Ok(0),
        }
        .map_err(|e| ApiError::internal("session_store", e))?;
        tracing::info!(
            revoked,
            by_sid = request.sid.is_some(),
            "back-channel logout"
        );
        Ok(StatusCode::OK)
    }
    .await;
    match result {
        Ok(status) => (status, no_store).into_response(),
        Err(e) => (no_store, e).into_response(),
    }
}
