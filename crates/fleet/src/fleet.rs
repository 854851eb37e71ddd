//! A running fleet: the roles asked for, the api role, the health server, and queue-depth
//! sampling, in one process. Shutdown follows `penstock_workers::shutdown`'s order.

use std::sync::Arc;
use std::time::Duration;

use penstock_api::{Health, RoleHealth};
use penstock_broker::{BrokerError, RabbitMq, WorkQueue};
use penstock_config::Config;
use penstock_db::{Databases, DbError, PgPool};
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
    health_addrs: Vec<std::net::SocketAddr>,
}

impl Fleet {
    /// Connects to the database, checks every dataset spec against its live table, opens
    /// the store and starts the roles. Fails fast on configuration problems.
    pub async fn start(config: Config, roles: &[Role], shutdown: CancellationToken) -> Result<Fleet, RunError> {
        // Before anything is recorded: metrics recorded without a recorder are lost.
        penstock_api::prometheus();
        penstock_workers::metrics::describe();
        let ctx = Context::open(config).await?;
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
        let mut api = match ctx.config.api_addr {
            Some(addr) if roles.contains(&Role::Api) => Some((addr, connect_api(&ctx).await?)),
            _ => None,
        };
        // One readiness answer for the process, on every port it serves: the databases its
        // roles use (the API's own pools, and whether its standby keeps up), and the
        // connections of its broker-using roles.
        let roles_health = Arc::new(RoleHealth::default());
        let mut health = Health::new(roles_health.clone());
        if roles.iter().any(|r| *r != Role::Api) || api.is_none() {
            health = health.watching(&ctx.dbs);
        }
        if let Some((_, (dbs, _))) = &api {
            health = penstock_api::Api::health(health, &ctx.config, dbs);
        }
        let health = Arc::new(health);
        let mut tasks = JoinSet::new();
        let mut served = Vec::new();
        let mut health_addrs = Vec::new();
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
            health_addrs.extend(listener.local_addr().ok());
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
                match api.take() {
                    Some((addr, (dbs, writes))) => {
                        let listener = penstock_api::bind(addr).await.map_err(RunError::Startup)?;
                        api_addr = listener.local_addr().ok();
                        let api = Arc::new(penstock_api::Api::new(&ctx.config, dbs, writes, health.clone()));
                        tasks.spawn(penstock_api::serve(listener, api, shutdown.clone()));
                    }
                    None => tracing::warn!("the api role has no address (api_addr is empty); it serves nothing"),
                }
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
            health_addrs,
        })
    }

    /// Where the api role listens, when this fleet runs it.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api_addr
    }

    /// Where this fleet serves `/health`, `/ready` and `/metrics` apart from the API
    /// (`health_addr`, and `metrics_addr` when it differs).
    pub fn health_addrs(&self) -> &[std::net::SocketAddr] {
        &self.health_addrs
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

/// The api role's own pools (however many clients call, they cannot take the loaders'
/// connections), on a standby when `api_database_url` names one, and where its few writes
/// (alert actions) go: the primary.
async fn connect_api(ctx: &Context) -> Result<(Databases, PgPool), RunError> {
    let config = &ctx.config;
    let (read_url, key) = match &config.api_database_url {
        Some(url) => (url.as_str(), "api_database_url"),
        None => (config.database_url.as_str(), "database_url"),
    };
    let dbs = waiting_for("PostgreSQL", config.startup_wait, DbError::is_transient, async || {
        Databases::connect(read_url, &config.dataset_databases(), config.api_database_connections).await
    })
    .await
    .map_err(|e| RunError::Startup(format!("cannot connect the API to PostgreSQL at {key}: {e}")))?;
    let writes = if config.api_database_url.is_some() {
        ctx.home().clone()
    } else {
        dbs.home().clone()
    };
    Ok((dbs, writes))
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
