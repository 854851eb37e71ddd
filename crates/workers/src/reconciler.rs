//! Reconciler: at start-up and every `reconcile_interval`, finds the file versions that are
//! not finished and made no progress for `reconcile_after`, compares the ledger with each
//! one's stored plan, and publishes again exactly the work items that were lost: the file
//! item of a file never chunked, the chunk items of planned chunks not in the ledger. Each
//! recovery is counted on the file and announced (an alert, through the notification
//! consumer); a file still stuck after `max_recoveries` recoveries fails with a reason that
//! says so. What to do is decided in `penstock_core::reconcile`.
//!
//! Consumes: nothing (reads the ledger and the queues' depths). Produces: file and chunk
//! items, events. Guarantees: republishing is safe (the ledger makes a second delivery
//! change nothing); items that may still be queued are waited for, not republished — a
//! queue that holds items may hold them, unless later work has already overtaken them;
//! several reconcilers never recover the same file at once (each pass locks its files with
//! `FOR UPDATE SKIP LOCKED`, and a recovery restarts the file's deadline).

use std::sync::Arc;

use penstock_broker::{Queues, SharedQueue, WorkQueue};
use penstock_core::FileItem;
use penstock_core::event::{Event, EventKind};
use penstock_core::message::VERSION;
use penstock_core::reconcile::{Awaiting, Recovery, Stall, chunk_list, decide};
use penstock_db::{Reconciliation, Stalled};
use tokio_util::sync::CancellationToken;

use crate::chunker::{PlanHeader, chunk_items};
use crate::context::Context;
use crate::metrics::Occurrence;
use crate::outcome::RunError;

/// Files looked at in one pass (the rest wait for the next).
const BATCH: i64 = 100;

pub async fn run(ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    tracing::info!(
        interval = ?ctx.config.reconcile_interval,
        after = ?ctx.config.reconcile_after,
        max_recoveries = ctx.config.max_recoveries,
        "reconciler started"
    );
    loop {
        match pass(&ctx, queue.as_ref()).await {
            Ok(_) => {}
            // The broker is what failed: reconnect (the supervisor does).
            Err(e @ RunError::Broker(_)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "reconciler pass failed; trying again next interval"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(ctx.config.reconcile_interval) => {}
        }
    }
}

/// One pass over every database; returns how many files it recovered or failed.
pub async fn pass(ctx: &Context, queue: &dyn WorkQueue) -> Result<usize, RunError> {
    let queues = queue.queues();
    let files_waiting = holds_items(queue, &queues.files).await;
    let chunks_waiting = holds_items(queue, &queues.chunks).await;
    let mut done = 0;
    for pool in ctx.dbs.pools() {
        done += pass_on(ctx, queue, pool, files_waiting, chunks_waiting).await?;
    }
    Ok(done)
}

/// One pass over one database's files.
async fn pass_on(
    ctx: &Context,
    queue: &dyn WorkQueue,
    pool: &penstock_db::PgPool,
    files_waiting: bool,
    chunks_waiting: bool,
) -> Result<usize, RunError> {
    let queues = queue.queues();
    let (mut reconciliation, stalled) = Reconciliation::begin(pool, ctx.config.reconcile_after, BATCH).await?;
    let mut recovered = Vec::new();
    let mut give_up = Vec::new();
    for file in stalled {
        let (awaiting, waiting) = match &file.plan {
            Some(plan) => (
                Awaiting::Chunks(plan.missing.iter().map(|r| r.chunk as u32).collect()),
                chunks_waiting,
            ),
            None => (Awaiting::FileItem, files_waiting),
        };
        let stall = Stall {
            awaiting,
            recoveries: file.recoveries.max(0) as u32,
            may_be_queued: waiting && !file.overtaken,
        };
        let item = FileItem {
            v: VERSION,
            file_id: file.id,
            dataset: file.dataset.clone(),
            key: file.key.clone(),
            version: file.version.clone(),
            size: file.size_bytes.max(0) as u64,
        };
        let (target, items) = match decide(&stall, ctx.config.max_recoveries) {
            Recovery::Wait => continue,
            Recovery::GiveUp(reason) => {
                give_up.push((file, reason));
                continue;
            }
            Recovery::RepublishFile => {
                queue.publish_json(&queues.files, &item, &item.message_id()).await?;
                ("files", 1)
            }
            Recovery::RepublishChunks(_) => {
                let plan = file.plan.as_ref().expect("a file awaiting chunks has a plan");
                let header = PlanHeader {
                    field_count: plan.field_count,
                    columns: &plan.columns,
                    new_columns: &plan.new_columns,
                    chunks_total: plan.chunks_total.max(0) as u32,
                };
                for (id, chunk) in chunk_items(&item, &header, &plan.missing) {
                    queue.publish_json(&queues.chunks, &chunk, &id).await?;
                }
                ("chunks", plan.missing.len() as u32)
            }
        };
        let recoveries = reconciliation
            .recovered(file.id, |recoveries| {
                recovery_event(ctx, &file, target, items, recoveries)
            })
            .await?;
        recovered.push((file, target, items, recoveries));
    }
    // Committed only after every publish was confirmed: a pass cut short counts nothing (and
    // announces nothing: the recoveries' events commit with it).
    reconciliation.commit().await?;
    let done = recovered.len() + give_up.len();
    for (file, target, items, recoveries) in recovered {
        Occurrence::FileRecovered {
            file_id: file.id,
            key: &file.key,
            dataset: &file.dataset,
            queue: target,
            items,
            recoveries,
        }
        .record();
    }
    for (file, reason) in give_up {
        let _ = ctx.fail_file(file.id, &file.key, &reason).await;
    }
    Ok(done)
}

/// Whether a work queue, or one of its retry queues, holds items (or cannot be looked at:
/// then its items may be there too).
async fn holds_items(queue: &dyn WorkQueue, work: &str) -> bool {
    let retries = penstock_core::retry::DELAYS.iter().map(|d| Queues::retry(work, *d));
    for name in std::iter::once(work.to_string()).chain(retries) {
        match queue.ready_count(&name).await {
            Ok(0) => {}
            Ok(_) | Err(_) => return true,
        }
    }
    false
}

/// What a recovery tells the notification consumer.
fn recovery_event(ctx: &Context, file: &Stalled, target: &str, items: u32, recoveries: u32) -> Event {
    let what = match (&file.plan, target) {
        (Some(plan), "chunks") => {
            let numbers: Vec<u32> = plan.missing.iter().map(|r| r.chunk as u32).collect();
            format!("{} of {} published again", chunk_list(&numbers), plan.chunks_total)
        }
        _ => "its file item published again".to_string(),
    };
    let message = format!(
        "{}: no progress for {} s; {what} (recovery {recoveries} of at most {})",
        file.key,
        ctx.config.reconcile_after.as_secs(),
        ctx.config.max_recoveries
    );
    let kind = EventKind::FileRecovered {
        file_id: file.id,
        key: file.key.clone(),
        items,
        recoveries,
    };
    let metadata = serde_json::json!({
        "file_id": file.id, "key": file.key, "queue": target, "items": items, "recoveries": recoveries,
    });
    Event::new(kind, "reconciler", message, metadata)
}
