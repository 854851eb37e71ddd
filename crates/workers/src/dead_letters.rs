//! Error consumer (role `errors`): consumes dead work items from `<prefix>.errors`, records
//! them in batches in `ingest_errors` (kind `dead_item`: message id, reason, attempts, source
//! queue, the item itself) and marks the file versions they name `failed` with the reason.
//!
//! Acks a batch only after its transaction commits; inserts are `ON CONFLICT DO NOTHING` on
//! the message id, so a redelivered batch is harmless. If PostgreSQL is unavailable the
//! batch is released (nack with requeue) after a backoff, never dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use penstock_broker::{BasicAckOptions, BasicNackOptions, Broker, Delivery};
use penstock_core::event::{Event, EventKind};
use penstock_db::DeadItem;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::outcome::{RunError, Step, retrying};

const BATCH: usize = 100;
const BATCH_WAIT: Duration = Duration::from_millis(200);

pub async fn run(ctx: Arc<Context>, broker: Broker, shutdown: CancellationToken) -> Result<(), RunError> {
    let queue = broker.queues.errors.clone();
    let tag = format!("{queue}-{}", std::process::id());
    let (channel, mut consumer) = broker.consume(&queue, BATCH as u16, &tag).await?;
    let result = loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = consumer.next() => match next {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => break Err(RunError::from(penstock_broker::BrokerError::from(e))),
                None => break Err(penstock_broker::BrokerError::ConsumerClosed.into()),
            },
        };
        let mut batch = vec![first];
        let deadline = tokio::time::sleep(BATCH_WAIT);
        tokio::pin!(deadline);
        while batch.len() < BATCH {
            tokio::select! {
                _ = &mut deadline => break,
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => batch.push(delivery),
                    _ => break,
                },
            }
        }
        let items: Vec<DeadItem> = batch.iter().map(dead_item).collect();
        match retrying(|| async {
            penstock_db::record_dead_items(&ctx.pool, &items)
                .await
                .map_err(Step::from)
        })
        .await
        {
            Ok(recorded) => {
                for item in &items {
                    tracing::warn!(message_id = %item.message_id, file_id = ?item.file_id, reason = %item.reason, "dead item recorded");
                }
                tracing::info!(batch = items.len(), new = recorded, "dead items committed");
                for item in &items {
                    let queue = item.source_queue.clone().unwrap_or_else(|| "unknown".into());
                    let metadata = serde_json::json!({
                        "message_id": item.message_id, "file_id": item.file_id, "attempts": item.attempts,
                    });
                    let message = format!("dead item from {queue}: {}", item.reason);
                    ctx.emit(
                        &broker,
                        Event::new(EventKind::DeadLetter { queue }, "errors", message, metadata),
                    )
                    .await;
                }
                for delivery in batch {
                    delivery
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(penstock_broker::BrokerError::from)?;
                }
            }
            Err(Step::Transient(reason)) | Err(Step::Permanent(reason)) => {
                tracing::error!(%reason, "cannot record dead items; releasing them for later");
                tokio::time::sleep(Duration::from_secs(2)).await;
                for delivery in batch {
                    let requeue = BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    };
                    delivery
                        .nack(requeue)
                        .await
                        .map_err(penstock_broker::BrokerError::from)?;
                }
            }
        }
    };
    let _ = channel.close(200, "penstock error consumer stopping".into()).await;
    result
}

/// What a dead-lettered delivery says about itself.
fn dead_item(delivery: &Delivery) -> DeadItem {
    let item: Option<serde_json::Value> = serde_json::from_slice(&delivery.data).ok();
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty())
        // No id: derive one from the bytes, so redelivery of the same item is still one row.
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(&delivery.data))));
    const MAX_RAW: usize = 64 * 1024;
    let raw = String::from_utf8_lossy(&delivery.data[..delivery.data.len().min(MAX_RAW)]).into_owned();
    DeadItem {
        message_id,
        source_queue: penstock_broker::header(delivery, "x-penstock-source-queue"),
        reason: penstock_broker::header(delivery, "x-penstock-reason")
            .unwrap_or_else(|| "dead-lettered without a reason".into()),
        attempts: penstock_broker::attempt(delivery) as i32,
        file_id: item.as_ref().and_then(|v| v.get("file_id")).and_then(|v| v.as_i64()),
        raw,
        item,
    }
}
