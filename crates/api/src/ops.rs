//! Operations endpoints (`/health`, `/ready`, `/metrics`), the dashboard's static files and
//! the request metrics.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::{Api, Readiness};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "alive")]
    pub status: String,
}

/// The process is running.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Alive", body = Alive)))]
pub async fn health() -> Json<Alive> {
    Json(Alive { status: "alive".into() })
}

/// Whether the database and the broker can be reached (checked at most every 2 s).
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Both reachable", body = Readiness),
        (status = 503, description = "One is not; the body says which", body = Readiness),
    ))]
pub async fn ready(State(api): State<Arc<Api>>) -> Response {
    let cached = api.readiness.lock().expect("readiness lock").clone();
    let readiness = match cached {
        Some((at, r)) if at.elapsed() < Duration::from_secs(2) => r,
        _ => {
            let timeout = Duration::from_secs(2);
            let database = tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&api.pool));
            let broker = tokio::time::timeout(timeout, penstock_broker::RabbitMq::probe(&api.amqp_url));
            let (database, broker) = tokio::join!(database, broker);
            let database = matches!(database, Ok(Ok(_)));
            let broker = matches!(broker, Ok(Ok(())));
            let r = Readiness {
                ready: database && broker,
                database,
                broker,
            };
            *api.readiness.lock().expect("readiness lock") = Some((Instant::now(), r.clone()));
            r
        }
    };
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

/// Prometheus text exposition of this process's metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics() -> Response {
    let handle = prometheus();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = || {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ],
                )
                .expect("bucket list is not empty")
        };
        let handle = match builder().install_recorder() {
            Ok(handle) => handle,
            // Another recorder is installed (an embedding program's): render our own.
            Err(_) => builder().build_recorder().handle(),
        };
        metrics::describe_counter!(
            "penstock_api_requests_total",
            "API requests by route (the matched pattern) and status code"
        );
        metrics::describe_histogram!(
            "penstock_api_request_duration_seconds",
            metrics::Unit::Seconds,
            "API request latency by route"
        );
        handle
    })
}

/// Counts every request and times it, by matched route (bounded: unmatched paths are
/// counted as "unmatched").
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("penstock_api_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("penstock_api_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
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
