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
    early: Option<Duration>,
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
            early: None,
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

    fn settle_early_after(&self) -> Option<Duration> {
        self.early
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

/// Runs a gated stage that acks early after 20 ms on one item; returns the queue once the
/// item was acked while its handler was still at work, and the gate to let it finish.
async fn held_past_the_early_ack(body: &str) -> (MemoryQueue, Arc<Semaphore>, tokio::task::JoinHandle<()>) {
    let memory = with_items(&[(body, 1)]).await;
    let gate = Arc::new(Semaphore::new(0));
    let mut stage = Scripted::new(&memory);
    stage.gate = Some(gate.clone());
    stage.early = Some(Duration::from_millis(20));
    let stage = Arc::new(stage);
    let running = {
        let (stage, memory) = (stage.clone(), memory.clone());
        tokio::spawn(async move {
            // Done once retried, or delivered again (after a release).
            let again = stage.clone();
            let done =
                move |m: &MemoryQueue| !m.delayed("t.chunks").is_empty() || again.entered.load(Ordering::SeqCst) >= 2;
            run_until(stage, &memory, SETTINGS, done).await.unwrap();
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !(stage.entered.load(Ordering::SeqCst) == 1 && memory.unacked("t.chunks") == 0) {
        assert!(tokio::time::Instant::now() < deadline, "never acked early");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (memory, gate, running)
}

#[tokio::test]
async fn a_long_handler_has_its_item_acked_early_and_a_later_retry_is_still_queued() {
    let (memory, gate, running) = held_past_the_early_ack("retry").await;
    gate.add_permits(1);
    running.await.unwrap();
    let delayed = memory.delayed("t.chunks");
    assert_eq!(
        (delayed.len(), delayed[0].1.attempt),
        (1, 2),
        "the retry is queued as usual"
    );
    assert_eq!(memory.unacked("t.chunks"), 0);
}

#[tokio::test]
async fn a_release_after_an_early_ack_puts_the_item_back_on_its_queue() {
    let (memory, gate, running) = held_past_the_early_ack("release").await;
    gate.add_permits(1);
    // Delivered again: it was published back to its queue (a released delivery that was
    // acked already cannot be requeued by the broker).
    running.await.unwrap();
    assert!(memory.delayed("t.chunks").is_empty());
    assert!(dead(&memory).is_empty());
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
    let url = std::env::var("PENSTOCK_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
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
