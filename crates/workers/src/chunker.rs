//! Chunker (the validator): consumes file items from `<prefix>.files`, streams the object
//! once, and either rejects the file with a reason (nothing of it is loaded) or publishes one
//! chunk item per record-aligned byte range to `<prefix>.chunks`.
//!
//! Checks: the dataset's header rows are there and name every mapped column (found by name,
//! so column order may differ between files); every record is valid UTF-8 (a BOM is
//! tolerated); the bytes are the version the scanner discovered. Chunk boundaries come from
//! the CSV state machine ([`penstock_core::scan`]), so quoted commas and newlines never
//! split a record. Each chunk item carries the SHA-256 of its range so the loader never
//! loads bytes that changed.
//!
//! Acks the file item after every chunk item is confirmed by the broker (or after the
//! rejection is recorded). A redelivered file item for a file already loading re-publishes
//! the same chunks (the loader's ledger makes duplicates harmless); for a finished file it
//! does nothing. Transient failures (storage, database, broker) are retried; a file that
//! cannot be read for a permanent reason is marked `failed` and dead-lettered.

use std::sync::Arc;

use penstock_broker::{Meta, SharedQueue, WorkQueue};
use penstock_core::event::{Event, EventKind};
use penstock_core::header::{self, HeaderMap};
use penstock_core::message::{self, VERSION};
use penstock_core::scan::RecordScanner;
use penstock_core::{ChunkItem, ChunkPlan, ChunkPlanner, DatasetSpec, FileItem};
use penstock_db::FileState;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::outcome::{Disposition, RunError, Step, retrying};
use crate::stage::{self, Stage};

const BLOCK: usize = 256 * 1024;

pub async fn run(ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    let settings = ctx.settings();
    let chunker = Arc::new(Chunker {
        ctx,
        queue: queue.clone(),
    });
    stage::run(chunker, queue, settings, &shutdown).await?;
    Ok(())
}

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
        match retrying(|| chunk_file(ctx, queue, spec, &item)).await {
            Ok(()) => Disposition::Ack,
            Err(Step::Transient(reason)) => {
                tracing::warn!(file_id = item.file_id, %reason, "chunking failed transiently; will retry");
                Disposition::Retry(reason)
            }
            Err(Step::Permanent(reason)) => ctx.fail_file(queue, item.file_id, &item.key, &reason).await,
        }
    }
}

/// What streaming a file found.
enum Verdict {
    Rejected(String),
    Chunks {
        header: HeaderMap,
        plans: Vec<(ChunkPlan, String)>,
        records: u64,
    },
}

async fn chunk_file(ctx: &Context, queue: &dyn WorkQueue, spec: &DatasetSpec, item: &FileItem) -> Result<(), Step> {
    let Some(file) = penstock_db::file(&ctx.pool, item.file_id).await? else {
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
    if !replan && !penstock_db::start_chunking(&ctx.pool, item.file_id).await? {
        return Ok(());
    }
    tracing::info!(file_id = item.file_id, key = %item.key, "chunking");
    let verdict = stream_and_plan(ctx, spec, item).await?;
    let (header, plans, records) = match verdict {
        Verdict::Rejected(reason) => {
            tracing::warn!(file_id = item.file_id, key = %item.key, %reason, "file rejected");
            if penstock_db::finish_with(&ctx.pool, item.file_id, FileState::Rejected, &reason).await? {
                crate::metrics::file_completed(&item.dataset, FileState::Rejected, None);
                let kind = EventKind::FileRejected {
                    file_id: item.file_id,
                    key: item.key.clone(),
                };
                let metadata = serde_json::json!({ "file_id": item.file_id, "key": item.key, "reason": reason });
                ctx.emit(
                    queue,
                    Event::new(kind, "chunker", format!("{} rejected: {reason}", item.key), metadata),
                )
                .await;
            }
            return Ok(());
        }
        Verdict::Chunks { header, plans, records } => (header, plans, records),
    };
    if !replan {
        penstock_db::chunks_planned(&ctx.pool, item.file_id, plans.len() as u32, records).await?;
    }
    let total = plans.len() as u32;
    for (plan, sha256) in plans {
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
        queue.publish_json(&queue.queues().chunks, &chunk, &id).await?;
    }
    tracing::info!(file_id = item.file_id, chunks = total, records, "chunk items published");
    Ok(())
}

/// The chunker's state while one file streams past.
struct Planning<'a> {
    spec: &'a DatasetSpec,
    planner: ChunkPlanner,
    /// Bytes from `window_start` on: the open chunk (and the header before the first chunk).
    window: Vec<u8>,
    window_start: u64,
    headers: Vec<Vec<String>>,
    header_lines: Vec<u64>,
    header_map: Option<HeaderMap>,
    plans: Vec<(ChunkPlan, String)>,
    problem: Option<String>,
    records: u64,
    /// Data records that would be quarantined (counted only when the spec sets a limit).
    bad_rows: u64,
    values: Vec<penstock_core::Value>,
}

impl Planning<'_> {
    /// Hashes a closed chunk's bytes out of the window and drops them.
    fn close(&mut self, plan: ChunkPlan) {
        let from = (plan.start - self.window_start) as usize;
        let to = (plan.end - self.window_start) as usize;
        let sha = hex::encode(Sha256::digest(&self.window[from..to]));
        self.window.drain(..to);
        self.window_start = plan.end;
        self.plans.push((plan, sha));
    }

    fn on_record(&mut self, record: penstock_core::scan::Record<'_>) {
        if self.problem.is_some() {
            return;
        }
        if let Err(e) = std::str::from_utf8(record.data()) {
            self.problem = Some(format!(
                "line {} is not valid UTF-8 (invalid byte {} bytes into the record's fields); save the file as UTF-8",
                record.line,
                e.valid_up_to()
            ));
            return;
        }
        if record.data().contains(&0) {
            self.problem = Some(format!(
                "line {} holds a NUL byte: the file looks binary, not CSV text",
                record.line
            ));
            return;
        }
        let max = self.spec.csv.max_field_bytes;
        if let Some((i, field)) = record.fields().enumerate().find(|(_, f)| f.len() as u64 > max) {
            self.problem = Some(format!(
                "field {} of the record on line {} is {} bytes, over the limit of {max} (csv.max_field_bytes); an unterminated quote?",
                i + 1,
                record.line,
                field.len()
            ));
            return;
        }
        if self.headers.len() < self.spec.csv.header_rows as usize {
            self.headers.push(
                record
                    .fields()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect(),
            );
            self.header_lines.push(record.line);
            if self.headers.len() == self.spec.csv.header_rows as usize {
                match header::resolve(self.spec, &self.headers, &self.header_lines) {
                    Ok(map) => self.header_map = Some(map),
                    Err(e) => self.problem = Some(e.to_string()),
                }
            }
            return;
        }
        self.records += 1;
        if self.spec.max_bad_rows.is_some()
            && let Some(header) = &self.header_map
            && penstock_core::rows::coerce_record(&record, self.spec, header, &mut self.values).is_err()
        {
            self.bad_rows += 1;
        }
        if self.planner.open_start().is_none() {
            // The first data record: the header bytes before it belong to no chunk.
            let skip = (record.start - self.window_start) as usize;
            self.window.drain(..skip);
            self.window_start = record.start;
        }
        if let Some(closed) = self.planner.record(record.start, record.line) {
            self.close(closed);
        }
    }
}

/// Streams the object once: hashes it, checks headers and encoding, plans chunks and hashes
/// each chunk's bytes (only the open chunk's bytes are held in memory).
async fn stream_and_plan(ctx: &Context, spec: &DatasetSpec, item: &FileItem) -> Result<Verdict, Step> {
    let mut reader = ctx.store.open(&item.key).await?;
    let mut scanner = RecordScanner::new(&spec.csv, 0, 1);
    let mut state = Planning {
        spec,
        planner: ChunkPlanner::new(ctx.config.chunk_bytes),
        window: Vec::new(),
        window_start: 0,
        headers: Vec::new(),
        header_lines: Vec::new(),
        header_map: None,
        plans: Vec::new(),
        problem: None,
        records: 0,
        bad_rows: 0,
        values: Vec::new(),
    };
    let mut whole = Sha256::new();
    let mut size: u64 = 0;
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = reader
            .read(&mut block)
            .await
            .map_err(|e| Step::Transient(format!("reading {:?}: {e}", item.key)))?;
        if n == 0 {
            break;
        }
        let bytes = &block[..n];
        if size == 0
            && let Some(reason) = penstock_core::sniff::not_csv(bytes)
        {
            return Ok(Verdict::Rejected(reason));
        }
        size += n as u64;
        whole.update(bytes);
        state.window.extend_from_slice(bytes);
        scanner.feed(bytes, &mut |r| state.on_record(r));
        // An open record larger than any record may be is an unterminated quote swallowing
        // the file: stop before it takes the worker's memory.
        let fields = state.header_map.as_ref().map_or(1, |h| h.field_count as u64);
        if scanner.pending_bytes() as u64 > spec.csv.max_field_bytes.saturating_mul(fields)
            && let Some(line) = scanner.open_record_line()
        {
            state.problem.get_or_insert(format!(
                "the record starting on line {line} grows past {} bytes without ending: an unterminated quote?",
                scanner.pending_bytes()
            ));
        }
        if state.problem.is_some() {
            break;
        }
    }
    if state.problem.is_none()
        && let Some(line) = scanner.unterminated_quote_line()
    {
        state.problem = Some(format!(
            "the quoted field opened on line {line} is never closed (unterminated quote); check the quotes on that line"
        ));
    }
    scanner.finish(&mut |r| state.on_record(r));

    if let Some(reason) = state.problem {
        return Ok(Verdict::Rejected(reason));
    }
    if let Some(hash) = item.version.strip_prefix("sha256:") {
        if hex::encode(whole.finalize()) != hash {
            return Err(Step::Permanent(format!(
                "{:?} changed after it was discovered; the scanner will pick up the new version",
                item.key
            )));
        }
    } else if size != item.size {
        return Err(Step::Permanent(format!(
            "{:?} is {size} bytes but was {} when discovered; the scanner will pick up the new version",
            item.key, item.size
        )));
    }
    if let (Some(limit), true) = (spec.max_bad_rows, state.records > 0) {
        let share = state.bad_rows as f64 / state.records as f64;
        if share > limit {
            return Ok(Verdict::Rejected(format!(
                "{} of {} data records ({:.1} %) cannot be loaded, over the dataset's limit of {:.1} % (max_bad_rows); fix the file or raise the limit",
                state.bad_rows,
                state.records,
                share * 100.0,
                limit * 100.0
            )));
        }
    }
    let Some(header) = state.header_map.take() else {
        let reason = if size == 0 {
            "the file is empty (0 bytes); expected a header".to_string()
        } else {
            header::HeaderError::TooFewHeaderRows {
                expected: spec.csv.header_rows,
                found: state.headers.len() as u32,
            }
            .to_string()
        };
        return Ok(Verdict::Rejected(reason));
    };
    let planner = std::mem::replace(&mut state.planner, ChunkPlanner::new(1));
    // The open chunk is the last plan; earlier ones were closed (and hashed) as they streamed.
    if let Some(last) = planner
        .finish(size)
        .pop()
        .filter(|l| state.plans.last().is_none_or(|(p, _)| p.number < l.number))
    {
        state.close(last);
    }
    Ok(Verdict::Chunks {
        header,
        plans: state.plans,
        records: state.records,
    })
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
