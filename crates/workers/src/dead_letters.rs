//! Error consumer (role `errors`): consumes dead work items from `<prefix>.errors`, records
//! them in batches in `ingest_errors` (kind `dead_item`: message id, reason, attempts, source
//! queue, the item itself) and marks the file versions they name `failed` with the reason.
//!
//! Acks a batch only after its transaction commits; inserts are `ON CONFLICT DO NOTHING` on
//! the message id, so a redelivered batch is harmless. If PostgreSQL is unavailable the
//! batch is released (nack with requeue) after a backoff, never dropped. If PostgreSQL refuses
//! a batch (a constraint, a trigger), the items are recorded one by one, and an item it still
//! refuses is parked in `<prefix>.errors.parked` (bytes intact, with why) with a critical
//! alert, instead of being requeued forever.

use std::sync::Arc;
use std::time::Duration;

use penstock_broker::{Meta, SharedQueue};
use penstock_core::event::{Event, EventKind};
use penstock_db::DeadItem;
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::outcome::{Disposition, Step, retrying};
use crate::stage::{Batching, Stage};

const BATCH: usize = 100;
const BATCH_WAIT: Duration = Duration::from_millis(200);
/// How long a batch that cannot be recorded waits before it is released.
const RELEASE_AFTER: Duration = Duration::from_secs(2);

/// The error consumer as a stage: batches of dead items, recorded in one transaction.
pub struct DeadLetters {
    pub ctx: Arc<Context>,
    pub queue: SharedQueue,
}

#[async_trait::async_trait]
impl Stage for DeadLetters {
    type Item = DeadItem;

    fn queue(&self) -> &str {
        &self.queue.queues().errors
    }

    fn prefetch(&self) -> u16 {
        BATCH as u16
    }

    fn batching(&self) -> Batching {
        Batching::UpTo {
            max: BATCH,
            wait: BATCH_WAIT,
        }
    }

    fn decode(&self, body: &[u8], meta: &Meta, _redelivered: bool) -> Result<DeadItem, String> {
        Ok(dead_item(body, meta))
    }

    async fn handle(&self, item: DeadItem) -> Disposition {
        self.handle_all(vec![item]).await.remove(0)
    }

    async fn handle_all(&self, items: Vec<DeadItem>) -> Vec<Disposition> {
        let ctx = &self.ctx;
        match retrying(|| async { ctx.dbs.record_dead_items(&items).await.map_err(Step::from) }).await {
            Ok(recorded) => {
                tracing::info!(batch = items.len(), new = recorded, "dead items committed");
                for item in &items {
                    log_recorded(item);
                }
                vec![Disposition::Ack; items.len()]
            }
            Err(Step::Transient(reason)) => {
                tracing::error!(%reason, "cannot record dead items; releasing them for later");
                tokio::time::sleep(RELEASE_AFTER).await;
                vec![Disposition::Release(reason); items.len()]
            }
            // PostgreSQL refused the batch (a constraint, a trigger, a value it cannot
            // store): record the items one by one, and park the ones it still refuses
            // instead of requeueing them forever.
            Err(Step::Permanent(reason)) => {
                tracing::warn!(%reason, batch = items.len(), "PostgreSQL refused a batch of dead items; recording them one by one");
                let mut out = Vec::with_capacity(items.len());
                for item in &items {
                    out.push(self.record_one(item).await);
                }
                out
            }
        }
    }
}

impl DeadLetters {
    async fn record_one(&self, item: &DeadItem) -> Disposition {
        let ctx = &self.ctx;
        match ctx.dbs.record_dead_items(std::slice::from_ref(item)).await {
            Ok(_) => {
                log_recorded(item);
                Disposition::Ack
            }
            Err(e) if e.is_transient() => Disposition::Release(e.to_string()),
            Err(e) => {
                let from = item.source_queue.as_deref().unwrap_or("a work queue");
                let parked = &self.queue.queues().parked;
                let reason = format!(
                    "PostgreSQL refused to record this dead item ({e}); it is parked in {parked}. It was \
                     dead-lettered from {from} after {} attempt(s): {}",
                    item.attempts, item.reason
                );
                let metadata = serde_json::json!({
                    "message_id": item.message_id, "file_id": item.file_id, "source_queue": item.source_queue,
                    "parked_in": parked,
                });
                let message = format!("dead item {} parked in {parked}: {reason}", item.message_id);
                let event = Event::new(EventKind::Parked { queue: parked.clone() }, "errors", message, metadata);
                // Its file still ends, with the reason and the alert, if the ledger takes
                // that much; else the alert alone.
                let ended = match item.file_id {
                    Some(file_id) => {
                        penstock_db::finish_with(
                            ctx.file_db(file_id),
                            file_id,
                            penstock_db::FileState::Failed,
                            &reason,
                            &event,
                        )
                        .await
                    }
                    None => Ok(false),
                };
                let announced = match ended {
                    Ok(true) => Ok(()),
                    Ok(false) => penstock_db::enqueue_event(ctx.home(), &event).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = announced {
                    tracing::error!(message_id = %item.message_id, error = %e, "cannot record the parked item's failure or alert");
                }
                Disposition::Park(reason)
            }
        }
    }
}

/// Logs a recorded dead item (its event went to the outbox with it).
fn log_recorded(item: &DeadItem) {
    tracing::warn!(message_id = %item.message_id, file_id = ?item.file_id, reason = %item.reason, "dead item recorded");
}

/// What a dead-lettered item says about itself.
fn dead_item(body: &[u8], meta: &Meta) -> DeadItem {
    let item: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message_id = Some(meta.message_id.clone())
        .filter(|s| !s.is_empty())
        // No id: derive one from the bytes, so redelivery of the same item is still one row.
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(body))));
    const MAX_RAW: usize = 64 * 1024;
    let raw = String::from_utf8_lossy(&body[..body.len().min(MAX_RAW)]).into_owned();
    DeadItem {
        message_id,
        source_queue: meta.source_queue.clone(),
        reason: meta
            .reason
            .clone()
            .unwrap_or_else(|| "dead-lettered without a reason".into()),
        attempts: meta.attempt as i32,
        file_id: item.as_ref().and_then(|v| v.get("file_id")).and_then(|v| v.as_i64()),
        raw,
        item,
    }
}

#[cfg(test)]
mod tests {
    use penstock_broker::{MemoryQueue, WorkQueue};

    use super::*;
    use crate::stage::Settings;
    use crate::stage::tests::{SETTINGS, run_until};

    #[tokio::test]
    async fn dead_items_that_cannot_be_recorded_are_released_not_dropped() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        for i in 0..3 {
            let meta = Meta::new(format!("d{i}")).dead_lettered("t.chunks", "bad");
            memory.publish("t.errors", b"{}", &meta).await.unwrap();
        }
        let stage = Arc::new(DeadLetters {
            ctx: Context::unreachable_database(store.path()).await,
            queue: Arc::new(memory.clone()),
        });
        // A short grace: the batch taken again after the release is not waited for.
        let settings = Settings {
            grace: Duration::from_millis(50),
            ..SETTINGS
        };
        run_until(stage, &memory, settings, |m| m.releases("t.errors") >= 3)
            .await
            .unwrap();
        assert!(
            memory.releases("t.errors") >= 3,
            "released once the database refused them"
        );
        assert_eq!(memory.ready("t.errors").len(), 3, "none lost, none acked");
    }

    #[test]
    fn a_dead_item_without_a_message_id_is_named_by_its_bytes() {
        let a = dead_item(b"{\"file_id\": 7}", &Meta::new(""));
        let b = dead_item(b"{\"file_id\": 7}", &Meta::new(""));
        assert!(a.message_id.starts_with("sha256:"));
        assert_eq!(a.message_id, b.message_id);
        assert_eq!(a.file_id, Some(7));
        assert_eq!(a.reason, "dead-lettered without a reason");
    }

    #[test]
    fn a_dead_item_keeps_its_reason_source_and_attempts() {
        let meta = Meta::new("chunk-1-1")
            .next_attempt(4)
            .dead_lettered("p.chunks", "bad bytes");
        let item = dead_item(b"not json", &meta);
        assert_eq!(item.message_id, "chunk-1-1");
        assert_eq!(item.source_queue.as_deref(), Some("p.chunks"));
        assert_eq!((item.reason.as_str(), item.attempts), ("bad bytes", 4));
        assert_eq!((item.item, item.file_id, item.raw.as_str()), (None, None, "not json"));
    }
}
