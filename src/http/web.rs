//! The web chat: the single-page app built from `web/` (Vite) and embedded at
//! compile time by `build.rs`, served with a strict Content Security Policy
//! (scripts and styles from this origin only; charts use Vega's expression
//! interpreter, so no `eval`). Without a build (`npm run build` in `web/`
//! before `cargo build`), steward serves a minimal built-in page instead.
//!
//! - `GET /` — the app (`Cache-Control: no-store`);
//! - `GET /assets/{file}` — its hashed assets (`immutable`, one year).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::{ApiError, AppState};

mod assets {
    include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));
}

/// Whether the built app is embedded (else the minimal page is served).
pub fn built() -> bool {
    asset("/index.html").is_some()
}

fn asset(path: &str) -> Option<&'static [u8]> {
    assets::ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; \
frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(file))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn hardened(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn index() -> Response {
    let response = match asset("/index.html") {
        Some(page) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::CONTENT_SECURITY_POLICY, CSP),
            ],
            page,
        )
            .into_response(),
        None => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(include_str!("../web/index.html")),
        )
            .into_response(),
    };
    hardened(response)
}

async fn file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let path = format!("/assets/{name}");
    let bytes = asset(&path)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset"))?;
    Ok(hardened(
        (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            bytes,
        )
            .into_response(),
    ))
}
