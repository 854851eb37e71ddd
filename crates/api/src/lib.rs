//! The `api` role: a read-only HTTP API over the loaded data and the pipeline, with an
//! OpenAPI 3.1 document generated from the handlers (so it cannot drift), an offline docs
//! page (Swagger UI, vendored into the binary), Prometheus metrics and a dashboard.
//!
//! Every handler validates its parameters before any query runs (a bad one is a 400 that
//! names it), then reads through `penstock_db` (its `read` module and the alerts functions),
//! which binds every value and formats only whitelisted words into SQL; no SQL is written
//! here. Aggregates are cached (see [`cache`]).

mod alerts;
pub mod cache;
pub mod error;
mod health;
mod metrics;
mod ops;
pub mod params;
mod pipeline;
mod plant;
mod plant_index;
mod plants;
mod state;
mod summaries;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use penstock_core::DatasetSpec;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

pub use health::{Health, Readiness, RoleHealth, router as health_router};
pub use metrics::prometheus;
pub use state::Api;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "penstock",
        description = "Read API over the data penstock loads (EPA eGRID plants and generators) and over the pipeline itself: files, quarantined rows, alerts, datasets.\n\nErrors are JSON `{\"error\": \"...\", \"detail\": \"...\"}`: 400 names the bad parameter and what is allowed, 404 an unknown id, 405 a method the path does not serve (the `Allow` header lists those it does).",
        license(name = "Apache-2.0")
    ),
    paths(
        plants::top,
        plants::search,
        summaries::states,
        summaries::years,
        summaries::chart,
        summaries::statistics,
        plants::plant,
        pipeline::files,
        pipeline::file,
        pipeline::file_errors,
        pipeline::file_diff,
        alerts::alerts,
        alerts::acknowledge,
        alerts::resolve,
        pipeline::datasets,
        ops::health,
        ops::ready,
        ops::metrics,
    ),
    modifiers(&AdminToken, &DatabaseDown),
    tags(
        (name = "plants", description = "eGRID plants: generators grouped by year, state and plant name"),
        (name = "pipeline", description = "Files, their progress and quarantined rows; datasets"),
        (name = "alerts", description = "Problems the fleet reported"),
        (name = "operations", description = "Liveness, readiness, metrics"),
    )
)]
struct ApiDoc;

struct AdminToken;

/// Every operation that reads the database answers 503 (with the usual error body) while
/// the database does not answer; documented here once instead of on every handler.
struct DatabaseDown;

impl utoipa::Modify for DatabaseDown {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder, schema::Ref};
        let response = ResponseBuilder::new()
            .description("The database did not answer (down, or not migrated); the detail says which")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if matches!(path.as_str(), "/health" | "/ready" | "/metrics") {
                continue;
            }
            for operation in [item.get.as_mut(), item.post.as_mut()].into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("503".to_string())
                    .or_insert_with(|| RefOr::T(response.clone()));
            }
        }
    }
}

impl utoipa::Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The value of PENSTOCK_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, generated from the handlers' annotations.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as a deployment serves it: where the allowed values of a parameter come from
/// the configuration (the dataset names), it lists them.
pub fn openapi_for(datasets: &[DatasetSpec]) -> utoipa::openapi::OpenApi {
    let mut doc = openapi();
    let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
    pipeline::document_dataset_names(&mut doc, &names);
    doc
}

/// Every route.
pub fn router(api: Arc<Api>) -> Router {
    let doc = openapi_for(&api.datasets);
    let limits = axum::middleware::from_fn_with_state(api.clone(), ops::limits);
    let routes = Router::new()
        .route("/", get(ops::dashboard))
        .route("/assets/app.js", get(ops::dashboard_js))
        .route("/assets/app.css", get(ops::dashboard_css))
        .route("/plants/top", get(plants::top))
        .route("/plants/search", get(plants::search))
        .route("/plants/states", get(summaries::states))
        .route("/plants/years", get(summaries::years))
        .route("/plants/statistics", get(summaries::statistics))
        .route("/plants/chart/{chart}", get(summaries::chart))
        .route("/plants/{id}", get(plants::plant))
        .route("/files", get(pipeline::files))
        .route("/files/{id}", get(pipeline::file))
        .route("/files/{id}/errors", get(pipeline::file_errors))
        .route("/files/{id}/diff", get(pipeline::file_diff))
        .route("/alerts", get(alerts::alerts))
        .route("/alerts/{id}/acknowledge", post(alerts::acknowledge))
        .route("/alerts/{id}/resolve", post(alerts::resolve))
        .route("/datasets", get(pipeline::datasets))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .with_state(api);
    routes
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(ops::MAX_BODY_BYTES as usize))
        .layer(limits)
        .layer(axum::middleware::from_fn(metrics::track))
}

/// Binds the API's address (fails fast with the fix when it is taken).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr).await.map_err(|e| {
        format!(
            "cannot listen on api_addr {addr}: {e}; set PENSTOCK_API_ADDR to a free address (or empty to serve no API)"
        )
    })
}

/// Serves the API on `listener` until shutdown, with the cache listening for data changes.
pub async fn serve(listener: TcpListener, api: Arc<Api>, shutdown: CancellationToken) {
    prometheus();
    let invalidation = tokio::spawn(cache::watch(api.pool.clone(), api.cache.clone(), shutdown.clone()));
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "api listening");
    serve_http(listener, router(api), shutdown.clone()).await;
    shutdown.cancel();
    let _ = invalidation.await;
}

/// How long a client may take to send a request's headers. A client that opens a connection
/// and trickles its headers (slowloris) is cut off then, instead of holding a connection and
/// a task forever; `api_request_timeout` bounds the work after the headers.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `app` on `listener` until shutdown (HTTP/1 and HTTP/2), cutting off clients slower
/// than [`HEADER_READ_TIMEOUT`] with their headers; at shutdown, connections in flight get up
/// to 10 s to finish. Used for the API and for the health and metrics endpoints.
pub async fn serve_http(listener: TcpListener, app: axum::Router, shutdown: CancellationToken) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    let mut http = Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (socket, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = http.serve_connection_with_upgrades(TokioIo::new(socket), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open 10 s after shutdown; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_lists_every_data_route() {
        let doc = serde_json::to_value(openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in [
            "/plants/top",
            "/plants/search",
            "/plants/states",
            "/plants/years",
            "/plants/chart/{chart}",
            "/plants/statistics",
            "/plants/{id}",
            "/files",
            "/files/{id}",
            "/files/{id}/errors",
            "/alerts",
            "/alerts/{id}/acknowledge",
            "/alerts/{id}/resolve",
            "/datasets",
            "/health",
            "/ready",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} is missing from the OpenAPI document");
        }
        assert!(doc["paths"]["/plants/top"]["get"]["responses"]["503"].is_object());
        assert!(doc["paths"]["/health"]["get"]["responses"]["503"].is_null());
    }

    #[test]
    fn the_served_document_lists_the_configured_dataset_names() {
        let spec = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/datasets/egrid_generators.toml"
        ))
        .unwrap();
        let spec = DatasetSpec::from_toml("egrid_generators.toml", &spec).unwrap();
        let doc = serde_json::to_value(openapi_for(&[spec])).unwrap();
        let dataset = doc["paths"]["/files"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "dataset")
            .unwrap();
        assert_eq!(
            dataset["schema"],
            serde_json::json!({"type": "string", "enum": ["egrid_generators"]})
        );
    }
}
