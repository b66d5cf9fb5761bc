//! The one HTTP error type: a stable code and a safe message, as JSON
//! `{"error": {"code": "...", "message": "..."}}`. Internal details are logged,
//! never sent.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error returned to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Safe human-readable message.
    pub message: String,
    /// Seconds the client should wait before retrying (`Retry-After`,
    /// RFC 9110 §10.2.3), for 429 and 503 answers to load.
    pub retry_after: Option<u64>,
    /// A field sent beside `error` (name, value): what a client needs to act
    /// on the error, such as a blocked approval's regression report.
    pub detail: Option<Box<(&'static str, serde_json::Value)>>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
            detail: None,
        }
    }

    /// The error with `value` sent beside it as `name`.
    pub fn with_detail(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.detail = Some(Box::new((name, value)));
        self
    }

    /// 503 `busy`: no capacity freed up in time; retry after `secs`.
    pub fn busy(secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "steward is busy answering other questions; try again shortly",
            )
        }
    }

    /// 429 `rate_limited`: the caller asked too often; retry after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        ApiError {
            retry_after: Some(secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "you are asking faster than this deployment allows; try again shortly",
            )
        }
    }

    /// The answer to a question that got none: 503 `busy` (with
    /// `Retry-After`) or 503 `audit_unavailable`.
    pub fn from_ask(e: crate::orchestrator::AskError) -> Self {
        match e {
            crate::orchestrator::AskError::Overloaded { retry_after_secs } => {
                Self::busy(retry_after_secs)
            }
            crate::orchestrator::AskError::Audit(a) => Self::internal("audit_unavailable", a),
        }
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 503 for a failing dependency: the cause is logged here, the client
    /// gets only the code.
    pub fn internal(code: &'static str, cause: impl std::fmt::Display) -> Self {
        tracing::error!(code, error = %cause, "dependency failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code,
            "a backing service failed; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, "request failed");
        } else {
            tracing::info!(
                code = self.code,
                status = self.status.as_u16(),
                "request rejected"
            );
        }
        let mut body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        if let Some(detail) = self.detail {
            let (name, value) = *detail;
            body[name] = value;
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = r.status();
        let (code, message) = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("body_too_large", "the request body is too large".to_owned())
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "send JSON with Content-Type: application/json".to_owned(),
            ),
            StatusCode::UNPROCESSABLE_ENTITY => (
                "invalid_request",
                format!(
                    "the JSON does not have the expected fields: {}",
                    r.body_text()
                ),
            ),
            _ => (
                "invalid_json",
                "the request body is not valid JSON".to_owned(),
            ),
        };
        let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
        ApiError::new(status, code, message)
    }
}
