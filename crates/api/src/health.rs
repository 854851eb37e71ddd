//! Liveness, readiness and metrics: the one answer every penstock process gives, whatever
//! roles it runs. The api role serves it on `api_addr` (with the rest of the API); a fleet
//! serves [`router`] on `health_addr` / `metrics_addr`.
//!
//! The readiness rule: ready when every database of the process (`database_url` and the
//! datasets' own) answers a query and every role of this process
//! that needs the broker holds its connection (roles report through [`RoleHealth`]); for an
//! API reading from a hot standby, also while the standby is at most `api_replica_max_lag`
//! behind. The answer is reused for 2 s, so a busy prober does not load the database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use penstock_db::{Databases, PgPool};
use serde::Serialize;
use utoipa::ToSchema;

/// Which roles of this process are connected to the broker right now.
#[derive(Default)]
pub struct RoleHealth {
    roles: Mutex<BTreeMap<&'static str, bool>>,
}

impl RoleHealth {
    pub fn set(&self, role: &'static str, connected: bool) {
        self.roles.lock().expect("role health lock").insert(role, connected);
    }

    fn snapshot(&self) -> BTreeMap<String, bool> {
        let roles = self.roles.lock().expect("role health lock");
        roles.iter().map(|(role, up)| (role.to_string(), *up)).collect()
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alive {
    #[schema(example = "alive")]
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// PostgreSQL answered a query: every database of the process (`database_url` and the
    /// datasets' own).
    pub database: bool,
    /// Each role of this process that needs the broker, and whether it holds its connection.
    pub broker: BTreeMap<String, bool>,
    /// The hot standby the API reads from (`api_database_url`); absent when it reads from a
    /// primary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<Replica>,
}

/// A hot standby's replication, as readiness reports it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Replica {
    /// Receiving WAL from the primary right now.
    pub streaming: bool,
    /// How far behind the primary its data may be: 0 while streaming with everything
    /// received replayed, else the age of the last transaction replayed; null when that
    /// cannot be told (not streaming, nothing replayed since the standby started): unready.
    pub lag_seconds: Option<f64>,
    /// The most it may be behind for the API to be ready (`api_replica_max_lag`).
    pub max_lag_seconds: f64,
}

/// What the health answers need: the databases, the roles' connections, the latest answer.
pub struct Health {
    dbs: Databases,
    roles: Arc<RoleHealth>,
    /// Set for the API's own answer: the pool whose standby status is asked too.
    replica: Option<(PgPool, Duration)>,
    last: Mutex<Option<(Instant, Readiness)>>,
}

impl Health {
    pub fn new(dbs: Databases, roles: Arc<RoleHealth>) -> Health {
        Health {
            dbs,
            roles,
            replica: None,
            last: Mutex::new(None),
        }
    }

    /// Readiness also asks whether `pool` is a hot standby, and how far behind it is.
    pub fn with_replica(self, pool: PgPool, max_lag: Duration) -> Health {
        Health {
            replica: Some((pool, max_lag)),
            ..self
        }
    }

    /// Whether every database answers, and the standby status when that is asked for.
    async fn database(&self) -> (bool, Option<Replica>) {
        for pool in self.dbs.pools() {
            if penstock_db::ping(pool).await.is_err() {
                return (false, None);
            }
        }
        let Some((pool, max_lag)) = &self.replica else {
            return (true, None);
        };
        let max_lag = *max_lag;
        match penstock_db::replica_status(pool).await {
            Ok(status) => (
                true,
                status.map(|s| Replica {
                    streaming: s.streaming,
                    lag_seconds: s.lag_seconds,
                    max_lag_seconds: max_lag.as_secs_f64(),
                }),
            ),
            Err(_) => (false, None),
        }
    }

    /// The readiness answer (see the module docs for the rule).
    pub async fn readiness(&self) -> Readiness {
        if let Some((at, answer)) = self.last.lock().expect("readiness lock").clone()
            && at.elapsed() < Duration::from_secs(2)
        {
            return answer;
        }
        let (database, replica) = tokio::time::timeout(Duration::from_secs(2), self.database())
            .await
            .unwrap_or((false, None));
        let answer = rule(database, self.roles.snapshot(), replica);
        *self.last.lock().expect("readiness lock") = Some((Instant::now(), answer.clone()));
        answer
    }

    pub(crate) async fn ready_response(&self) -> Response {
        let readiness = self.readiness().await;
        let status = if readiness.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, Json(readiness)).into_response()
    }
}

/// Ready when the database answers, every broker-using role is connected, and a standby
/// read from is not too far behind.
fn rule(database: bool, broker: BTreeMap<String, bool>, replica: Option<Replica>) -> Readiness {
    Readiness {
        ready: database
            && broker.values().all(|up| *up)
            && replica
                .as_ref()
                .is_none_or(|r| r.lag_seconds.is_some_and(|lag| lag <= r.max_lag_seconds)),
        database,
        broker,
        replica,
    }
}

pub(crate) fn alive() -> Json<Alive> {
    Json(Alive { status: "alive".into() })
}

pub(crate) fn metrics_response() -> Response {
    let handle = crate::metrics::prometheus();
    handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}

/// `/health`, `/ready` and `/metrics` alone: what a fleet serves on `health_addr`.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(|| async { alive() }))
        .route(
            "/ready",
            get(|State(health): State<Arc<Health>>| async move { health.ready_response().await }),
        )
        .route("/metrics", get(|| async { metrics_response() }))
        .fallback(|| async {
            crate::error::ApiError::not_found("this port serves /health, /ready and /metrics".to_string())
        })
        .with_state(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(pairs: &[(&str, bool)]) -> BTreeMap<String, bool> {
        pairs.iter().map(|(r, up)| (r.to_string(), *up)).collect()
    }

    #[test]
    fn a_process_is_ready_when_the_database_answers_and_every_role_is_connected() {
        assert!(rule(true, roles(&[("chunker", true), ("database", true)]), None).ready);
    }

    #[test]
    fn one_role_without_its_broker_connection_makes_the_process_unready() {
        let answer = rule(true, roles(&[("chunker", true), ("database", false)]), None);
        assert!(!answer.ready);
        assert!(!answer.broker["database"]);
    }

    #[test]
    fn a_process_whose_database_does_not_answer_is_unready() {
        assert!(!rule(false, roles(&[("chunker", true)]), None).ready);
    }

    #[test]
    fn a_process_that_runs_only_the_api_needs_only_the_database() {
        assert!(rule(true, BTreeMap::new(), None).ready);
    }

    fn standby(lag_seconds: f64) -> Option<Replica> {
        Some(Replica {
            streaming: true,
            lag_seconds: Some(lag_seconds),
            max_lag_seconds: 30.0,
        })
    }

    #[test]
    fn an_api_reading_from_a_standby_is_ready_while_the_standby_is_at_most_the_max_lag_behind() {
        assert!(rule(true, BTreeMap::new(), standby(0.0)).ready);
        assert!(rule(true, BTreeMap::new(), standby(30.0)).ready);
        let behind = rule(true, BTreeMap::new(), standby(30.5));
        assert!(!behind.ready);
        assert!(behind.database, "the standby answers; it is only behind");
        let unknown = Some(Replica {
            streaming: false,
            lag_seconds: None,
            max_lag_seconds: 30.0,
        });
        assert!(
            !rule(true, BTreeMap::new(), unknown).ready,
            "a lag that cannot be told is not ready"
        );
    }
}
