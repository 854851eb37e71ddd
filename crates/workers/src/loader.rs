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

use penstock_broker::{Broker, Delivery};
use penstock_core::event::{Event, EventKind};
use penstock_core::header::HeaderMap;
use penstock_core::{ChunkItem, message, prepare_chunk};
use penstock_db::ChunkOutcome;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::consume::consume;
use crate::context::Context;
use crate::outcome::{Disposition, RunError, Step, retrying};

pub async fn run(ctx: Arc<Context>, broker: Broker, shutdown: CancellationToken) -> Result<(), RunError> {
    let queue = broker.queues.chunks.clone();
    let prefetch = ctx.config.database_concurrency as u16;
    let grace = ctx.config.shutdown_grace;
    let handler_broker = broker.clone();
    consume(
        &broker,
        &queue,
        prefetch,
        grace,
        ctx.config.max_attempts,
        &shutdown,
        move |delivery: Delivery| {
            let ctx = ctx.clone();
            let broker = handler_broker.clone();
            async move {
                let disposition = handle(&ctx, &broker, &delivery.data).await;
                (delivery, disposition)
            }
        },
    )
    .await?;
    Ok(())
}

async fn handle(ctx: &Context, broker: &Broker, body: &[u8]) -> Disposition {
    let item: ChunkItem = match message::decode(body) {
        Ok(item) => item,
        Err(e) => return Disposition::DeadLetter(e.to_string()),
    };
    let span = tracing::Span::current();
    span.record("dataset", item.dataset.as_str());
    span.record("file_id", item.file_id);
    span.record("chunk", item.chunk);
    if ctx.dataset(&item.dataset).is_none() {
        let reason = format!(
            "unknown dataset {:?}: no spec in datasets_dir declares it",
            item.dataset
        );
        return ctx.fail_file(broker, item.file_id, &item.key, &reason).await;
    }
    match retrying(|| load(ctx, broker, &item)).await {
        Ok(()) => Disposition::Ack,
        Err(Step::Transient(reason)) => {
            tracing::warn!(file_id = item.file_id, chunk = item.chunk, %reason, "chunk failed transiently; will retry");
            Disposition::Retry(reason)
        }
        Err(Step::Permanent(reason)) => ctx.fail_file(broker, item.file_id, &item.key, &reason).await,
    }
}

async fn load(ctx: &Context, broker: &Broker, item: &ChunkItem) -> Result<(), Step> {
    let (spec, merge) = ctx.dataset(&item.dataset).expect("checked by the caller");
    // A file that has already failed or been rejected loads nothing more.
    if let Some(file) = penstock_db::file(&ctx.pool, item.file_id).await?
        && file.status.is_unsuccessful()
    {
        tracing::info!(file_id = item.file_id, chunk = item.chunk, status = %file.status, "file ended; chunk skipped");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let bytes = ctx.store.read_range(&item.key, item.start, item.end).await?;
    if hex::encode(Sha256::digest(&bytes)) != item.sha256 {
        return Err(Step::Permanent(format!(
            "bytes {}..{} of {:?} changed after the file was validated; the scanner will pick up the new version",
            item.start, item.end, item.key
        )));
    }
    let spec_owned = spec.clone();
    let header = HeaderMap {
        field_count: item.field_count,
        columns: item.columns.clone(),
    };
    let (first_line, file_id) = (item.first_line, item.file_id);
    // Parsing and coercion are CPU work: keep them off the async workers.
    let prepared =
        tokio::task::spawn_blocking(move || prepare_chunk(&bytes, &spec_owned, &header, first_line, file_id))
            .await
            .map_err(|e| Step::Permanent(format!("parsing the chunk panicked: {e}")))?;
    if prepared.records != item.records {
        return Err(Step::Permanent(format!(
            "chunk {} holds {} records but the chunker counted {}",
            item.chunk, prepared.records, item.records
        )));
    }
    match penstock_db::load_chunk(&ctx.pool, merge, item, &prepared).await? {
        ChunkOutcome::AlreadyLoaded => {
            crate::metrics::chunk_already_loaded(&item.dataset);
            tracing::info!(
                file_id = item.file_id,
                chunk = item.chunk,
                "chunk already in the ledger; nothing to do"
            );
        }
        ChunkOutcome::Loaded {
            file_status,
            rows_changed,
            path,
        } => {
            tracing::info!(
                file_id = item.file_id,
                chunk = item.chunk,
                rows = prepared.rows,
                rows_changed,
                path = path.as_str(),
                quarantined = prepared.quarantined.len(),
                superseded = prepared.superseded,
                status = %file_status,
                "chunk committed"
            );
            crate::metrics::chunk_loaded(
                &item.dataset,
                prepared.rows as u64,
                prepared.quarantined.len() as u64,
                prepared.superseded as u64,
                started.elapsed(),
            );
            if file_status.is_terminal() {
                announce_finished(ctx, broker, item.file_id).await?;
            }
        }
    }
    Ok(())
}

/// Tells the notification consumer that a file finished loading.
async fn announce_finished(ctx: &Context, broker: &Broker, file_id: i64) -> Result<(), Step> {
    let Some(file) = penstock_db::file(&ctx.pool, file_id).await? else {
        return Ok(());
    };
    let took = file
        .started_at
        .zip(file.finished_at)
        .and_then(|(start, end)| (end - start).to_std().ok());
    crate::metrics::file_completed(&file.dataset, file.status, took);
    let metadata = serde_json::json!({
        "file_id": file.id,
        "key": file.key,
        "rows_loaded": file.rows_loaded,
        "rows_quarantined": file.rows_quarantined,
        "rows_superseded": file.rows_superseded,
    });
    let (kind, message) = if file.rows_quarantined > 0 {
        (
            EventKind::FileDoneWithErrors {
                file_id,
                key: file.key.clone(),
                quarantined: file.rows_quarantined,
            },
            format!(
                "{} loaded {} rows; {} quarantined",
                file.key, file.rows_loaded, file.rows_quarantined
            ),
        )
    } else {
        (
            EventKind::FileDone {
                file_id,
                key: file.key.clone(),
            },
            format!("{} loaded {} rows", file.key, file.rows_loaded),
        )
    };
    ctx.emit(broker, Event::new(kind, "database", message, metadata)).await;
    Ok(())
}
