//! The one consumer loop every queue-driven role runs: decode → handle → settle.
//!
//! A [`Stage`] says which queue it reads, how many deliveries it may hold, how it decodes an
//! item and how it handles it; [`run`] does the rest the same way for every role: bounded
//! prefetch, one task per delivery (or per batch), a span per item, a handler that panics
//! dead-letters its item instead of losing it, settling only after the handler returns, and
//! one shutdown path (stop intake, drain for the grace period, release the rest).
//!
//! Settling republishes before it acks (to a retry queue, or to the errors queue), so a
//! crash in between duplicates the item at worst (harmless: work is idempotent) and never
//! loses it. A settle that fails ends the loop with the error: the supervisor reconnects,
//! and the unsettled item comes back.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use penstock_broker::{BrokerError, Delivery, Meta, SharedQueue, Subscription, WorkQueue};
use penstock_core::retry::Decision;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::outcome::Disposition;

/// How many deliveries a stage handles at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// Each delivery on its own task.
    One,
    /// Up to `max` deliveries together, waiting at most `wait` for the batch to fill.
    UpTo { max: usize, wait: Duration },
}

/// One consumer role.
#[async_trait::async_trait]
pub trait Stage: Send + Sync + 'static {
    type Item: Send + 'static;

    /// The queue it consumes.
    fn queue(&self) -> &str;
    /// The most deliveries it holds unsettled at once.
    fn prefetch(&self) -> u16;
    fn batching(&self) -> Batching {
        Batching::One
    }
    /// The item a delivery carries; an error dead-letters the delivery with that reason.
    fn decode(&self, body: &[u8], meta: &Meta, redelivered: bool) -> Result<Self::Item, String>;
    /// Records what the item says about itself (dataset, file id, chunk) on its span.
    fn describe(&self, _item: &Self::Item, _span: &tracing::Span) {}
    /// A delivery whose handler is still at work after this long is acked there and then, so
    /// the broker's `consumer_timeout` (30 min by default) never takes a long handler's item
    /// back and hands it out again from the start. The stage must not need the delivery any
    /// more by then (the ledger has the work: the chunker's file is `chunking`, and the
    /// reconciler recovers it if the process dies); a later retry or dead-letter is still
    /// published as usual. None: settled only when the handler returns.
    fn settle_early_after(&self) -> Option<Duration> {
        None
    }
    /// Handles one item.
    async fn handle(&self, item: Self::Item) -> Disposition;
    /// Handles a batch (one disposition per item, in order); one by one unless overridden.
    async fn handle_all(&self, items: Vec<Self::Item>) -> Vec<Disposition> {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.handle(item).await);
        }
        out
    }
}

/// What every stage shares: how long to drain at shutdown and when to stop retrying.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub grace: Duration,
    pub max_attempts: u32,
}

/// Consumes the stage's queue until shutdown (`Ok`) or a broker failure (`Err`, so the
/// supervisor can reconnect).
pub async fn run<S: Stage>(
    stage: Arc<S>,
    queue: SharedQueue,
    settings: Settings,
    shutdown: &CancellationToken,
) -> Result<(), BrokerError> {
    let name = stage.queue().to_string();
    let mut subscription = queue.subscribe(&name, stage.prefetch()).await?;
    let mut tasks: JoinSet<Result<(), BrokerError>> = JoinSet::new();
    let outcome = loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                Ok(Err(e)) => break Err(e),
                _ => continue,
            },
            next = subscription.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => break Err(e),
                None => break Err(BrokerError::ConsumerClosed),
            },
        };
        let batch = match fill(first, stage.batching(), subscription.as_mut(), shutdown).await {
            Ok(batch) => batch,
            Err(e) => break Err(e),
        };
        let (stage, queue, name) = (stage.clone(), queue.clone(), name.clone());
        tasks.spawn(async move { handle(stage.as_ref(), queue.as_ref(), &name, settings, batch).await });
    };
    // Stop intake first, then drain what is in flight for at most the grace period.
    subscription.stop().await;
    let drained = tokio::time::timeout(settings.grace, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(queue = %name, error = %e, "cannot settle a delivery while stopping; it comes back");
            }
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(queue = %name, "grace period over: releasing unfinished deliveries unacknowledged");
        tasks.abort_all();
    }
    // Closing the subscription returns every unsettled delivery to the queue.
    subscription.close().await;
    outcome
}

/// The batch that starts with `first`: more deliveries while the batch has room and its
/// wait lasts.
async fn fill(
    first: Delivery,
    batching: Batching,
    subscription: &mut dyn Subscription,
    shutdown: &CancellationToken,
) -> Result<Vec<Delivery>, BrokerError> {
    let mut batch = vec![first];
    let Batching::UpTo { max, wait } = batching else {
        return Ok(batch);
    };
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    while batch.len() < max {
        tokio::select! {
            _ = &mut deadline => break,
            _ = shutdown.cancelled() => break,
            next = subscription.next() => match next {
                Some(Ok(delivery)) => batch.push(delivery),
                Some(Err(e)) => return Err(e),
                None => break,
            },
        }
    }
    Ok(batch)
}

/// Decodes, handles and settles one batch.
async fn handle<S: Stage>(
    stage: &S,
    queue: &dyn WorkQueue,
    name: &str,
    settings: Settings,
    batch: Vec<Delivery>,
) -> Result<(), BrokerError> {
    // Every log line about an item carries these fields; the stage adds what the item
    // says about itself.
    let span = match batch.as_slice() {
        [one] => tracing::info_span!(
            "item",
            queue = %name,
            message_id = %one.meta.message_id,
            attempt = one.meta.attempt,
            dataset = tracing::field::Empty,
            file_id = tracing::field::Empty,
            chunk = tracing::field::Empty,
        ),
        many => tracing::info_span!("batch", queue = %name, items = many.len()),
    };
    let mut decoded = Vec::with_capacity(batch.len());
    let mut acked_early = false;
    let mut dispositions: Vec<Option<Disposition>> = Vec::with_capacity(batch.len());
    for delivery in &batch {
        match stage.decode(&delivery.body, &delivery.meta, delivery.redelivered) {
            Ok(item) => {
                if batch.len() == 1 {
                    stage.describe(&item, &span);
                }
                decoded.push(item);
                dispositions.push(None);
            }
            Err(reason) => dispositions.push(Some(Disposition::DeadLetter(reason))),
        }
    }
    let handled = if decoded.is_empty() {
        Vec::new()
    } else {
        // The deliveries stay here, so a handler that panics still settles them (a lost
        // delivery would hold a prefetch slot until the subscription closes, then come back
        // and panic again).
        let work = AssertUnwindSafe(stage.handle_all(decoded))
            .catch_unwind()
            .instrument(span.clone());
        tokio::pin!(work);
        let handled = match (stage.settle_early_after(), batch.as_slice()) {
            (Some(after), [one]) => tokio::select! {
                handled = &mut work => handled,
                _ = tokio::time::sleep(after) => {
                    match one.ack_in_place().await {
                        Ok(()) => {
                            acked_early = true;
                            tracing::info!(parent: &span, queue = %name, ?after, "still at work: acked the item early");
                        }
                        Err(e) => tracing::warn!(parent: &span, queue = %name, error = %e, "cannot ack early; the item stays unacked"),
                    }
                    work.await
                }
            },
            _ => work.await,
        };
        match handled {
            Ok(handled) => handled,
            Err(panic) => {
                let reason = format!(
                    "penstock could not handle this item (a bug: the handler panicked: {})",
                    panic_message(panic.as_ref())
                );
                vec![Disposition::DeadLetter(reason); dispositions.iter().filter(|d| d.is_none()).count()]
            }
        }
    };
    let mut handled = handled.into_iter();
    for (delivery, disposition) in batch.into_iter().zip(dispositions) {
        let disposition = disposition
            .or_else(|| handled.next())
            .unwrap_or_else(|| Disposition::DeadLetter("the stage returned no disposition for this item".into()));
        settle(queue, name, settings.max_attempts, delivery, disposition, acked_early)
            .instrument(span.clone())
            .await?;
    }
    Ok(())
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// How a delivery was settled: logged and counted in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Acked,
    Retried { delay: Duration },
    DeadLettered,
    Released,
    Parked,
}

impl Settled {
    fn record(self, queue: &str, meta: &Meta, reason: &str) {
        let id = meta.message_id.as_str();
        match self {
            Settled::Acked => {}
            Settled::Retried { delay } => {
                tracing::info!(queue, message_id = %id, attempt = meta.attempt, ?delay, %reason, "retrying later");
                crate::metrics::retried(queue);
            }
            Settled::DeadLettered => {
                tracing::warn!(queue, message_id = %id, %reason, "dead-lettering work item");
                crate::metrics::dead_lettered(queue);
            }
            Settled::Released => {
                tracing::warn!(queue, message_id = %id, %reason, "released for later");
            }
            Settled::Parked => {
                tracing::error!(queue, message_id = %id, %reason, "parked: it cannot be recorded");
            }
        }
        crate::metrics::delivery_settled(queue, self.label());
    }

    fn label(self) -> &'static str {
        match self {
            Settled::Acked => "acked",
            Settled::Retried { .. } => "retried",
            Settled::DeadLettered => "dead_lettered",
            Settled::Released => "released",
            Settled::Parked => "parked",
        }
    }
}

/// Acts on a disposition: republish (confirmed) first, then ack (unless it was acked early:
/// then a release is a republish to the same queue).
async fn settle(
    queue: &dyn WorkQueue,
    name: &str,
    max_attempts: u32,
    delivery: Delivery,
    disposition: Disposition,
    acked_early: bool,
) -> Result<(), BrokerError> {
    let (settled, reason) = match disposition {
        Disposition::Ack => (Settled::Acked, String::new()),
        Disposition::Release(reason) if acked_early => {
            queue.publish(name, &delivery.body, &delivery.meta).await?;
            Settled::Released.record(name, &delivery.meta, &reason);
            return Ok(());
        }
        Disposition::Release(reason) => {
            let meta = delivery.meta.clone();
            delivery.release().await?;
            Settled::Released.record(name, &meta, &reason);
            return Ok(());
        }
        Disposition::Retry(reason) => {
            match penstock_core::retry::decide(delivery.meta.attempt, max_attempts, true, &reason) {
                Decision::Retry { delay, next_attempt } => {
                    let next = delivery.meta.next_attempt(next_attempt);
                    queue.publish_later(name, &delivery.body, &next, delay).await?;
                    (Settled::Retried { delay }, reason)
                }
                Decision::DeadLetter(reason) => {
                    queue.dead_letter(name, &delivery.body, &delivery.meta, &reason).await?;
                    (Settled::DeadLettered, reason)
                }
            }
        }
        Disposition::DeadLetter(reason) => {
            queue.dead_letter(name, &delivery.body, &delivery.meta, &reason).await?;
            (Settled::DeadLettered, reason)
        }
        Disposition::Park(reason) => {
            let parked = queue.queues().parked.clone();
            // Where it came from stays as it was; the reason says why it is parked.
            let mut meta = delivery.meta.clone();
            meta.reason = Some(reason.clone());
            queue.publish(&parked, &delivery.body, &meta).await?;
            (Settled::Parked, reason)
        }
    };
    let meta = delivery.meta.clone();
    if !acked_early {
        delivery.ack().await?;
    }
    settled.record(name, &meta, &reason);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
