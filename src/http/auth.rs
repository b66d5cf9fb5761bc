//! Identity endpoints. Today: OpenID Connect Back-Channel Logout 1.0 at
//! `POST /auth/backchannel-logout` (form field `logout_token`): the provider
//! tells steward a user's session at the provider ended, and every steward
//! session started in it (`sid`), or of that user (`sub`), ends at once.
//! Responses carry `Cache-Control: no-store` (§2.8).

use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Router};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::oidc::OidcError;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/auth/backchannel-logout", post(backchannel_logout))
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
