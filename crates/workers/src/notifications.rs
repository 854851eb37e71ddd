//! Notification consumer (role `notifications`): consumes events from `<prefix>.events` and
//! keeps the `alerts` table — one open alert per dedupe key, so a storm of the same event
//! bumps one alert's count instead of inserting thousands.
//!
//! A new alert at or above a webhook's minimum severity is delivered to it
//! ([`crate::webhooks`]) before the event is acked.
//!
//! Acks after the alert is written; a database failure is retried in process, then through
//! the events retry queues. An undecodable event is dead-lettered.

use std::sync::Arc;

use penstock_broker::{Broker, Delivery};
use penstock_core::event::Event;
use penstock_core::message;
use tokio_util::sync::CancellationToken;

use crate::consume::consume;
use crate::context::Context;
use crate::outcome::{Disposition, RunError, Step, retrying};

pub async fn run(ctx: Arc<Context>, broker: Broker, shutdown: CancellationToken) -> Result<(), RunError> {
    let queue = broker.queues.events.clone();
    let (grace, attempts) = (ctx.config.shutdown_grace, ctx.config.max_attempts);
    let client = reqwest::Client::new();
    consume(
        &broker,
        &queue,
        20,
        grace,
        attempts,
        &shutdown,
        move |delivery: Delivery| {
            let (ctx, client) = (ctx.clone(), client.clone());
            async move {
                let disposition = handle(&ctx, &client, &delivery.data).await;
                (delivery, disposition)
            }
        },
    )
    .await?;
    Ok(())
}

async fn handle(ctx: &Context, client: &reqwest::Client, body: &[u8]) -> Disposition {
    let event: Event = match message::decode(body) {
        Ok(event) => event,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    match retrying(|| async { penstock_db::raise_alert(&ctx.pool, &event).await.map_err(Step::from) }).await {
        Ok((id, new)) => {
            tracing::info!(alert = id, new, key = %event.dedupe_key(), severity = event.severity().as_str(), "alert raised");
            if new {
                notify_webhooks(ctx, client, id, &event).await;
            }
            Disposition::Ack
        }
        Err(Step::Transient(reason)) => Disposition::Retry(reason),
        Err(Step::Permanent(reason)) => Disposition::DeadLetter(reason),
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
            tracing::warn!(alert = alert_id, url = %hook.url, error = ?outcome.error, "webhook delivery failed");
        }
        let recorded = penstock_db::record_delivery(
            &ctx.pool,
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
