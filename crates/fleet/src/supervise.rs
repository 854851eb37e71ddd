//! Runs one broker role until shutdown: its own broker connection, reconnecting with
//! exponential backoff and jitter when the broker fails (the database pool reconnects on its
//! own), its connection state reported for readiness, and an alert after three failures in
//! a row.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use penstock_api::RoleHealth;
use penstock_broker::{BrokerError, SharedQueue};
use penstock_core::event::{Event, EventKind};
use penstock_workers::context::{Context, connect_broker};
use penstock_workers::outcome::RunError;
use penstock_workers::stage;
use tokio_util::sync::CancellationToken;

use crate::role::Role;

/// Runs `role` until shutdown, reconnecting after failures.
pub async fn supervise(ctx: Arc<Context>, role: Role, health: Arc<RoleHealth>, shutdown: CancellationToken) {
    let mut backoff = reconnect_backoff();
    let mut failures: u32 = 0;
    let mut connected_before = false;
    while !shutdown.is_cancelled() {
        let connect = connect_broker(&ctx.config);
        let connected = tokio::select! {
            _ = shutdown.cancelled() => break,
            connected = connect => connected,
        };
        let result = match connected {
            Ok(broker) => {
                let queue: SharedQueue = Arc::new(broker);
                if connected_before {
                    penstock_workers::metrics::Occurrence::Reconnected { role: role.name() }.record();
                }
                connected_before = true;
                backoff = reconnect_backoff();
                failures = 0;
                health.set(role.name(), true);
                // A lost connection stops the run even when the role is not waiting on the
                // broker (an idle scanner, a consumer stream that never ends). The role is
                // asked to stop as at shutdown rather than dropped, so work in hand is never
                // cut off in the middle of a database exchange; its unsettled deliveries are
                // back in their queues already.
                let stop = shutdown.child_token();
                let running = run(role, ctx.clone(), queue.clone(), stop.clone());
                tokio::pin!(running);
                let result = tokio::select! {
                    result = &mut running => result,
                    _ = queue.lost() => {
                        stop.cancel();
                        running.await
                    }
                };
                let result = match result {
                    Ok(()) if stop.is_cancelled() && !shutdown.is_cancelled() => Err(BrokerError::Disconnected.into()),
                    other => other,
                };
                health.set(role.name(), false);
                queue.close().await;
                result
            }
            Err(e) => {
                health.set(role.name(), false);
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
                    raise_reconnect_loop(&ctx, role, failures, &e).await;
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

/// One connection's worth of a role: the scanner's loop, or a consumer role's stage.
async fn run(role: Role, ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    use penstock_workers::chunker::Chunker;
    use penstock_workers::dead_letters::DeadLetters;
    use penstock_workers::loader::Loader;
    use penstock_workers::notifications::Notifications;
    let settings = ctx.settings();
    let other = queue.clone();
    let served = match role {
        Role::Scanner => return penstock_workers::scanner::run(ctx, queue, shutdown).await,
        Role::Reconciler => return penstock_workers::reconciler::run(ctx, queue, shutdown).await,
        Role::Chunker => stage::run(Arc::new(Chunker { ctx, queue: other }), queue, settings, &shutdown).await,
        Role::Database => stage::run(Arc::new(Loader { ctx, queue: other }), queue, settings, &shutdown).await,
        Role::Errors => stage::run(Arc::new(DeadLetters { ctx, queue: other }), queue, settings, &shutdown).await,
        // The consumer and the outbox relay, on one connection: when either stops (the
        // other's broker failed, or shutdown), the other is asked to stop too, never dropped.
        Role::Notifications => {
            let stop = shutdown.child_token();
            let notifications = Arc::new(Notifications::new(ctx.clone(), other.clone()));
            let relay = async {
                let relayed = penstock_workers::relay::run(ctx, other, stop.clone()).await;
                stop.cancel();
                relayed
            };
            let consume = async {
                let served = stage::run(notifications, queue, settings, &stop).await;
                stop.cancel();
                served
            };
            let (relayed, served) = tokio::join!(relay, consume);
            relayed?;
            served
        }
        Role::Api => unreachable!("the api role is served by Fleet::start, not supervised"),
    };
    Ok(served?)
}

/// The broker may be what is down, so this alert goes straight to the table.
async fn raise_reconnect_loop(ctx: &Context, role: Role, failures: u32, error: &RunError) {
    let event = Event::new(
        EventKind::ReconnectLoop {
            role: role.name().into(),
            failures,
        },
        role.name(),
        format!("{} has failed {failures} times in a row: {error}", role.name()),
        serde_json::json!({ "error": error.to_string() }),
    );
    if let Err(alert_error) = penstock_db::raise_alert(ctx.home(), &event).await {
        tracing::warn!(error = %alert_error, "cannot record the reconnect-loop alert");
    }
}

fn reconnect_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter()
        .build()
}
