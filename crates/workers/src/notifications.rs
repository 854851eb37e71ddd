//! Notification consumer (role `notifications`): consumes events from `<prefix>.events` and
//! keeps the `alerts` table — one open alert per dedupe key, so a storm of the same event
//! bumps one alert's count instead of inserting thousands.
//!
//! Acks after the alert is written; a database failure is retried in process, then through
//! the events retry queues. An undecodable event is dead-lettered.

use std::sync::Arc;

use penstock_broker::{Broker, Delivery};
use penstock_core::event::Event;
use penstock_core::message;
use tokio_util::sync::CancellationToken;

use crate::consume::{Disposition, consume};
use crate::fleet::{Context, RunError, Step, retrying};

pub async fn run(ctx: Arc<Context>, broker: Broker, shutdown: CancellationToken) -> Result<(), RunError> {
    let queue = broker.queues.events.clone();
    let (grace, attempts) = (ctx.config.shutdown_grace, ctx.config.max_attempts);
    consume(
        &broker,
        &queue,
        20,
        grace,
        attempts,
        &shutdown,
        move |delivery: Delivery| {
            let ctx = ctx.clone();
            async move {
                let disposition = handle(&ctx, &delivery.data).await;
                (delivery, disposition)
            }
        },
    )
    .await?;
    Ok(())
}

async fn handle(ctx: &Context, body: &[u8]) -> Disposition {
    let event: Event = match message::decode(body) {
        Ok(event) => event,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    match retrying(|| async { penstock_db::raise_alert(&ctx.pool, &event).await.map_err(Step::from) }).await {
        Ok(id) => {
            tracing::info!(alert = id, key = %event.dedupe_key(), severity = event.severity().as_str(), "alert raised");
            Disposition::Ack
        }
        Err(Step::Transient(reason)) => Disposition::Retry(reason),
        Err(Step::Permanent(reason)) => Disposition::DeadLetter(reason),
    }
}
