//! Chunker (the validator's role): consumes file items from `<prefix>.files`, streams the
//! object once through [`penstock_core::validate::Validator`] (every rejection rule lives
//! there), and either rejects the file with a reason (nothing of it is loaded) or publishes
//! one chunk item per record-aligned byte range to `<prefix>.chunks`. Each chunk item carries
//! the SHA-256 of its range so the loader never loads bytes that changed.
//!
//! Acks the file item after every chunk item is confirmed by the broker (or after the
//! rejection is recorded). A redelivered file item for a file already loading re-publishes
//! the same chunks (the loader's ledger makes duplicates harmless); for a finished file it
//! does nothing. Only I/O is retried in process, each step on its own (the ledger, the
//! stream, each publish); past those retries the item goes to a retry queue. A file that
//! cannot be read for a permanent reason is marked `failed` and dead-lettered.

use std::sync::Arc;

use penstock_broker::{Meta, SharedQueue, WorkQueue};
use penstock_core::event::{Event, EventKind};
use penstock_core::message::{self, VERSION};
use penstock_core::validate::{Expected, PlannedChunk, Validator, Verdict};
use penstock_core::{ChunkItem, DatasetSpec, FileItem};
use penstock_db::FileState;
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

    async fn handle(&self, item: FileItem) -> Disposition {
        let (ctx, queue) = (&self.ctx, self.queue.as_ref());
        let Some(spec) = ctx.config.dataset(&item.dataset) else {
            let reason = format!(
                "unknown dataset {:?}: no spec in datasets_dir declares it",
                item.dataset
            );
            return ctx.fail_file(queue, item.file_id, &item.key, &reason).await;
        };
        match chunk_file(ctx, queue, spec, &item).await {
            Ok(()) => Disposition::Ack,
            Err(Step::Transient(reason)) => {
                tracing::warn!(file_id = item.file_id, %reason, "chunking failed transiently; will retry");
                Disposition::Retry(reason)
            }
            Err(Step::Permanent(reason)) => ctx.fail_file(queue, item.file_id, &item.key, &reason).await,
        }
    }
}

async fn chunk_file(ctx: &Context, queue: &dyn WorkQueue, spec: &DatasetSpec, item: &FileItem) -> Result<(), Step> {
    let file = retrying(|| async { Ok(penstock_db::file(&ctx.pool, item.file_id).await?) }).await?;
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
    let replan = file.status == FileState::Loading;
    if !replan && !retrying(|| async { Ok(penstock_db::start_chunking(&ctx.pool, item.file_id).await?) }).await? {
        return Ok(());
    }
    tracing::info!(file_id = item.file_id, key = %item.key, "chunking");
    // The stream is one unit: a read that fails part-way starts over from the first byte.
    let (header, chunks, records) = match retrying(|| stream_and_plan(ctx, spec, item)).await? {
        Verdict::Rejected(reason) => return reject(ctx, queue, item, &reason).await,
        Verdict::Changed(reason) => return Err(Step::Permanent(reason)),
        Verdict::Chunks {
            header,
            chunks,
            records,
        } => (header, chunks, records),
    };
    let total = chunks.len() as u32;
    if !replan {
        retrying(|| async { Ok(penstock_db::chunks_planned(&ctx.pool, item.file_id, total, records).await?) }).await?;
    }
    for PlannedChunk { plan, sha256 } in chunks {
        let chunk = ChunkItem {
            v: VERSION,
            file_id: item.file_id,
            dataset: item.dataset.clone(),
            key: item.key.clone(),
            version: item.version.clone(),
            chunk: plan.number,
            chunks_total: total,
            start: plan.start,
            end: plan.end,
            first_line: plan.first_line,
            records: plan.records,
            field_count: header.field_count,
            columns: header.columns.clone(),
            sha256,
        };
        let id = format!("chunk-{}-{}", item.file_id, plan.number);
        let chunks_queue = &queue.queues().chunks;
        retrying(|| async { Ok(queue.publish_json(chunks_queue, &chunk, &id).await?) }).await?;
    }
    tracing::info!(file_id = item.file_id, chunks = total, records, "chunk items published");
    Ok(())
}

/// Records a rejection and tells the notification consumer.
async fn reject(ctx: &Context, queue: &dyn WorkQueue, item: &FileItem, reason: &str) -> Result<(), Step> {
    let recorded = retrying(|| async {
        Ok(penstock_db::finish_with(&ctx.pool, item.file_id, FileState::Rejected, reason).await?)
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
        let kind = EventKind::FileRejected {
            file_id: item.file_id,
            key: item.key.clone(),
        };
        let metadata = serde_json::json!({ "file_id": item.file_id, "key": item.key, "reason": reason });
        let message = format!("{} rejected: {reason}", item.key);
        ctx.emit(queue, Event::new(kind, "chunker", message, metadata)).await;
    }
    Ok(())
}

/// Streams the object once through the validator (only the open chunk's bytes are held in
/// memory).
async fn stream_and_plan(ctx: &Context, spec: &DatasetSpec, item: &FileItem) -> Result<Verdict, Step> {
    let mut reader = ctx.store.open(&item.key).await?;
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
