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
//!   cookies, 303 to the provider's end-session endpoint (RP-initiated logout).
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
    Ok(see_other(&url))
}

#[derive(Debug, Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Cookie attributes: `Secure` unless steward's callback is on loopback HTTP.
fn cookie_attributes(state: &AppState, max_age: i64) -> String {
    let loopback_http = state
        .sso
        .as_ref()
        .and_then(|s| s.redirect_uri())
        .is_some_and(|u| u.starts_with("http://127.0.0.1") || u.starts_with("http://localhost"));
    let secure = if loopback_http { "" } else { "; Secure" };
    format!("Path=/; SameSite=Lax; Max-Age={max_age}{secure}")
}

async fn callback(
    State(state): State<AppState>,
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
    let max_age = issued.session.expires_at - now;
    let attrs = cookie_attributes(&state, max_age);
    tracing::info!(session = %issued.session.id, "signed in");
    Ok((
        StatusCode::SEE_OTHER,
        AppendHeaders([
            (header::LOCATION, who.return_to),
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}={}; HttpOnly; {attrs}", issued.token),
            ),
            (
                header::SET_COOKIE,
                format!("{CSRF_COOKIE}={}; {attrs}", issued.csrf),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ]),
    )
        .into_response())
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let sso = sso(&state)?;
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
    let next = sso
        .end_session_url(sso.post_logout_redirect_uri())
        .await
        .unwrap_or_else(|| "/".to_owned());
    Ok((
        StatusCode::SEE_OTHER,
        AppendHeaders([
            (header::LOCATION, next),
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}=; HttpOnly; {attrs}"),
            ),
            (header::SET_COOKIE, format!("{CSRF_COOKIE}=; {attrs}")),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ]),
    )
        .into_response())
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
