//! Notification consumer (role `notifications`, with the outbox [`crate::relay`]): consumes
//! events from `<prefix>.events` and keeps the `alerts` table — one open alert per dedupe key, so a storm of the same event
//! bumps one alert's count instead of inserting thousands.
//!
//! A new alert at or above a webhook's minimum severity is delivered to it
//! ([`crate::webhooks`]) before the event is acked.
//!
//! An event published from the outbox raises its alert once: the alert's transaction marks
//! the outbox row alerted, and a second publish of it changes nothing.
//!
//! Acks after the alert is written; a database failure is retried in process, then through
//! the events retry queues. An undecodable event is dead-lettered.

use std::sync::Arc;

use penstock_broker::{Meta, SharedQueue};
use penstock_core::event::Event;
use penstock_core::message;

use crate::context::Context;
use crate::outcome::{Disposition, Step, retrying};
use crate::stage::Stage;

/// The notification consumer as a stage.
pub struct Notifications {
    pub ctx: Arc<Context>,
    pub queue: SharedQueue,
    pub client: reqwest::Client,
}

impl Notifications {
    pub fn new(ctx: Arc<Context>, queue: SharedQueue) -> Notifications {
        Notifications {
            ctx,
            queue,
            client: reqwest::Client::new(),
        }
    }
}

#[async_trait::async_trait]
impl Stage for Notifications {
    /// The event, and the outbox row it was published from (events from the outbox are).
    type Item = (Option<i64>, Event);

    fn queue(&self) -> &str {
        &self.queue.queues().events
    }

    fn prefetch(&self) -> u16 {
        20
    }

    fn decode(&self, body: &[u8], meta: &Meta, _redelivered: bool) -> Result<(Option<i64>, Event), String> {
        let event = message::decode(body).map_err(|e| e.to_string())?;
        Ok((crate::relay::outbox_id(&meta.message_id), event))
    }

    async fn handle(&self, (outbox_id, event): (Option<i64>, Event)) -> Disposition {
        let ctx = &self.ctx;
        let raised = retrying(|| async {
            match outbox_id {
                Some(id) => penstock_db::raise_alert_once(&ctx.dbs, id, &event).await,
                None => penstock_db::raise_alert(ctx.home(), &event).await.map(Some),
            }
            .map_err(Step::from)
        })
        .await;
        match raised {
            Ok(None) => {
                tracing::info!(outbox_id, key = %event.dedupe_key(), "event already alerted (published twice); nothing to do");
                Disposition::Ack
            }
            Ok(Some((id, new))) => {
                tracing::info!(alert = id, new, key = %event.dedupe_key(), severity = event.severity().as_str(), "alert raised");
                if new {
                    notify_webhooks(ctx, &self.client, id, &event).await;
                }
                Disposition::Ack
            }
            Err(Step::Transient(reason)) => Disposition::Retry(reason),
            Err(Step::Permanent(reason)) => Disposition::DeadLetter(reason),
        }
    }
}

async fn notify_webhooks(ctx: &Context, client: &reqwest::Client, alert_id: i64, event: &Event) {
    let hooks: Vec<_> = ctx
        .config
        .webhooks
        .iter()
        .filter(|h| event.severity() >= h.min_severity)
        .collect();
    if hooks.is_empty() {
        return;
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "alert_id": alert_id,
        "dedupe_key": event.dedupe_key(),
        "severity": event.severity().as_str(),
        "source": event.source,
        "message": event.message,
        "event": event.kind,
        "metadata": event.metadata,
    }))
    .expect("alerts serialise");
    for hook in hooks {
        let outcome = crate::webhooks::deliver(client, hook, &body).await;
        if !outcome.delivered {
            let url = penstock_core::redact::origin(&hook.url);
            tracing::warn!(alert = alert_id, %url, error = ?outcome.error, "webhook delivery failed");
        }
        let recorded = penstock_db::record_delivery(
            ctx.home(),
            alert_id,
            &hook.url,
            outcome.attempts,
            outcome.status_code,
            outcome.delivered,
            outcome.error.as_deref(),
        )
        .await;
        if let Err(e) = recorded {
            tracing::warn!(alert = alert_id, error = %e, "cannot record the webhook delivery");
        }
    }
}

#[cfg(test)]
mod tests {
    use penstock_broker::{MemoryQueue, WorkQueue};
    use penstock_core::event::EventKind;

    use super::*;
    use crate::stage::tests::{SETTINGS, run_until, settled};

    async fn notifications(memory: &MemoryQueue, store: &std::path::Path) -> Arc<Notifications> {
        Arc::new(Notifications {
            ctx: Context::unreachable_database(store).await,
            queue: Arc::new(memory.clone()),
            client: reqwest::Client::new(),
        })
    }

    #[tokio::test]
    async fn an_undecodable_event_is_dead_lettered() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        memory.publish("t.events", b"[]", &Meta::new("e")).await.unwrap();
        run_until(
            notifications(&memory, store.path()).await,
            &memory,
            SETTINGS,
            settled("t.events"),
        )
        .await
        .unwrap();
        assert_eq!(memory.ready("t.errors").len(), 1);
    }

    #[tokio::test]
    async fn an_event_whose_alert_cannot_be_written_waits_for_a_retry() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        let kind = EventKind::FileFailed {
            file_id: 1,
            key: "a.csv".into(),
        };
        let event = Event::new(kind, "test", "a.csv: broken", serde_json::json!({}));
        memory
            .publish("t.events", &serde_json::to_vec(&event).unwrap(), &Meta::new("e"))
            .await
            .unwrap();
        run_until(notifications(&memory, store.path()).await, &memory, SETTINGS, |m| {
            !m.delayed("t.events").is_empty()
        })
        .await
        .unwrap();
        assert!(memory.ready("t.errors").is_empty());
    }
}
