//! [`Api`]: what every handler shares (pool, datasets, cache, plant index, health), with
//! the cached-response and admin-token helpers.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use penstock_config::Config;
use penstock_core::DatasetSpec;
use penstock_db::{Databases, PgPool};
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{ApiError, ApiResult};
use crate::health::Health;
use crate::params::Params;
use crate::plant_index::{PlantIndex, Snapshot};

/// The dataset the read model's tables (`egrid_generators`, the `egrid_plants` view) load:
/// the API reads plants from its database.
pub const READ_MODEL_DATASET: &str = "egrid_generators";

/// What every handler shares.
pub struct Api {
    /// What the read model (eGRID plants) is read from: the API's own pool on the database of
    /// [`READ_MODEL_DATASET`] (`database_url`, or `api_database_url`, or the dataset's own).
    pub(crate) pool: PgPool,
    /// The API's own pools on every database: home (`database_url`, or `api_database_url`)
    /// for alerts, and each dataset's for its files.
    pub(crate) dbs: Databases,
    /// Where its few writes (alert actions) go: the primary, `database_url` (the same pool
    /// as `pool` unless the API reads from elsewhere).
    pub(crate) writes: PgPool,
    pub(crate) datasets: Vec<DatasetSpec>,
    admin_token: Option<String>,
    pub(crate) cache: Arc<Cache>,
    plants: PlantIndex,
    /// Liveness and readiness of this process (shared with its other roles).
    pub(crate) health: Arc<Health>,
    /// The longest one request may take (`api_request_timeout`).
    pub(crate) request_timeout: std::time::Duration,
}

impl Api {
    /// The API reading from `dbs` (its own pools, apart from the loaders') and writing alert
    /// actions to `writes`; `health` is its process's readiness (see [`Api::health`]).
    pub fn new(config: &Config, dbs: Databases, writes: PgPool, health: Arc<Health>) -> Api {
        let pool = dbs.for_dataset(READ_MODEL_DATASET).clone();
        Api {
            health,
            dbs,
            pool,
            writes,
            datasets: config.datasets.clone(),
            admin_token: config.admin_token.clone(),
            cache: Arc::new(Cache::new(config.api_cache_ttl)),
            plants: PlantIndex::default(),
            request_timeout: config.api_request_timeout,
        }
    }

    /// What readiness adds for an API reading from `dbs`: every one of them answers, and
    /// `database_url`'s (a hot standby when `api_database_url` names one) is at most
    /// `api_replica_max_lag` behind.
    pub fn health(health: Health, config: &Config, dbs: &Databases) -> Health {
        health
            .watching(dbs)
            .with_replica(dbs.home().clone(), config.api_replica_max_lag)
    }

    /// Every plant in memory as of the latest data change (see `plant_index.rs`), or None
    /// while changes cannot be heard.
    pub(crate) async fn plant_index(&self) -> ApiResult<Option<Arc<Snapshot>>> {
        Ok(self.plants.get(&self.pool, &self.cache).await?)
    }

    /// Serves a computed response from the cache, or computes and keeps it. The response
    /// says which in `x-cache: hit|miss`.
    pub(crate) async fn cached<T, F, Fut>(&self, route: &str, params: &Params, compute: F) -> ApiResult<Response>
    where
        T: Serialize,
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        self.cached_if(true, route, params, compute).await
    }

    /// [`Api::cached`] when `keep`; otherwise computed every time (`x-cache: bypass`), for
    /// requests whose key space is unbounded (free-text search) and would only evict the
    /// aggregates worth keeping.
    pub(crate) async fn cached_if<T, F, Fut>(
        &self,
        keep: bool,
        route: &str,
        params: &Params,
        compute: F,
    ) -> ApiResult<Response>
    where
        T: Serialize,
        F: FnOnce(PgPool) -> Fut,
        Fut: Future<Output = ApiResult<T>>,
    {
        if !keep {
            return Ok(json_response(&compute(self.pool.clone()).await?, "bypass"));
        }
        let key = format!("{route}?{}", params.canonical());
        if let Some(body) = self.cache.get(&key) {
            return Ok(json_bytes(body, "hit"));
        }
        let generation = self.cache.generation();
        let value = compute(self.pool.clone()).await?;
        let body = Bytes::from(serde_json::to_vec(&value).expect("responses serialize"));
        self.cache.put(key, body.clone(), generation);
        Ok(json_bytes(body, "miss"))
    }

    /// Checks `Authorization: Bearer <admin_token>` for the alert actions.
    pub(crate) fn authorize(&self, headers: &HeaderMap) -> ApiResult<()> {
        let Some(expected) = &self.admin_token else {
            return Err(ApiError::forbidden(
                "alert actions are disabled",
                "no admin token is configured; set PENSTOCK_ADMIN_TOKEN (16+ characters) on the api role to enable them",
            ));
        };
        let Some(given) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "send the admin token as `Authorization: Bearer <PENSTOCK_ADMIN_TOKEN>`",
            ));
        };
        let given = given.to_str().unwrap_or("");
        let Some(token) = given.strip_prefix("Bearer ").or_else(|| given.strip_prefix("bearer ")) else {
            return Err(ApiError::unauthorized(
                "the Authorization header must be `Bearer <PENSTOCK_ADMIN_TOKEN>`",
            ));
        };
        if constant_time_eq(token.trim().as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::forbidden("forbidden", "the admin token is wrong"))
        }
    }
}

/// `value` as a JSON response with `x-cache: <cache>`.
pub(crate) fn json_response(value: &impl Serialize, cache: &'static str) -> Response {
    json_bytes(
        Bytes::from(serde_json::to_vec(value).expect("responses serialize")),
        cache,
    )
}

fn json_bytes(body: Bytes, cache: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                header::HeaderName::from_static("x-cache"),
                HeaderValue::from_static(cache),
            ),
        ],
        body,
    )
        .into_response()
}

/// Compares without an early exit, so timing does not reveal how much of a token matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
