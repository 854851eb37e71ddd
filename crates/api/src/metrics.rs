//! The API's telemetry, declared once: the process-wide Prometheus recorder and the request
//! metrics.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const REQUESTS: &str = "penstock_api_requests_total";
pub const REQUEST_DURATION: &str = "penstock_api_request_duration_seconds";
pub const REPLICA_LAG: &str = "penstock_api_replica_lag_seconds";

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
        ::metrics::describe_counter!(REQUESTS, "API requests by route (the matched pattern) and status code");
        ::metrics::describe_histogram!(
            REQUEST_DURATION,
            ::metrics::Unit::Seconds,
            "API request latency by route"
        );
        ::metrics::describe_gauge!(
            REPLICA_LAG,
            ::metrics::Unit::Seconds,
            "How far the hot standby the API reads from (api_database_url) is behind its primary: 0 while \
             streaming with everything received replayed, else the age of the last transaction replayed"
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
    ::metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status).increment(1);
    ::metrics::histogram!(REQUEST_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}
