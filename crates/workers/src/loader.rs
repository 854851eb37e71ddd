//! Database consumer: consumes chunk items from `<prefix>.chunks`, fetches the chunk's byte
//! range (a ranged read, so memory does not grow with file size), checks its SHA-256,
//! parses, coerces and deduplicates it, and loads it with [`penstock_db::load_chunk`]: rows,
//! quarantine and the chunk's ledger row in one transaction.
//!
//! Acks only after that transaction commits; a redelivered chunk whose ledger row exists is
//! acked with no effect. Transient failures (storage, database: connection loss,
//! serialization failures, deadlocks) are retried in process with exponential backoff and
//! jitter, then requeued; permanent ones (undecodable item, unknown dataset, object gone or
//! changed) fail the file and dead-letter the item.

use std::sync::Arc;

use penstock_broker::{Meta, SharedQueue};
use penstock_core::header::HeaderMap;
use penstock_core::{ChunkItem, message, prepare_chunk};
use penstock_db::{ChunkInPlan, ChunkOutcome};
use sha2::{Digest, Sha256};

use crate::context::Context;
use crate::metrics::Occurrence;
use crate::outcome::{Disposition, Step, retrying};
use crate::stage::Stage;

/// The database consumer as a stage.
pub struct Loader {
    pub ctx: Arc<Context>,
    pub queue: SharedQueue,
}

#[async_trait::async_trait]
impl Stage for Loader {
    type Item = ChunkItem;

    fn queue(&self) -> &str {
        &self.queue.queues().chunks
    }

    fn prefetch(&self) -> u16 {
        self.ctx.config.database_concurrency as u16
    }

    fn decode(&self, body: &[u8], _meta: &Meta, _redelivered: bool) -> Result<ChunkItem, String> {
        message::decode(body).map_err(|e| e.to_string())
    }

    fn describe(&self, item: &ChunkItem, span: &tracing::Span) {
        span.record("dataset", item.dataset.as_str());
        span.record("file_id", item.file_id);
        span.record("chunk", item.chunk);
    }

    async fn handle(&self, item: ChunkItem) -> Disposition {
        let ctx = &self.ctx;
        if ctx.dataset(&item.dataset).is_none() {
            let reason = format!(
                "unknown dataset {:?}: no spec in datasets_dir declares it",
                item.dataset
            );
            return ctx.fail_file(item.file_id, &item.key, &reason).await;
        }
        match self.load(&item).await {
            Ok(()) => Disposition::Ack,
            Err(Step::Transient(reason)) => {
                tracing::warn!(file_id = item.file_id, chunk = item.chunk, %reason, "chunk failed transiently; will retry");
                Disposition::Retry(reason)
            }
            Err(Step::Permanent(reason)) => ctx.fail_file(item.file_id, &item.key, &reason).await,
        }
    }
}

impl Loader {
    /// Reads, checks, parses and commits one chunk. Only the I/O is retried in process: the
    /// file's status, the ranged read and the load transaction, each on its own.
    async fn load(&self, item: &ChunkItem) -> Result<(), Step> {
        let ctx = &self.ctx;
        let (spec, merge) = ctx.dataset(&item.dataset).expect("checked by the caller");
        // A file that has already failed or been rejected loads nothing more.
        let file = retrying(|| async { Ok(penstock_db::file(ctx.file_db(item.file_id), item.file_id).await?) }).await?;
        if let Some(file) = file
            && file.status.is_unsuccessful()
        {
            tracing::info!(file_id = item.file_id, chunk = item.chunk, status = %file.status, "file ended; chunk skipped");
            return Ok(());
        }
        let in_plan = retrying(|| async {
            Ok(penstock_db::chunk_in_plan(ctx.file_db(item.file_id), item.file_id, item.chunk as i32).await?)
        })
        .await?;
        if let Some(reason) = disagreement(item, &in_plan)
            .or_else(|| oversized(item, spec))
            .or_else(|| misfit(item, spec))
        {
            return Err(Step::Permanent(reason));
        }
        let started = std::time::Instant::now();
        let bytes = retrying(|| async {
            Ok(ctx
                .store
                .read_range_of(&item.key, &item.version, item.start, item.end)
                .await?)
        })
        .await?;
        if hex::encode(Sha256::digest(&bytes)) != item.sha256 {
            return Err(Step::Permanent(format!(
                "bytes {}..{} of {:?} changed after the file was validated; the scanner will pick up the new version",
                item.start, item.end, item.key
            )));
        }
        let spec_owned = spec.clone();
        let header = HeaderMap {
            field_count: item.field_count,
            columns: columns_for(item, spec),
            new_columns: item.new_columns.clone(),
        };
        let (first_line, file_id) = (item.first_line, item.file_id);
        // Parsing and coercion are CPU work: keep them off the async workers.
        let (bytes, prepared) = tokio::task::spawn_blocking(move || {
            let prepared = prepare_chunk(&bytes, &spec_owned, &header, first_line, file_id);
            (bytes, prepared)
        })
        .await
        .map_err(|e| Step::Permanent(format!("parsing the chunk panicked: {e}")))?;
        if prepared.records != item.records {
            return Err(Step::Permanent(format!(
                "chunk {} holds {} records but the chunker counted {}",
                item.chunk, prepared.records, item.records
            )));
        }
        let outcome = retrying(|| async {
            Ok(penstock_db::load_chunk(ctx.file_db(item.file_id), merge, item, &prepared, &bytes).await?)
        })
        .await?;
        match outcome {
            // A redelivery, or a retry after a commit whose answer was lost: nothing to do
            // (what the commit announced is in the outbox).
            ChunkOutcome::AlreadyLoaded => {
                Occurrence::ChunkAlreadyLoaded {
                    file_id: item.file_id,
                    chunk: item.chunk,
                    dataset: &item.dataset,
                }
                .record();
            }
            ChunkOutcome::Loaded {
                file_status,
                rows_changed,
                path,
                refused,
                kept,
                finished,
            } => {
                Occurrence::ChunkCommitted {
                    file_id: item.file_id,
                    chunk: item.chunk,
                    dataset: &item.dataset,
                    rows: prepared.rows - refused - kept,
                    rows_changed,
                    path: path.as_str(),
                    quarantined: prepared.quarantined.len() as u64 + refused,
                    superseded: prepared.superseded,
                    file_status,
                    took: started.elapsed(),
                }
                .record();
                if let Some(finished) = finished {
                    Occurrence::FileCompleted {
                        file_id: item.file_id,
                        key: &item.key,
                        dataset: &item.dataset,
                        status: file_status,
                        took: finished.took,
                        reason: None,
                    }
                    .record();
                }
            }
        }
        Ok(())
    }
}

/// The item's column map for the spec as it is now: a plan made before optional columns were
/// added to the spec (`penstock infer --update`, then a restart) lacks them, and they load
/// NULL ([`misfit`] has refused every other difference).
fn columns_for(item: &ChunkItem, spec: &penstock_core::DatasetSpec) -> Vec<u32> {
    let mut columns = item.columns.clone();
    columns.resize(spec.columns.len(), penstock_core::header::ABSENT);
    columns
}

/// Why an item's column map cannot be read against the spec, if it cannot: a field index
/// outside its records (a forged or corrupt item), or a plan made against another spec than
/// this one, other than optional columns added at the end.
fn misfit(item: &ChunkItem, spec: &penstock_core::DatasetSpec) -> Option<String> {
    use penstock_core::header::ABSENT;
    let outside = item
        .columns
        .iter()
        .chain(item.new_columns.iter().map(|c| &c.field))
        .any(|&i| i != ABSENT && i >= item.field_count);
    if outside {
        return Some(format!(
            "chunk {} of file {} maps a column to a field beyond its {} fields; refused unread",
            item.chunk, item.file_id, item.field_count
        ));
    }
    let added = spec.columns.get(item.columns.len()..).unwrap_or_default();
    (item.columns.len() > spec.columns.len() || added.iter().any(|c| c.required)).then(|| {
        format!(
            "file {} was planned against another spec of dataset {} ({} columns; it has {} now): replay it \
             (`penstock replay {}`) to plan it against this one",
            item.file_id,
            spec.name,
            item.columns.len(),
            spec.columns.len(),
            item.file_id
        )
    })
}

/// Why an item's byte range is wider than any chunk may be (whatever `chunk_bytes` planned
/// it, at most 1 GiB), if it is: checked before a byte is read or allocated, so a forged or
/// corrupt item cannot make the loader allocate what it says.
fn oversized(item: &ChunkItem, spec: &penstock_core::DatasetSpec) -> Option<String> {
    let span = item.end.saturating_sub(item.start);
    let cap = penstock_core::plan::max_chunk_span(1 << 30, spec.csv.max_field_bytes, item.field_count as u64);
    (span > cap).then(|| {
        format!(
            "chunk {} of file {} spans {span} bytes, more than any chunk may ({cap}: the largest chunk_bytes plus \
             the widest record allowed); refused unread",
            item.chunk, item.file_id
        )
    })
}

/// Why a chunk item does not match its file's stored plan (None: it matches, or the file
/// was planned before plans were stored). An item that disagrees was made from another plan
/// (an older chunker, a forged or corrupted message): loading it could skip or repeat rows.
fn disagreement(item: &ChunkItem, in_plan: &ChunkInPlan) -> Option<String> {
    let planned = match in_plan {
        ChunkInPlan::Unplanned => return None,
        ChunkInPlan::Missing { chunks } => {
            return Some(format!(
                "chunk {} of file {} is not in its stored plan, which has {chunks} chunks",
                item.chunk, item.file_id
            ));
        }
        ChunkInPlan::Planned(planned) => planned,
    };
    let fields = [
        ("start byte", item.start as i64, planned.start),
        ("end byte", item.end as i64, planned.end),
        ("first line", item.first_line as i64, planned.first_line),
        ("records", item.records as i64, planned.records),
    ];
    let mut differ: Vec<String> = fields
        .iter()
        .filter(|(_, got, want)| got != want)
        .map(|(what, got, want)| format!("{what} {got} (planned {want})"))
        .collect();
    if item.sha256 != planned.sha256 {
        differ.push("checksum".into());
    }
    (!differ.is_empty()).then(|| {
        format!(
            "chunk {} of file {} does not match its stored plan: {}",
            item.chunk,
            item.file_id,
            differ.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use penstock_broker::{MemoryQueue, WorkQueue};

    use penstock_db::PlannedRange;

    use super::*;
    use crate::stage::tests::{SETTINGS, run_until, settled};

    async fn loader(memory: &MemoryQueue, store: &std::path::Path) -> Arc<Loader> {
        Arc::new(Loader {
            ctx: Context::unreachable_database(store).await,
            queue: Arc::new(memory.clone()),
        })
    }

    fn chunk(dataset: &str) -> Vec<u8> {
        let item = ChunkItem {
            v: message::VERSION,
            file_id: 7,
            dataset: dataset.into(),
            key: "egrid/generators/a.csv".into(),
            version: "v1".into(),
            chunk: 1,
            chunks_total: 1,
            start: 0,
            end: 10,
            first_line: 3,
            records: 1,
            field_count: 5,
            columns: vec![0, 1, 2, 3, 4],
            new_columns: vec![],
            sha256: "00".into(),
        };
        serde_json::to_vec(&item).unwrap()
    }

    fn planned_as(item: &ChunkItem) -> PlannedRange {
        PlannedRange {
            chunk: item.chunk as i32,
            start: item.start as i64,
            end: item.end as i64,
            first_line: item.first_line as i64,
            records: item.records as i64,
            sha256: item.sha256.clone(),
        }
    }

    #[test]
    fn an_item_wider_than_any_chunk_may_be_is_refused_unread() {
        let spec = penstock_core::DatasetSpec::from_toml(
            "egrid",
            include_str!("../../../config/datasets/egrid_generators.toml"),
        )
        .unwrap();
        let mut item: ChunkItem = serde_json::from_slice(&chunk("egrid_generators")).unwrap();
        assert_eq!(oversized(&item, &spec), None);
        item.end = item.start + (1 << 40);
        let reason = oversized(&item, &spec).unwrap();
        assert!(
            reason.starts_with("chunk 1 of file 7 spans 1099511627776 bytes, more than any chunk may"),
            "{reason}"
        );
    }

    #[test]
    fn a_plan_made_before_optional_columns_were_added_loads_them_null_and_any_other_mismatch_is_refused() {
        let egrid = include_str!("../../../config/datasets/egrid_generators.toml");
        let grown = format!(
            "{egrid}\n[[columns]]\nname = \"fuel\"\nsource = \"PLFUELCT\"\ntype = \"text\"\nrequired = false\n"
        );
        let spec = penstock_core::DatasetSpec::from_toml("egrid", &grown).unwrap();
        let mut item: ChunkItem = serde_json::from_slice(&chunk("egrid_generators")).unwrap();
        assert_eq!(misfit(&item, &spec), None);
        assert_eq!(
            columns_for(&item, &spec),
            vec![0, 1, 2, 3, 4, penstock_core::header::ABSENT]
        );
        let required = spec_with_required_column(&grown);
        assert!(misfit(&item, &required).unwrap().contains("penstock replay 7"));
        item.columns[0] = 9;
        assert!(misfit(&item, &spec).unwrap().contains("beyond its 5 fields"));
    }

    fn spec_with_required_column(text: &str) -> penstock_core::DatasetSpec {
        let text = text.replace("required = false\n", "");
        penstock_core::DatasetSpec::from_toml("egrid", &text).unwrap()
    }

    #[test]
    fn an_item_that_matches_its_stored_plan_or_has_none_is_loaded() {
        let item: ChunkItem = serde_json::from_slice(&chunk("egrid_generators")).unwrap();
        assert_eq!(disagreement(&item, &ChunkInPlan::Planned(planned_as(&item))), None);
        assert_eq!(disagreement(&item, &ChunkInPlan::Unplanned), None);
    }

    #[test]
    fn an_item_that_differs_from_its_stored_plan_is_refused_naming_every_difference() {
        let item: ChunkItem = serde_json::from_slice(&chunk("egrid_generators")).unwrap();
        let mut planned = planned_as(&item);
        planned.end = 12;
        planned.first_line = 4;
        planned.sha256 = "ff".into();
        let reason = disagreement(&item, &ChunkInPlan::Planned(planned)).unwrap();
        assert_eq!(
            reason,
            "chunk 1 of file 7 does not match its stored plan: end byte 10 (planned 12), first line 3 (planned 4), checksum"
        );
        let reason = disagreement(&item, &ChunkInPlan::Missing { chunks: 3 }).unwrap();
        assert!(
            reason.contains("not in its stored plan, which has 3 chunks"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn an_undecodable_chunk_item_is_dead_lettered_with_why() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        memory
            .publish("t.chunks", b"\x00 not json", &Meta::new("c"))
            .await
            .unwrap();
        run_until(
            loader(&memory, store.path()).await,
            &memory,
            SETTINGS,
            settled("t.chunks"),
        )
        .await
        .unwrap();
        let dead = memory.ready("t.errors");
        assert_eq!(dead.len(), 1);
        assert!(
            dead[0].1.reason.as_deref().unwrap().contains("not a valid work item"),
            "{:?}",
            dead[0].1
        );
    }

    #[tokio::test]
    async fn a_chunk_whose_ledger_cannot_be_read_waits_for_a_retry_instead_of_failing() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        let stage = loader(&memory, store.path()).await;
        let dataset = stage.ctx.config.datasets[0].name.clone();
        memory
            .publish("t.chunks", &chunk(&dataset), &Meta::new("c"))
            .await
            .unwrap();
        run_until(stage, &memory, SETTINGS, |m| !m.delayed("t.chunks").is_empty())
            .await
            .unwrap();
        assert_eq!(memory.delayed("t.chunks")[0].1.attempt, 2);
        assert!(memory.ready("t.errors").is_empty());
    }

    #[tokio::test]
    async fn a_chunk_of_an_unknown_dataset_is_kept_while_its_failure_cannot_be_recorded() {
        let (memory, store) = (MemoryQueue::new("t"), tempfile::tempdir().unwrap());
        memory
            .publish("t.chunks", &chunk("nope"), &Meta::new("c"))
            .await
            .unwrap();
        run_until(loader(&memory, store.path()).await, &memory, SETTINGS, |m| {
            !m.delayed("t.chunks").is_empty()
        })
        .await
        .unwrap();
        assert!(
            memory.ready("t.errors").is_empty(),
            "not dead-lettered before the file is marked failed"
        );
    }
}
