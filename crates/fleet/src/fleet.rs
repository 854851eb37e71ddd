//! A running fleet: the roles asked for, the api role, the health server, and queue-depth
//! sampling, in one process. Shutdown follows `penstock_workers::shutdown`'s order.

use std::sync::Arc;
use std::time::Duration;

use penstock_api::{Health, RoleHealth};
use penstock_broker::{BrokerError, RabbitMq, WorkQueue};
use penstock_config::Config;
use penstock_db::DbError;
use penstock_workers::context::{Context, connect_broker};
use penstock_workers::outcome::RunError;
use penstock_workers::startup::waiting_for;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::role::Role;
use crate::supervise::supervise;

/// A running fleet.
pub struct Fleet {
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
    ctx: Arc<Context>,
    api_addr: Option<std::net::SocketAddr>,
}

impl Fleet {
    /// Connects to the database, checks every dataset spec against its live table, opens
    /// the store and starts the roles. Fails fast on configuration problems.
    pub async fn start(config: Config, roles: &[Role], shutdown: CancellationToken) -> Result<Fleet, RunError> {
        // Before anything is recorded: metrics recorded without a recorder are lost.
        penstock_api::prometheus();
        penstock_workers::metrics::describe();
        let ctx = Context::open(config).await?;
        let pool = ctx.home().clone();
        let roles_health = Arc::new(RoleHealth::default());
        let health = Arc::new(Health::new(ctx.dbs.clone(), roles_health.clone()));
        // A broker still starting is waited for (startup_wait); one that refuses, or stays
        // unreachable, stops the start with the error (later failures reconnect).
        waiting_for(
            "RabbitMQ",
            ctx.config.startup_wait,
            BrokerError::is_unreachable,
            async || connect_broker(&ctx.config).await,
        )
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
            tasks.spawn(serve_health(listener, health.clone(), shutdown.clone()));
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
                // Its own pool: however many clients call, they cannot take the loaders'
                // connections. It reads from a standby when api_database_url names one.
                let (read_url, key) = match &ctx.config.api_database_url {
                    Some(url) => (url.as_str(), "api_database_url"),
                    None => (ctx.config.database_url.as_str(), "database_url"),
                };
                let api_dbs = waiting_for(
                    "PostgreSQL",
                    ctx.config.startup_wait,
                    DbError::is_transient,
                    async || {
                        penstock_db::Databases::connect(
                            read_url,
                            &ctx.config.dataset_databases(),
                            ctx.config.api_database_connections,
                        )
                        .await
                    },
                )
                .await
                .map_err(|e| RunError::Startup(format!("cannot connect the API to PostgreSQL at {key}: {e}")))?;
                // Alert actions write: to the primary, on the process's own pool.
                let writes = if ctx.config.api_database_url.is_some() {
                    pool.clone()
                } else {
                    api_dbs.home().clone()
                };
                let api = Arc::new(penstock_api::Api::new(
                    &ctx.config,
                    api_dbs,
                    writes,
                    roles_health.clone(),
                ));
                tasks.spawn(penstock_api::serve(listener, api, shutdown.clone()));
                continue;
            }
            // Listed as not connected until it is: readiness must not say "ready" while a
            // role is still connecting (a fleet half up is not ready).
            roles_health.set(role.name(), false);
            tasks.spawn(supervise(ctx.clone(), role, roles_health.clone(), shutdown.clone()));
        }
        Ok(Fleet {
            shutdown,
            tasks,
            ctx,
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

    /// Waits until every role has stopped, then closes the pools.
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.ctx.dbs.close().await;
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
        // Raced with shutdown: a broker that does not answer must not hold up stopping.
        let sample = async {
            if broker.as_ref().is_none_or(|b| !b.is_connected()) {
                broker = connect_broker(&ctx.config).await.ok();
            }
            let Some(b) = &broker else { return };
            for (queue, ready) in (b as &dyn WorkQueue).ready_counts().await {
                penstock_workers::metrics::queue_ready(&queue, ready);
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sample => {}
        }
    }
    if let Some(b) = broker {
        b.close().await;
    }
}

/// Serves `/health`, `/ready` and `/metrics` on a listener until shutdown.
async fn serve_health(listener: tokio::net::TcpListener, health: Arc<Health>, shutdown: CancellationToken) {
    penstock_api::serve_http(listener, penstock_api::health_router(health), shutdown).await;
}
