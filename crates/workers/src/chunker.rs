//! Chunker (the validator's role): consumes file items from `<prefix>.files`, streams the
//! object once through [`penstock_core::validate::Validator`] (every rejection rule lives
//! there), and either rejects the file with a reason (nothing of it is loaded) or publishes
//! one chunk item per record-aligned byte range to `<prefix>.chunks`. Each chunk item carries
//! the SHA-256 of its range so the loader never loads bytes that changed.
//!
//! The plan (ranges, first lines, record counts, checksums and the header) is stored in the
//! transaction that moves the file to `loading`; the file item is acked after every chunk
//! item is confirmed by the broker (or after the rejection is recorded). A redelivered file
//! item for a file already loading publishes the stored plan again, whatever `chunk_bytes`
//! is now (the loader's ledger makes duplicates harmless); for a finished file it
//! does nothing. Only I/O is retried in process, each step on its own (the ledger, the
//! stream, each publish); past those retries the item goes to a retry queue. A file that
//! cannot be read for a permanent reason is marked `failed` and dead-lettered.

use std::sync::Arc;

use penstock_broker::{Meta, SharedQueue, WorkQueue};
use penstock_core::event::Event;
use penstock_core::header::{HeaderMap, NewColumn};
use penstock_core::message::{self, VERSION};
use penstock_core::spec::OnNewColumns;
use penstock_core::validate::{Expected, PlannedChunk, Validator, Verdict};
use penstock_core::{ChunkItem, DatasetSpec, FileItem};
use penstock_db::{FileState, PlanNotes, PlannedRange, StoredPlan};
use tokio::io::AsyncReadExt;

use crate::context::Context;
use crate::metrics::Occurrence;
use crate::outcome::{Disposition, Step, retrying};
use crate::stage::Stage;

const BLOCK: usize = 256 * 1024;

/// The chunker as a stage: one file at a time.
pub struct Chunker {
    pub ctx: Arc<Context>,
    pub queue: SharedQueue,
}

#[async_trait::async_trait]
impl Stage for Chunker {
    type Item = FileItem;

    fn queue(&self) -> &str {
        &self.queue.queues().files
    }

    fn prefetch(&self) -> u16 {
        1
    }

    fn decode(&self, body: &[u8], _meta: &Meta, _redelivered: bool) -> Result<FileItem, String> {
        message::decode(body).map_err(|e| e.to_string())
    }

    fn describe(&self, item: &FileItem, span: &tracing::Span) {
        span.record("dataset", item.dataset.as_str());
        span.record("file_id", item.file_id);
    }

    /// Streaming a huge file can outlast RabbitMQ's `consumer_timeout` (30 min by default):
    /// the file item is acked once the chunker has held it this long (a third of
    /// `reconcile_after`, at most 10 minutes). The ledger has the file (`chunking`, with a
    /// heartbeat) by then; if this process dies, the reconciler republishes the item.
    fn settle_early_after(&self) -> Option<std::time::Duration> {
        Some((self.ctx.config.reconcile_after / 3).min(std::time::Duration::from_secs(600)))
    }

    async fn handle(&self, item: FileItem) -> Disposition {
        let (ctx, queue) = (&self.ctx, self.queue.as_ref());
        let Some(spec) = ctx.config.dataset(&item.dataset) else {
            let reason = format!(
                "unknown dataset {:?}: no spec in datasets_dir declares it",
                item.dataset
            );
            return ctx.fail_file(item.file_id, &item.key, &reason).await;
        };
        match chunk_file(ctx, queue, spec, &item).await {
            Ok(()) => Disposition::Ack,
            Err(Step::Transient(reason)) => {
                tracing::warn!(file_id = item.file_id, %reason, "chunking failed transiently; will retry");
                Disposition::Retry(reason)
            }
            Err(Step::Permanent(reason)) => ctx.fail_file(item.file_id, &item.key, &reason).await,
        }
    }
}

async fn chunk_file(ctx: &Context, queue: &dyn WorkQueue, spec: &DatasetSpec, item: &FileItem) -> Result<(), Step> {
    let file = retrying(|| async { Ok(penstock_db::file(ctx.file_db(item.file_id), item.file_id).await?) }).await?;
    let Some(file) = file else {
        return Err(Step::Permanent(format!(
            "file version {} is not in the ledger",
            item.file_id
        )));
    };
    if file.is_terminal() {
        tracing::info!(file_id = item.file_id, status = %file.status, "file already finished; nothing to do");
        return Ok(());
    }
    if file.status == FileState::Loading
        && let Some(plan) = stored_plan(ctx, item.file_id).await?
    {
        // A redelivered item (a chunker stopped while publishing, or lost its connection):
        // the stored plan again, as it is, whatever chunk_bytes is now.
        tracing::info!(
            file_id = item.file_id,
            chunks = plan.chunks.len(),
            "file already planned; publishing its stored plan again"
        );
        return publish(queue, item, &plan).await;
    }
    // Loading without a stored plan: planned before migration 0010 stored plans; plan again.
    let replan = file.status == FileState::Loading;
    if !replan
        && !retrying(|| async { Ok(penstock_db::start_chunking(ctx.file_db(item.file_id), item.file_id).await?) })
            .await?
    {
        return Ok(());
    }
    tracing::info!(file_id = item.file_id, key = %item.key, "chunking");
    // The stream is one unit: a read that fails part-way starts over from the first byte.
    let streamed = with_heartbeat(ctx, item.file_id, retrying(|| stream_and_plan(ctx, spec, item))).await;
    let (header, chunks, records) = match streamed? {
        Verdict::Rejected(reason) => return reject(ctx, item, &reason).await,
        Verdict::Changed(reason) => return Err(Step::Permanent(reason)),
        Verdict::Chunks {
            header,
            chunks,
            records,
        } => (header, chunks, records),
    };
    let plan = StoredPlan {
        field_count: header.field_count as i32,
        // ABSENT (u32::MAX) is stored as -1 and read back as ABSENT.
        columns: header.columns.iter().map(|&c| c as i32).collect(),
        new_columns: header.new_columns.clone(),
        chunks: chunks
            .into_iter()
            .map(|PlannedChunk { plan, sha256 }| PlannedRange {
                chunk: plan.number as i32,
                start: plan.start as i64,
                end: plan.end as i64,
                first_line: plan.first_line as i64,
                records: plan.records as i64,
                sha256,
            })
            .collect(),
    };
    if !replan {
        let notes = plan_notes(spec, item, &header);
        let stored = retrying(|| async {
            Ok(penstock_db::store_plan(ctx.file_db(item.file_id), item.file_id, &plan, records, &notes).await?)
        })
        .await?;
        if !stored {
            // Another chunker stored its plan first (or an earlier attempt committed and its
            // answer was lost), or the file ended: publish what is stored, if anything.
            return match stored_plan(ctx, item.file_id).await? {
                Some(stored) => publish(queue, item, &stored).await,
                None => Ok(()),
            };
        }
    }
    publish(queue, item, &plan).await?;
    tracing::info!(
        file_id = item.file_id,
        chunks = plan.chunks.len(),
        records,
        "chunk items published"
    );
    Ok(())
}

/// What the plan records beside its chunks: the optional columns the file lacks, and the
/// alert its new columns raise when the dataset alerts on them.
fn plan_notes<'s>(spec: &'s DatasetSpec, item: &FileItem, header: &HeaderMap) -> PlanNotes<'s> {
    let new = header.new_column_names();
    if !new.is_empty() {
        tracing::info!(file_id = item.file_id, columns = ?new, policy = spec.on_new_columns.as_str(), "the file has columns the spec does not declare");
    }
    PlanNotes {
        absent: header.absent(spec),
        event: (spec.on_new_columns == OnNewColumns::Alert && !new.is_empty())
            .then(|| Event::new_columns(item.file_id, &item.key, &spec.name, new)),
    }
}

/// Runs `work` while telling the ledger now and then that the file is still being worked on
/// (a third of `reconcile_after`, at most a minute), so the reconciler does not take a long
/// stream for a lost file item.
async fn with_heartbeat<T>(ctx: &Context, file_id: i64, work: impl std::future::Future<Output = T>) -> T {
    let every = (ctx.config.reconcile_after / 3).min(std::time::Duration::from_secs(60));
    let stop = tokio_util::sync::CancellationToken::new();
    let (pool, beating) = (ctx.file_db(file_id).clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = beating.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = penstock_db::touch(&pool, file_id).await {
                tracing::debug!(file_id, error = %e, "cannot note that the file is still being chunked");
            }
        }
    });
    // Stops the heartbeat however this returns (or is dropped, at shutdown).
    let _stop = stop.drop_guard();
    work.await
}

async fn stored_plan(ctx: &Context, file_id: i64) -> Result<Option<StoredPlan>, Step> {
    retrying(|| async { Ok(penstock_db::stored_plan(ctx.file_db(file_id), file_id).await?) }).await
}

/// Publishes one chunk item per planned range, each confirmed by the broker.
async fn publish(queue: &dyn WorkQueue, item: &FileItem, plan: &StoredPlan) -> Result<(), Step> {
    let header = PlanHeader {
        field_count: plan.field_count,
        columns: &plan.columns,
        new_columns: &plan.new_columns,
        chunks_total: plan.chunks.len() as u32,
    };
    let chunks_queue = &queue.queues().chunks;
    for (id, chunk) in chunk_items(item, &header, &plan.chunks) {
        retrying(|| async { Ok(queue.publish_json(chunks_queue, &chunk, &id).await?) }).await?;
    }
    Ok(())
}

/// What every chunk item of a plan repeats: the header it was made against, the chunk count.
pub(crate) struct PlanHeader<'a> {
    pub field_count: i32,
    pub columns: &'a [i32],
    pub new_columns: &'a [NewColumn],
    pub chunks_total: u32,
}

/// The chunk items (with their message ids) of some ranges of a file's plan: all of them,
/// or the ones the reconciler found missing.
pub(crate) fn chunk_items(item: &FileItem, plan: &PlanHeader<'_>, ranges: &[PlannedRange]) -> Vec<(String, ChunkItem)> {
    let columns: Vec<u32> = plan.columns.iter().map(|&c| c as u32).collect();
    ranges
        .iter()
        .map(|range| {
            let chunk = ChunkItem {
                v: VERSION,
                file_id: item.file_id,
                dataset: item.dataset.clone(),
                key: item.key.clone(),
                version: item.version.clone(),
                chunk: range.chunk as u32,
                chunks_total: plan.chunks_total,
                start: range.start as u64,
                end: range.end as u64,
                first_line: range.first_line as u64,
                records: range.records as u64,
                field_count: plan.field_count as u32,
                columns: columns.clone(),
                new_columns: plan.new_columns.to_vec(),
                sha256: range.sha256.clone(),
            };
            (format!("chunk-{}-{}", item.file_id, range.chunk), chunk)
        })
        .collect()
}

/// Records a rejection (its event goes to the outbox with it).
async fn reject(ctx: &Context, item: &FileItem, reason: &str) -> Result<(), Step> {
    let event = Event::file_rejected(item.file_id, &item.key, reason);
    let recorded = retrying(|| async {
        Ok(penstock_db::finish_with(
            ctx.file_db(item.file_id),
            item.file_id,
            FileState::Rejected,
            reason,
            &event,
        )
        .await?)
    })
    .await?;
    if recorded {
        Occurrence::FileCompleted {
            file_id: item.file_id,
            key: &item.key,
            dataset: &item.dataset,
            status: FileState::Rejected,
            took: None,
            reason: Some(reason),
        }
        .record();
    }
    Ok(())
}

/// Streams the object once through the validator (only the open chunk's bytes are held in
/// memory).
async fn stream_and_plan(ctx: &Context, spec: &DatasetSpec, item: &FileItem) -> Result<Verdict, Step> {
    let mut reader = ctx.store.open_version(&item.key, &item.version).await?;
    let expected = Expected::of(&item.version, item.size);
    let mut validator = Validator::new(spec, ctx.config.chunk_bytes, &item.key, expected);
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = reader
            .read(&mut block)
            .await
            .map_err(|e| Step::Transient(format!("reading {:?}: {e}", item.key)))?;
        if n == 0 || !validator.feed(&block[..n]) {
            break;
        }
    }
    Ok(validator.finish())
}

#[cfg(test)]
mod tests {
    use penstock_broker::{MemoryQueue, WorkQueue};

    use super::*;
    use crate::stage::tests::{SETTINGS, run_until, settled};

    async fn chunker(memory: &MemoryQueue, store: &std::path::Path) -> Arc<Chunker> {
        Arc::new(Chunker {
            ctx: Context::unreachable_database(store).await,
            queue: Arc::new(memory.clone()),
        })
    }

    #[tokio::test]
    async fn an_undecodable_file_item_is_dead_lettered_with_why() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        memory.publish("t.files", b"{\"v\":1}", &Meta::new("f")).await.unwrap();
        run_until(
            chunker(&memory, store.path()).await,
            &memory,
            SETTINGS,
            settled("t.files"),
        )
        .await
        .unwrap();
        assert_eq!(memory.ready("t.errors").len(), 1);
        assert!(memory.ready("t.chunks").is_empty());
    }

    #[tokio::test]
    async fn a_file_whose_ledger_cannot_be_read_waits_for_a_retry_and_publishes_nothing() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        let stage = chunker(&memory, store.path()).await;
        let item = FileItem {
            v: VERSION,
            file_id: 3,
            dataset: stage.ctx.config.datasets[0].name.clone(),
            key: "egrid/generators/a.csv".into(),
            version: "v1".into(),
            size: 10,
        };
        let body = serde_json::to_vec(&item).unwrap();
        memory.publish("t.files", &body, &Meta::new("file-3")).await.unwrap();
        run_until(stage, &memory, SETTINGS, |m| !m.delayed("t.files").is_empty())
            .await
            .unwrap();
        assert!(memory.ready("t.chunks").is_empty() && memory.ready("t.errors").is_empty());
    }
}
