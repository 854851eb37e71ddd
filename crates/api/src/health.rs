//! Liveness, readiness and metrics: the one answer every penstock process gives, whatever
//! roles it runs. The api role serves it on `api_addr` (with the rest of the API); a fleet
//! serves [`router`] on `health_addr` / `metrics_addr`.
//!
//! The readiness rule: ready when every database the process's roles use answers a query
//! (for the loading roles `database_url` and the datasets' own; for the api role its own
//! pools, on `api_database_url` when set) and every role of this process that needs the
//! broker holds its connection (roles report through [`RoleHealth`]); when the api role reads
//! from a hot standby, also while the standby is at most `api_replica_max_lag` behind. A
//! process has one [`Health`]: `health_addr`, `metrics_addr` and `api_addr` give the same
//! answer. It is reused for 2 s, so a busy prober does not load the database.

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
    /// Every pool the process's roles use (each database once per user: the API's own pools
    /// are apart from the loaders').
    pools: Vec<PgPool>,
    roles: Arc<RoleHealth>,
    /// Set for the API's own answer: the pool whose standby status is asked too.
    replica: Option<(PgPool, Duration)>,
    /// When the standby was last seen with everything it received replayed.
    caught_up: CaughtUp,
    last: Mutex<Option<(Instant, Readiness)>>,
}

/// When a streaming standby was last seen caught up (everything received replayed), so a lag
/// can be bounded by it: after a quiet spell the first WAL to arrive is replayed in moments,
/// yet while it is, the age of the last transaction replayed is the whole spell, which is not
/// how far behind the data is. Whatever was committed before the standby was last caught up
/// is readable on it.
#[derive(Default)]
pub(crate) struct CaughtUp(Mutex<Option<Instant>>);

impl CaughtUp {
    /// The lag to report for `status`, read now.
    pub(crate) fn lag(&self, status: &penstock_db::ReplicaStatus) -> Option<f64> {
        let mut seen = self.0.lock().expect("caught-up lock");
        if !status.streaming {
            *seen = None;
        } else if status.lag_seconds == Some(0.0) {
            *seen = Some(Instant::now());
        }
        bounded_lag(status.lag_seconds, seen.map(|at| at.elapsed().as_secs_f64()))
    }
}

/// A standby's lag as it reports it, but at most the time since it was last seen caught up
/// while streaming (`caught_up_ago`; none when not seen so since it last streamed).
fn bounded_lag(reported: Option<f64>, caught_up_ago: Option<f64>) -> Option<f64> {
    match (reported, caught_up_ago) {
        (Some(lag), Some(ago)) => Some(lag.min(ago)),
        (reported, _) => reported,
    }
}

impl Health {
    /// Readiness of a process whose broker-using roles report to `roles`; it watches no
    /// database until told which ([`Health::watching`]).
    pub fn new(roles: Arc<RoleHealth>) -> Health {
        Health {
            pools: Vec::new(),
            roles,
            replica: None,
            caught_up: CaughtUp::default(),
            last: Mutex::new(None),
        }
    }

    /// Readiness also needs every database of `dbs` to answer.
    pub fn watching(mut self, dbs: &Databases) -> Health {
        self.pools.extend(dbs.pools().cloned());
        self
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
        for pool in &self.pools {
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
                    lag_seconds: self.caught_up.lag(&s),
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
    fn a_standby_seen_caught_up_a_moment_ago_is_at_most_that_moment_behind() {
        assert_eq!(bounded_lag(Some(3600.0), Some(0.5)), Some(0.5), "after a quiet hour");
        assert_eq!(bounded_lag(Some(2.0), Some(10.0)), Some(2.0));
        assert_eq!(bounded_lag(Some(3600.0), None), Some(3600.0), "never seen caught up");
        assert_eq!(bounded_lag(None, Some(1.0)), None, "a lag that cannot be told stays so");
    }

    #[test]
    fn a_standby_that_stops_streaming_is_no_longer_bounded_by_when_it_was_caught_up() {
        let caught_up = CaughtUp::default();
        let status = |streaming, lag| penstock_db::ReplicaStatus {
            replay_lsn: "0/1".into(),
            streaming,
            lag_seconds: Some(lag),
        };
        assert_eq!(caught_up.lag(&status(true, 0.0)), Some(0.0));
        assert!(
            caught_up.lag(&status(true, 3600.0)).unwrap() < 1.0,
            "caught up a moment ago"
        );
        assert_eq!(caught_up.lag(&status(false, 3600.0)), Some(3600.0));
        assert_eq!(
            caught_up.lag(&status(true, 3600.0)),
            Some(3600.0),
            "not seen caught up since"
        );
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
