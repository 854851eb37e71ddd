//! The consumer loop every queue-driven role shares: bounded prefetch, one task per
//! delivery, settle (ack / requeue / dead-letter) only after the handler returns, and a
//! graceful drain on shutdown.

use std::future::Future;
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::{FutureExt, StreamExt};
use penstock_broker::{BasicAckOptions, Broker, BrokerError, Delivery, Queues};
use penstock_core::retry::Decision;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::outcome::Disposition;

/// Consumes `queue` until shutdown or a broker failure (returned, so the supervisor can
/// reconnect). `prefetch` bounds the deliveries held at once.
pub async fn consume<F, Fut>(
    broker: &Broker,
    queue: &str,
    prefetch: u16,
    grace: Duration,
    max_attempts: u32,
    shutdown: &CancellationToken,
    handler: F,
) -> Result<(), BrokerError>
where
    F: Fn(Delivery) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = (Delivery, Disposition)> + Send + 'static,
{
    let tag = format!("{queue}-{}-{}", std::process::id(), uuid_like());
    let (channel, mut consumer) = broker.consume(queue, prefetch, &tag).await?;
    let mut tasks: JoinSet<Result<(), BrokerError>> = JoinSet::new();
    let outcome = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok(Err(e)) = done {
                    break Err(e);
                }
            }
            next = consumer.next() => match next {
                Some(Ok(delivery)) => {
                    let handler = handler.clone();
                    let broker = broker.clone();
                    let queue = queue.to_string();
                    tasks.spawn(async move {
                        // Kept aside so that a handler that panics still settles its delivery
                        // (a lost delivery would hold a prefetch slot until the channel closes,
                        // then come back and panic again).
                        let (acker, body, id, attempt) =
                            (delivery.acker.clone(), delivery.data.clone(), message_id(&delivery), penstock_broker::attempt(&delivery));
                        // Every log line about this item carries these fields; handlers fill
                        // in what they learn from the body (dataset, file id, chunk).
                        let span = tracing::info_span!(
                            "item",
                            queue = %queue,
                            message_id = %id,
                            attempt,
                            dataset = tracing::field::Empty,
                            file_id = tracing::field::Empty,
                            chunk = tracing::field::Empty,
                        );
                        match AssertUnwindSafe(handler(delivery)).catch_unwind().instrument(span).await {
                            Ok((delivery, disposition)) => settle(&broker, &queue, max_attempts, delivery, disposition).await,
                            Err(panic) => {
                                let what = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_default();
                                let reason = format!("penstock could not handle this item (a bug: the handler panicked: {what})");
                                tracing::error!(queue = %queue, message_id = %id, %reason, "dead-lettering work item");
                                crate::metrics::dead_lettered(&queue);
                                let headers = penstock_broker::dead_letter_headers(&reason, attempt, &queue);
                                broker.publish_raw(&broker.queues.errors, &body, &id, headers).await?;
                                acker.ack(BasicAckOptions::default()).await?;
                                Ok(())
                            }
                        }
                    });
                }
                Some(Err(e)) => break Err(e.into()),
                None => break Err(BrokerError::ConsumerClosed),
            },
        }
    };
    // Stop intake first, then drain what is in flight for at most the grace period.
    let _ = channel.basic_cancel(tag.as_str().into(), Default::default()).await;
    let drained = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            queue,
            "grace period over: releasing unfinished deliveries unacknowledged"
        );
        tasks.abort_all();
    }
    // Closing the channel returns every unacknowledged delivery to the queue.
    let _ = channel.close(200, "penstock consumer stopping".into()).await;
    outcome
}

/// Acts on a disposition. Republishing (to a retry queue or the dead-letter queue) is
/// confirmed before the original is acked, so a crash in between duplicates the item at
/// worst (harmless: work is idempotent) and never loses it.
async fn settle(
    broker: &Broker,
    queue: &str,
    max_attempts: u32,
    delivery: Delivery,
    disposition: Disposition,
) -> Result<(), BrokerError> {
    let disposition = match disposition {
        Disposition::Retry(reason) => {
            let attempt = penstock_broker::attempt(&delivery);
            match penstock_core::retry::decide(attempt, max_attempts, true, &reason) {
                Decision::Retry { delay, next_attempt } => {
                    let id = message_id(&delivery);
                    let retry_queue = Queues::retry(queue, delay);
                    tracing::info!(queue, message_id = %id, attempt, ?delay, "retrying later");
                    crate::metrics::retried(queue);
                    let headers = penstock_broker::attempt_headers(next_attempt);
                    broker.publish_raw(&retry_queue, &delivery.data, &id, headers).await?;
                    delivery.ack(BasicAckOptions::default()).await?;
                    return Ok(());
                }
                Decision::DeadLetter(reason) => Disposition::DeadLetter(reason),
            }
        }
        other => other,
    };
    match disposition {
        Disposition::Ack | Disposition::Retry(_) => {
            delivery.ack(BasicAckOptions::default()).await?;
        }
        Disposition::DeadLetter(reason) => {
            let id = message_id(&delivery);
            let attempt = penstock_broker::attempt(&delivery);
            tracing::warn!(queue, message_id = %id, %reason, "dead-lettering work item");
            crate::metrics::dead_lettered(queue);
            let headers = penstock_broker::dead_letter_headers(&reason, attempt, queue);
            broker
                .publish_raw(&broker.queues.errors, &delivery.data, &id, headers)
                .await?;
            delivery.ack(BasicAckOptions::default()).await?;
        }
    }
    Ok(())
}

fn message_id(delivery: &Delivery) -> String {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default()
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

#[cfg(test)]
mod tests {
    //! Against the machine's real RabbitMQ, with a queue prefix of its own.
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_that_panics_dead_letters_its_item_instead_of_losing_it() {
        let url =
            std::env::var("PENSTOCK_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let prefix = format!("panic{}", std::process::id());
        let broker = Broker::connect(&url, &prefix).await.unwrap();
        broker
            .publish_raw(&broker.queues.chunks, b"{}", "boom-1", Default::default())
            .await
            .unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let chunks = broker.queues.chunks.clone();
        let consumer = {
            let broker = broker.clone();
            tokio::spawn(async move {
                consume(
                    &broker,
                    &chunks,
                    1,
                    Duration::from_secs(5),
                    3,
                    &stop,
                    |_delivery: Delivery| async move {
                        panic!("simulated bug");
                        #[allow(unreachable_code)]
                        (_delivery, Disposition::Ack)
                    },
                )
                .await
            })
        };
        let mut dead = 0;
        for _ in 0..100 {
            dead = broker.ready_count(&broker.queues.errors).await.unwrap();
            if dead > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        consumer.await.unwrap().unwrap();
        let left = broker.ready_count(&broker.queues.chunks).await.unwrap();
        broker.delete_queues().await.unwrap();
        broker.close().await;
        assert_eq!(
            (dead, left),
            (1, 0),
            "dead-lettered once, and acked so it does not come back"
        );
    }
}
