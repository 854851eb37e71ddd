//! The operations endpoints as the API documents them (`/health`, `/ready`, `/metrics`:
//! answered by [`crate::health`]), the dashboard's static files and the fallbacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::health::{Alive, Readiness};
use crate::state::Api;

/// The process is running.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Alive)))]
pub async fn health() -> Json<Alive> {
    crate::health::alive()
}

/// Whether this process can work: PostgreSQL answers and every role that needs the broker
/// holds its connection (checked at most every 2 s).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; the body says which part is down", body = Readiness),
    ))]
pub async fn ready(State(api): State<Arc<Api>>) -> Response {
    api.health.ready_response().await
}

/// Prometheus text exposition of this process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics() -> Response {
    crate::health::metrics_response()
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Everything the dashboard loads comes from this binary; nothing from elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'";

pub async fn dashboard() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8")
}

pub async fn dashboard_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}

pub async fn dashboard_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A known path with a method it does not serve; axum adds the `Allow` header.
pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::method_not_allowed(format!(
        "{} is not served on {}; the Allow header lists the methods that are",
        request.method(),
        request.uri().path()
    ))
}

pub async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}; the API is described at /docs and /openapi.json",
        request.method(),
        request.uri().path()
    ))
}

/// The most bytes a request may declare: no endpoint reads a body (the alert actions take
/// none), so anything larger is refused before it is read.
pub const MAX_BODY_BYTES: u64 = 16 * 1024;

/// Every request: refused with 413 if it declares a body over [`MAX_BODY_BYTES`], answered
/// with 503 if it takes longer than `api_request_timeout` (its work is dropped, and its
/// database connection goes back to the API's pool).
pub async fn limits(State(api): State<Arc<Api>>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|bytes| bytes > MAX_BODY_BYTES) {
        return ApiError::too_large(format!(
            "request bodies are limited to {MAX_BODY_BYTES} bytes, and no endpoint reads one"
        ))
        .into_response();
    }
    match tokio::time::timeout(api.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(format!(
            "the request took longer than api_request_timeout ({}); try again later or narrow it",
            seconds_or_millis(api.request_timeout)
        ))
        .into_response(),
    }
}

/// A timeout as a reader wants it: whole seconds as `10 s`, anything finer as `500 ms`.
fn seconds_or_millis(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
