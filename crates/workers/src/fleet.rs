//! The fleet: runs any subset of roles in one process. Each role runs under a supervisor
//! that owns its own broker connection and reconnects with exponential backoff and jitter
//! when the broker fails; the database pool reconnects on its own. Shutdown follows
//! [`crate::shutdown`]'s order.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use penstock_broker::{RabbitMq, SharedQueue, WorkQueue};
use penstock_config::Config;
use penstock_core::event::{Event, EventKind};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::outcome::RunError;

/// A role one process can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Scanner,
    Chunker,
    Database,
    Errors,
    Notifications,
    /// The read API, dashboard and docs (HTTP; needs no broker connection of its own).
    Api,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Scanner,
        Role::Chunker,
        Role::Database,
        Role::Errors,
        Role::Notifications,
        Role::Api,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Scanner => "scanner",
            Role::Chunker => "chunker",
            Role::Database => "database",
            Role::Errors => "errors",
            Role::Notifications => "notifications",
            Role::Api => "api",
        }
    }

    /// Parses a role name as given on the command line.
    pub fn parse(name: &str) -> Option<Vec<Role>> {
        match name {
            "all" => Some(Role::ALL.to_vec()),
            "scanner" => Some(vec![Role::Scanner]),
            "chunker" | "validator" => Some(vec![Role::Chunker]),
            "database" | "loader" => Some(vec![Role::Database]),
            "errors" => Some(vec![Role::Errors]),
            "notifications" => Some(vec![Role::Notifications]),
            "api" => Some(vec![Role::Api]),
            _ => None,
        }
    }
}

/// A running fleet.
pub struct Fleet {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    pool: PgPool,
    api_addr: Option<std::net::SocketAddr>,
}

impl Fleet {
    /// Connects to the database, checks every dataset spec against its live table, opens
    /// the store and starts the roles. Fails fast on configuration problems.
    pub async fn start(config: Config, roles: &[Role], shutdown: CancellationToken) -> Result<Fleet, RunError> {
        // Before anything is recorded: metrics recorded without a recorder are lost.
        penstock_api::prometheus();
        crate::metrics::describe();
        let ctx = Context::open(config).await?;
        let (health, pool) = (ctx.health.clone(), ctx.pool.clone());
        // Fail fast if the broker is unreachable at start-up (later failures reconnect).
        RabbitMq::connect(&ctx.config.amqp_url, &ctx.config.queue_prefix)
            .await
            .map_err(|e| {
                RunError::Startup(format!(
                    "cannot connect to RabbitMQ at amqp_url: {e}; check PENSTOCK_AMQP_URL (including the vhost)"
                ))
            })?
            .close()
            .await;
        let mut tasks = JoinSet::new();
        let mut served = Vec::new();
        for (key, addr) in [
            ("health_addr", ctx.config.health_addr),
            ("metrics_addr", ctx.config.metrics_addr),
        ] {
            let Some(addr) = addr.filter(|a| !served.contains(a)) else {
                continue;
            };
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| RunError::Startup(format!("cannot listen on {key} {addr}: {e}")))?;
            served.push(addr);
            tasks.spawn(crate::health::serve(
                listener,
                health.clone(),
                pool.clone(),
                shutdown.clone(),
            ));
        }
        if roles.iter().any(|r| *r != Role::Api) {
            tasks.spawn(sample_queue_depths(ctx.clone(), shutdown.clone()));
        }
        let mut unique: Vec<Role> = roles.to_vec();
        unique.sort_by_key(|r| r.name());
        unique.dedup();
        let mut api_addr = None;
        for role in unique {
            if role == Role::Api {
                let Some(addr) = ctx.config.api_addr else {
                    tracing::warn!("the api role has no address (api_addr is empty); it serves nothing");
                    continue;
                };
                let listener = penstock_api::bind(addr).await.map_err(RunError::Startup)?;
                api_addr = listener.local_addr().ok();
                let api = Arc::new(penstock_api::Api::new(&ctx.config, pool.clone()));
                tasks.spawn(penstock_api::serve(listener, api, shutdown.clone()));
                continue;
            }
            tasks.spawn(supervise(ctx.clone(), role, shutdown.clone()));
        }
        Ok(Fleet {
            shutdown,
            tasks,
            pool,
            api_addr,
        })
    }

    /// Where the api role listens, when this fleet runs it.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api_addr
    }

    /// Asks every role to stop (same as a signal).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until every role has stopped, then closes the pool.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.pool.close().await;
    }

    /// Stops the fleet and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }
}

/// Every 5 s, records how many messages wait in each work queue (consumer lag).
async fn sample_queue_depths(ctx: Arc<Context>, shutdown: CancellationToken) {
    let mut broker: Option<RabbitMq> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        if broker.as_ref().is_none_or(|b| !b.is_connected()) {
            broker = RabbitMq::connect(&ctx.config.amqp_url, &ctx.config.queue_prefix)
                .await
                .ok();
        }
        let Some(b) = &broker else { continue };
        for (queue, ready) in (b as &dyn WorkQueue).ready_counts().await {
            crate::metrics::queue_ready(&queue, ready);
        }
    }
    if let Some(b) = broker {
        b.close().await;
    }
}

/// Runs one role until shutdown, reconnecting after failures.
async fn supervise(ctx: Arc<Context>, role: Role, shutdown: CancellationToken) {
    let mut backoff = reconnect_backoff();
    let mut failures: u32 = 0;
    let mut connected_before = false;
    while !shutdown.is_cancelled() {
        let result = match RabbitMq::connect(&ctx.config.amqp_url, &ctx.config.queue_prefix).await {
            Ok(broker) => {
                let broker: SharedQueue = std::sync::Arc::new(broker);
                if connected_before {
                    crate::metrics::reconnected(role.name());
                }
                connected_before = true;
                backoff = reconnect_backoff();
                failures = 0;
                ctx.health.set(role.name(), true);
                let result = match role {
                    Role::Scanner => crate::scanner::run(ctx.clone(), broker.clone(), shutdown.clone()).await,
                    Role::Chunker => crate::chunker::run(ctx.clone(), broker.clone(), shutdown.clone()).await,
                    Role::Database => crate::loader::run(ctx.clone(), broker.clone(), shutdown.clone()).await,
                    Role::Errors => crate::dead_letters::run(ctx.clone(), broker.clone(), shutdown.clone()).await,
                    Role::Notifications => {
                        crate::notifications::run(ctx.clone(), broker.clone(), shutdown.clone()).await
                    }
                    Role::Api => unreachable!("the api role is served by Fleet::start, not supervised"),
                };
                ctx.health.set(role.name(), false);
                broker.close().await;
                result
            }
            Err(e) => {
                ctx.health.set(role.name(), false);
                Err(e.into())
            }
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                let delay = backoff.next().unwrap_or(Duration::from_secs(30));
                failures += 1;
                tracing::warn!(role = role.name(), error = %e, ?delay, failures, "role stopped on an error; restarting");
                if failures >= 3 {
                    // The broker may be what is down, so this alert goes straight to the table.
                    let event = Event::new(
                        EventKind::ReconnectLoop {
                            role: role.name().into(),
                            failures,
                        },
                        role.name(),
                        format!("{} has failed {failures} times in a row: {e}", role.name()),
                        serde_json::json!({ "error": e.to_string() }),
                    );
                    if let Err(alert_error) = penstock_db::raise_alert(&ctx.pool, &event).await.map(|_| ()) {
                        tracing::warn!(error = %alert_error, "cannot record the reconnect-loop alert");
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    tracing::info!(role = role.name(), "role stopped");
}

fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter()
        .build()
}
