//! Outbox relay (part of the notifications role): publishes the events the ledger's
//! transactions wrote to the outbox (`penstock_db::Unsent`) to `<prefix>.events`, each with
//! a publisher confirm, and marks them sent in the transaction that claimed them. Several
//! relays may run: each claims its batch with `FOR UPDATE SKIP LOCKED`.
//!
//! Consumes: the outbox. Produces: events (message id `outbox-<id>`). Guarantees: an event
//! is marked sent only after the broker confirmed it; a relay stopped between the two
//! publishes it again, and the notification consumer raises its alert once (it marks the
//! outbox row alerted in the alert's transaction).

use std::sync::Arc;
use std::time::{Duration, Instant};

use penstock_broker::{SharedQueue, WorkQueue};
use penstock_db::Unsent;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::outcome::RunError;

/// Events claimed in one pass.
const BATCH: i64 = 100;
/// How often an idle relay looks at the outbox.
const POLL: Duration = Duration::from_millis(200);
/// How often sent events older than [`KEEP_DAYS`] are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const KEEP_DAYS: i32 = 7;

/// The message id an outbox event is published under.
pub fn message_id(outbox_id: i64) -> String {
    format!("outbox-{outbox_id}")
}

/// The outbox id a message id names, if it names one.
pub fn outbox_id(message_id: &str) -> Option<i64> {
    message_id.strip_prefix("outbox-")?.parse().ok()
}

pub async fn run(ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    let mut pruned = Instant::now();
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match relay_once(&ctx, queue.as_ref()).await {
            // A full batch: more may be waiting.
            Ok(sent) if sent as i64 >= BATCH => continue,
            Ok(_) => {}
            // The broker is what failed: reconnect (the supervisor does).
            Err(e @ RunError::Broker(_)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "outbox relay pass failed; trying again"),
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            for pool in ctx.dbs.pools() {
                match penstock_db::prune_outbox(pool, KEEP_DAYS).await {
                    Ok(deleted) => tracing::debug!(deleted, "outbox pruned"),
                    Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Publishes one batch of unsent events from each database's outbox; returns the most it
/// took from one (a full batch: more may be waiting there).
pub async fn relay_once(ctx: &Context, queue: &dyn WorkQueue) -> Result<usize, RunError> {
    let mut most = 0;
    for pool in ctx.dbs.pools() {
        most = most.max(relay_from(pool, queue).await?);
    }
    Ok(most)
}

async fn relay_from(pool: &penstock_db::PgPool, queue: &dyn WorkQueue) -> Result<usize, RunError> {
    let batch = Unsent::claim(pool, BATCH).await?;
    let events = &queue.queues().events;
    for (id, event) in &batch.events {
        match event {
            Ok(event) => queue.publish_json(events, event, &message_id(*id)).await?,
            // Written by another version of penstock: logged, not published forever.
            Err(text) => {
                tracing::error!(outbox_id = id, %text, "an outbox event cannot be read; marked sent unpublished")
            }
        }
    }
    let taken = batch.events.len();
    batch.sent().await?;
    if taken > 0 {
        tracing::debug!(events = taken, "outbox events published");
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_events_message_id_names_its_row_and_nothing_else_does() {
        assert_eq!(outbox_id(&message_id(42)), Some(42));
        assert_eq!(outbox_id("event-1-2"), None);
        assert_eq!(outbox_id("outbox-x"), None);
    }
}
