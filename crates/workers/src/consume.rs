//! The consumer loop every queue-driven role shares: bounded prefetch, one task per
//! delivery, settle (ack / requeue / dead-letter) only after the handler returns, and a
//! graceful drain on shutdown.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use penstock_broker::{BasicAckOptions, Broker, BrokerError, Delivery, Queues};
use penstock_core::retry::Decision;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What to do with a delivery once its handler has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The effect is committed (or there is none to have): acknowledge.
    Ack,
    /// A transient failure outlasted the in-process retries: publish it to the retry queue
    /// for its attempt (or dead-letter it past the attempt limit), then ack.
    Retry(String),
    /// A permanent failure: publish it to `<prefix>.errors` with the reason, then ack.
    DeadLetter(String),
}

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
                        let (delivery, disposition) = handler(delivery).await;
                        settle(&broker, &queue, max_attempts, delivery, disposition).await
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
