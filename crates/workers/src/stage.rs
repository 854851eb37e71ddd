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
        match AssertUnwindSafe(stage.handle_all(decoded))
            .catch_unwind()
            .instrument(span.clone())
            .await
        {
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
        settle(queue, name, settings.max_attempts, delivery, disposition)
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
        }
        crate::metrics::delivery_settled(queue, self.label());
    }

    fn label(self) -> &'static str {
        match self {
            Settled::Acked => "acked",
            Settled::Retried { .. } => "retried",
            Settled::DeadLettered => "dead_lettered",
            Settled::Released => "released",
        }
    }
}

/// Acts on a disposition: republish (confirmed) first, then ack.
async fn settle(
    queue: &dyn WorkQueue,
    name: &str,
    max_attempts: u32,
    delivery: Delivery,
    disposition: Disposition,
) -> Result<(), BrokerError> {
    let (settled, reason) = match disposition {
        Disposition::Ack => (Settled::Acked, String::new()),
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
    };
    let meta = delivery.meta.clone();
    delivery.ack().await?;
    settled.record(name, &meta, &reason);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    //! Every settle decision, on the in-memory queue.
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use penstock_broker::MemoryQueue;
    use tokio::sync::Semaphore;

    use super::*;

    /// Runs `stage` on `memory` until `done` says so (or 10 s pass), then shuts it down.
    pub(crate) async fn run_until<S: Stage>(
        stage: Arc<S>,
        memory: &MemoryQueue,
        settings: Settings,
        done: impl Fn(&MemoryQueue) -> bool,
    ) -> Result<(), BrokerError> {
        let shutdown = CancellationToken::new();
        let queue: SharedQueue = Arc::new(memory.clone());
        let running = {
            let shutdown = shutdown.clone();
            tokio::spawn(async move { run(stage, queue, settings, &shutdown).await })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done(memory) && !running.is_finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        running.await.expect("the stage does not panic")
    }

    /// The queue is empty and nothing is out.
    pub(crate) fn settled(queue: &str) -> impl Fn(&MemoryQueue) -> bool + '_ {
        move |m| m.ready(queue).is_empty() && m.unacked(queue) == 0
    }

    pub(crate) const SETTINGS: Settings = Settings {
        grace: Duration::from_secs(5),
        max_attempts: 3,
    };

    /// A stage on `t.chunks` whose handler does what the body says.
    struct Scripted {
        queue: String,
        prefetch: u16,
        batching: Batching,
        /// Handlers wait for a permit when set.
        gate: Option<Arc<Semaphore>>,
        entered: AtomicUsize,
        batches: Mutex<Vec<usize>>,
        redelivered: Mutex<Vec<bool>>,
    }

    impl Scripted {
        fn new(queue: &dyn WorkQueue) -> Scripted {
            Scripted {
                queue: queue.queues().chunks.clone(),
                prefetch: 10,
                batching: Batching::One,
                gate: None,
                entered: AtomicUsize::new(0),
                batches: Mutex::new(Vec::new()),
                redelivered: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait::async_trait]
    impl Stage for Scripted {
        type Item = String;

        fn queue(&self) -> &str {
            &self.queue
        }

        fn prefetch(&self) -> u16 {
            self.prefetch
        }

        fn batching(&self) -> Batching {
            self.batching
        }

        fn decode(&self, body: &[u8], _meta: &Meta, redelivered: bool) -> Result<String, String> {
            self.redelivered.lock().unwrap().push(redelivered);
            let text = std::str::from_utf8(body).map_err(|e| e.to_string())?;
            if text == "undecodable" {
                return Err("not a work item".into());
            }
            Ok(text.to_string())
        }

        async fn handle(&self, item: String) -> Disposition {
            self.entered.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                let _permit = gate.acquire().await.unwrap();
            }
            match item.as_str() {
                "retry" => Disposition::Retry("database down".into()),
                "permanent" => Disposition::DeadLetter("bad bytes".into()),
                "release" => Disposition::Release("later".into()),
                "panic" => panic!("simulated bug"),
                _ => Disposition::Ack,
            }
        }

        async fn handle_all(&self, items: Vec<String>) -> Vec<Disposition> {
            self.batches.lock().unwrap().push(items.len());
            let mut out = Vec::new();
            for item in items {
                out.push(self.handle(item).await);
            }
            out
        }
    }

    async fn with_items(items: &[(&str, u32)]) -> MemoryQueue {
        let memory = MemoryQueue::new("t");
        for (i, (body, attempt)) in items.iter().enumerate() {
            let meta = Meta::new(format!("item-{i}")).next_attempt(*attempt);
            memory.publish("t.chunks", body.as_bytes(), &meta).await.unwrap();
        }
        memory
    }

    fn dead(memory: &MemoryQueue) -> Vec<Meta> {
        memory.ready("t.errors").into_iter().map(|(_, meta)| meta).collect()
    }

    #[tokio::test]
    async fn a_handled_item_is_acked_and_leaves_the_queue() {
        let memory = with_items(&[("ok", 1), ("ok", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        assert_eq!(stage.entered.load(Ordering::SeqCst), 2);
        assert!(settled("t.chunks")(&memory));
        assert!(dead(&memory).is_empty());
    }

    #[tokio::test]
    async fn a_transient_failure_waits_in_the_delay_queue_as_the_next_attempt() {
        let memory = with_items(&[("retry", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage, &memory, SETTINGS, |m| !m.delayed("t.chunks").is_empty())
            .await
            .unwrap();
        let delayed = memory.delayed("t.chunks");
        assert_eq!(delayed.len(), 1);
        assert_eq!((delayed[0].0, delayed[0].1.attempt), (Duration::from_secs(1), 2));
        assert_eq!(
            memory.unacked("t.chunks"),
            0,
            "the original is acked once the retry is queued"
        );
    }

    #[tokio::test]
    async fn a_transient_failure_on_the_last_attempt_is_dead_lettered_with_why() {
        let memory = with_items(&[("retry", 3)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage, &memory, SETTINGS, settled("t.chunks")).await.unwrap();
        let dead = dead(&memory);
        assert_eq!(dead.len(), 1);
        assert_eq!(
            dead[0].reason.as_deref(),
            Some("gave up after 3 attempt(s): database down")
        );
        assert_eq!(dead[0].source_queue.as_deref(), Some("t.chunks"));
        assert!(memory.delayed("t.chunks").is_empty());
    }

    #[tokio::test]
    async fn a_permanent_failure_is_dead_lettered_at_once_with_its_reason() {
        let memory = with_items(&[("permanent", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage, &memory, SETTINGS, settled("t.chunks")).await.unwrap();
        let dead = dead(&memory);
        assert_eq!((dead.len(), dead[0].reason.as_deref()), (1, Some("bad bytes")));
        assert_eq!((dead[0].message_id.as_str(), dead[0].attempt), ("item-0", 1));
    }

    #[tokio::test]
    async fn an_item_that_cannot_be_decoded_is_dead_lettered_without_being_handled() {
        let memory = with_items(&[("undecodable", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        assert_eq!(stage.entered.load(Ordering::SeqCst), 0);
        assert_eq!(dead(&memory)[0].reason.as_deref(), Some("not a work item"));
    }

    #[tokio::test]
    async fn a_handler_that_panics_dead_letters_its_item_and_the_stage_goes_on() {
        let memory = with_items(&[("panic", 1), ("ok", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        let dead = dead(&memory);
        assert_eq!(dead.len(), 1);
        let reason = dead[0].reason.clone().unwrap();
        assert!(reason.contains("panicked: simulated bug"), "{reason}");
        assert_eq!(
            stage.entered.load(Ordering::SeqCst),
            2,
            "the next item is still handled"
        );
    }

    #[tokio::test]
    async fn a_released_item_goes_back_to_its_queue_and_comes_again_marked_redelivered() {
        let memory = with_items(&[("release", 1)]).await;
        let stage = Arc::new(Scripted::new(&memory));
        run_until(stage.clone(), &memory, SETTINGS, |_| {
            stage.entered.load(Ordering::SeqCst) >= 2
        })
        .await
        .unwrap();
        let seen = stage.redelivered.lock().unwrap().clone();
        assert_eq!(&seen[..2], &[false, true]);
        assert!(dead(&memory).is_empty(), "released, not dead-lettered");
    }

    #[tokio::test]
    async fn the_stage_holds_no_more_deliveries_than_its_prefetch() {
        let memory = with_items(&[("ok", 1); 5]).await;
        let gate = Arc::new(Semaphore::new(0));
        let stage = Arc::new(Scripted {
            prefetch: 2,
            gate: Some(gate.clone()),
            ..Scripted::new(&memory)
        });
        let watcher = {
            let (memory, stage) = (memory.clone(), stage.clone());
            tokio::spawn(async move {
                while stage.entered.load(Ordering::SeqCst) < 2 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                // Give the loop a chance to take more than it may.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let held = (memory.unacked("t.chunks"), memory.ready("t.chunks").len());
                gate.add_permits(5);
                held
            })
        };
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        assert_eq!(watcher.await.unwrap(), (2, 3));
        assert_eq!(stage.entered.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_work_finish_within_the_grace_period() {
        let memory = with_items(&[("ok", 1)]).await;
        let gate = Arc::new(Semaphore::new(0));
        let stage = Arc::new(Scripted {
            gate: Some(gate.clone()),
            ..Scripted::new(&memory)
        });
        let opener = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            gate.add_permits(1);
        });
        // Shut down as soon as the item is being handled.
        run_until(stage.clone(), &memory, SETTINGS, |_| {
            stage.entered.load(Ordering::SeqCst) == 1
        })
        .await
        .unwrap();
        opener.await.unwrap();
        assert!(settled("t.chunks")(&memory), "finished and acked during the drain");
    }

    #[tokio::test]
    async fn shutdown_past_the_grace_period_returns_unfinished_work_to_the_queue() {
        let memory = with_items(&[("ok", 1)]).await;
        let stage = Arc::new(Scripted {
            gate: Some(Arc::new(Semaphore::new(0))),
            ..Scripted::new(&memory)
        });
        let settings = Settings {
            grace: Duration::from_millis(50),
            ..SETTINGS
        };
        run_until(stage.clone(), &memory, settings, |_| {
            stage.entered.load(Ordering::SeqCst) == 1
        })
        .await
        .unwrap();
        assert_eq!((memory.ready("t.chunks").len(), memory.unacked("t.chunks")), (1, 0));
        assert!(dead(&memory).is_empty());
    }

    #[tokio::test]
    async fn a_settle_that_cannot_publish_stops_the_stage_and_keeps_the_item() {
        let memory = with_items(&[("retry", 1)]).await;
        memory.refuse_publishes(true);
        let stage = Arc::new(Scripted::new(&memory));
        let outcome = run_until(stage, &memory, SETTINGS, |_| false).await;
        assert!(matches!(outcome, Err(BrokerError::Nacked { .. })), "{outcome:?}");
        assert_eq!(memory.ready("t.chunks").len(), 1, "back on its queue, not lost");
        assert!(memory.delayed("t.chunks").is_empty());
    }

    #[tokio::test]
    async fn a_lost_connection_stops_the_stage_with_an_error_for_its_supervisor() {
        let memory = with_items(&[]).await;
        let stage = Arc::new(Scripted::new(&memory));
        let cut = memory.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cut.disconnect();
        });
        let outcome = run_until(stage, &memory, SETTINGS, |_| false).await;
        assert!(matches!(outcome, Err(BrokerError::ConsumerClosed)), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_batching_stage_gets_items_together_up_to_its_batch_size() {
        let memory = with_items(&[("ok", 1); 5]).await;
        let stage = Arc::new(Scripted {
            batching: Batching::UpTo {
                max: 3,
                wait: Duration::from_millis(100),
            },
            ..Scripted::new(&memory)
        });
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        assert_eq!(*stage.batches.lock().unwrap(), vec![3, 2]);
    }

    #[tokio::test]
    async fn an_undecodable_item_in_a_batch_is_dead_lettered_and_the_rest_handled() {
        let memory = with_items(&[("ok", 1), ("undecodable", 1), ("permanent", 1)]).await;
        let stage = Arc::new(Scripted {
            batching: Batching::UpTo {
                max: 10,
                wait: Duration::from_millis(50),
            },
            ..Scripted::new(&memory)
        });
        run_until(stage.clone(), &memory, SETTINGS, settled("t.chunks"))
            .await
            .unwrap();
        let reasons: Vec<Option<String>> = dead(&memory).into_iter().map(|m| m.reason).collect();
        assert_eq!(reasons, [Some("not a work item".into()), Some("bad bytes".into())]);
        assert_eq!(*stage.batches.lock().unwrap(), vec![2]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_rabbitmq_a_handler_that_panics_dead_letters_its_item_instead_of_losing_it() {
        let url =
            std::env::var("PENSTOCK_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
        let prefix = format!("panic{}", std::process::id());
        let rabbit = penstock_broker::RabbitMq::connect(&url, &prefix).await.unwrap();
        let chunks = rabbit.queues().chunks.clone();
        rabbit.publish(&chunks, b"panic", &Meta::new("boom-1")).await.unwrap();
        let stage = Arc::new(Scripted::new(&rabbit));
        let shutdown = CancellationToken::new();
        let running = {
            let (queue, stop): (SharedQueue, _) = (Arc::new(rabbit.clone()), shutdown.clone());
            tokio::spawn(async move { run(stage, queue, SETTINGS, &stop).await })
        };
        let errors = rabbit.queues().errors.clone();
        let mut dead = 0;
        for _ in 0..100 {
            dead = rabbit.ready_count(&errors).await.unwrap();
            if dead > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        running.await.unwrap().unwrap();
        let left = rabbit.ready_count(&chunks).await.unwrap();
        rabbit.delete_queues().await.unwrap();
        rabbit.close().await;
        assert_eq!(
            (dead, left),
            (1, 0),
            "dead-lettered once, and acked so it does not come back"
        );
    }
}
