//! Every metric the worker roles record, declared in one place. Names follow
//! `penstock_<subsystem>_<name>_<unit>` (base units, `_total` for counters); labels are
//! bounded: dataset names come from the configuration, stages and outcomes from fixed lists.
//! The API's own metrics are in `penstock-api`; both render through the same recorder
//! (`penstock_api::prometheus`).

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use penstock_db::FileState;

pub const FILES_DISCOVERED: &str = "penstock_scanner_files_discovered_total";
pub const FILES_COMPLETED: &str = "penstock_files_completed_total";
pub const CHUNKS_PROCESSED: &str = "penstock_loader_chunks_processed_total";
pub const ROWS_LOADED: &str = "penstock_loader_rows_loaded_total";
pub const ROWS_QUARANTINED: &str = "penstock_loader_rows_quarantined_total";
pub const ROWS_SUPERSEDED: &str = "penstock_loader_rows_superseded_total";
pub const CHUNK_DURATION: &str = "penstock_loader_chunk_duration_seconds";
pub const FILE_DURATION: &str = "penstock_files_duration_seconds";
pub const RETRIES: &str = "penstock_worker_retries_total";
pub const DEAD_LETTERS: &str = "penstock_worker_dead_letters_total";
pub const DELIVERIES: &str = "penstock_worker_deliveries_total";
pub const RECONNECTS: &str = "penstock_worker_reconnects_total";
pub const TRANSIENT_FAILURES: &str = "penstock_worker_transient_failures_total";
pub const QUEUE_READY: &str = "penstock_broker_queue_ready_messages";
pub const S3_EVENTS: &str = "penstock_scanner_s3_events_total";
pub const RECOVERIES: &str = "penstock_reconciler_recoveries_total";
pub const ITEMS_REPUBLISHED: &str = "penstock_reconciler_items_republished_total";

/// Registers help texts (once per process; repeated calls are harmless).
pub fn describe() {
    describe_counter!(FILES_DISCOVERED, "File versions the scanner recorded, by dataset");
    describe_counter!(
        FILES_COMPLETED,
        "File versions that reached a final status (done, done_with_errors, rejected, failed), by dataset"
    );
    describe_counter!(
        CHUNKS_PROCESSED,
        "Chunk items handled by the database consumer, by dataset and outcome (loaded, already_loaded)"
    );
    describe_counter!(ROWS_LOADED, "Rows written to dataset tables, by dataset");
    describe_counter!(
        RECOVERIES,
        "Recoveries of file versions that made no progress (their lost items republished), by dataset"
    );
    describe_counter!(
        ITEMS_REPUBLISHED,
        "Work items the reconciler published again, by queue (files, chunks)"
    );
    describe_counter!(ROWS_QUARANTINED, "Records quarantined with a reason, by dataset");
    describe_counter!(
        ROWS_SUPERSEDED,
        "Records replaced by a later record with the same key in the same chunk, by dataset"
    );
    describe_histogram!(
        CHUNK_DURATION,
        Unit::Seconds,
        "Time to parse and commit one chunk, by dataset"
    );
    describe_histogram!(
        FILE_DURATION,
        Unit::Seconds,
        "Time from a file version's first chunking to its final status, by dataset"
    );
    describe_counter!(
        RETRIES,
        "Work items sent to a retry queue, by stage (files, chunks, events)"
    );
    describe_counter!(
        DEAD_LETTERS,
        "Work items dead-lettered, by stage (files, chunks, events)"
    );
    describe_counter!(
        DELIVERIES,
        "Deliveries settled by consumer roles, by stage and outcome (acked, retried, dead_lettered, released)"
    );
    describe_counter!(
        RECONNECTS,
        "Broker reconnections after a role lost its connection, by role"
    );
    describe_counter!(
        TRANSIENT_FAILURES,
        "Transient failures (database or store connection lost, serialization failure) retried in process"
    );
    describe_counter!(
        S3_EVENTS,
        "Objects reported by S3 event notifications, by outcome (recorded, known, no_dataset, outside_store, malformed, failed)"
    );
    describe_gauge!(
        QUEUE_READY,
        "Messages ready (not yet delivered) in each work queue: consumer lag"
    );
}

/// Something that happened which a log line and the counters both describe: [`Occurrence::record`]
/// writes both, so the log and the metrics cannot tell different stories.
#[derive(Debug, Clone, Copy)]
pub enum Occurrence<'a> {
    /// The scanner recorded a new object version.
    FileDiscovered {
        file_id: i64,
        key: &'a str,
        version: &'a str,
        dataset: &'a str,
    },
    /// A chunk's rows, quarantine and ledger row committed in one transaction.
    ChunkCommitted {
        file_id: i64,
        chunk: u32,
        dataset: &'a str,
        rows: u64,
        rows_changed: u64,
        path: &'static str,
        quarantined: u64,
        superseded: u64,
        file_status: FileState,
        took: Duration,
    },
    /// A redelivered chunk the ledger holds already.
    ChunkAlreadyLoaded { file_id: i64, chunk: u32, dataset: &'a str },
    /// A file version reached a final status (`reason`: why it was rejected or failed).
    FileCompleted {
        file_id: i64,
        key: &'a str,
        dataset: &'a str,
        status: FileState,
        took: Option<Duration>,
        reason: Option<&'a str>,
    },
    /// A transient failure (connection lost, serialization failure), retried in process
    /// after `delay`.
    TransientFailure { reason: &'a str, delay: Duration },
    /// A role connected to the broker again after losing its connection.
    Reconnected { role: &'static str },
    /// The reconciler republished the lost items of a file that made no progress.
    FileRecovered {
        file_id: i64,
        key: &'a str,
        dataset: &'a str,
        /// The queue the items went to (`files` or `chunks`) and how many.
        queue: &'static str,
        items: u32,
        /// Recoveries of this file so far, this one included.
        recoveries: u32,
    },
    /// An object an S3 event notification reported, and what became of it (`error`: why
    /// recording it failed). A notification that cannot be read has no key; the stage logs
    /// why it dropped it.
    S3Event {
        key: &'a str,
        outcome: S3Outcome,
        error: Option<&'a str>,
    },
}

/// What became of an object an S3 event reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Outcome {
    /// A new version, recorded and its file item published.
    Recorded { file_id: i64 },
    /// The ledger has this version already.
    Known,
    /// No dataset's key prefix matches; recorded as ignored.
    NoDataset,
    /// In another bucket, or outside the store's prefix.
    OutsideStore,
    /// The notification could not be read as an S3 event.
    Malformed,
    /// Recording failed; the next poll picks the object up.
    Failed,
}

impl S3Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            S3Outcome::Recorded { .. } => "recorded",
            S3Outcome::Known => "known",
            S3Outcome::NoDataset => "no_dataset",
            S3Outcome::OutsideStore => "outside_store",
            S3Outcome::Malformed => "malformed",
            S3Outcome::Failed => "failed",
        }
    }
}

impl Occurrence<'_> {
    /// Logs the occurrence and counts it.
    pub fn record(self) {
        match self {
            Occurrence::FileDiscovered {
                file_id,
                key,
                version,
                dataset,
            } => {
                tracing::info!(file_id, key, version, dataset, "discovered file version");
                counter!(FILES_DISCOVERED, "dataset" => dataset.to_string()).increment(1);
            }
            Occurrence::ChunkCommitted {
                file_id,
                chunk,
                dataset,
                rows,
                rows_changed,
                path,
                quarantined,
                superseded,
                file_status,
                took,
            } => {
                tracing::info!(
                    file_id,
                    chunk,
                    rows,
                    rows_changed,
                    path,
                    quarantined,
                    superseded,
                    status = %file_status,
                    "chunk committed"
                );
                let dataset = dataset.to_string();
                counter!(CHUNKS_PROCESSED, "dataset" => dataset.clone(), "outcome" => "loaded").increment(1);
                counter!(ROWS_LOADED, "dataset" => dataset.clone()).increment(rows);
                counter!(ROWS_QUARANTINED, "dataset" => dataset.clone()).increment(quarantined);
                counter!(ROWS_SUPERSEDED, "dataset" => dataset.clone()).increment(superseded);
                histogram!(CHUNK_DURATION, "dataset" => dataset).record(took.as_secs_f64());
            }
            Occurrence::ChunkAlreadyLoaded {
                file_id,
                chunk,
                dataset,
            } => {
                tracing::info!(file_id, chunk, "chunk already in the ledger; nothing to do");
                counter!(CHUNKS_PROCESSED, "dataset" => dataset.to_string(), "outcome" => "already_loaded")
                    .increment(1);
            }
            Occurrence::FileCompleted {
                file_id,
                key,
                dataset,
                status,
                took,
                reason,
            } => {
                let seconds = took.map(|d| d.as_secs_f64());
                match status {
                    FileState::Failed => tracing::error!(file_id, key, reason, "file failed"),
                    FileState::Rejected => tracing::warn!(file_id, key, reason, "file rejected"),
                    _ => tracing::info!(file_id, key, status = %status, seconds, "file finished"),
                }
                counter!(FILES_COMPLETED, "dataset" => dataset.to_string(), "status" => status.as_str()).increment(1);
                if let Some(seconds) = seconds {
                    histogram!(FILE_DURATION, "dataset" => dataset.to_string()).record(seconds);
                }
            }
            Occurrence::TransientFailure { reason, delay } => {
                tracing::debug!(%reason, ?delay, "transient failure; retrying");
                counter!(TRANSIENT_FAILURES).increment(1);
            }
            Occurrence::FileRecovered {
                file_id,
                key,
                dataset,
                queue,
                items,
                recoveries,
            } => {
                tracing::warn!(
                    file_id,
                    key,
                    queue,
                    items,
                    recoveries,
                    "file made no progress: its lost work items were published again"
                );
                counter!(RECOVERIES, "dataset" => dataset.to_string()).increment(1);
                counter!(ITEMS_REPUBLISHED, "queue" => queue).increment(items as u64);
            }
            Occurrence::Reconnected { role } => {
                tracing::info!(role, "connected to the broker again");
                counter!(RECONNECTS, "role" => role).increment(1);
            }
            Occurrence::S3Event { key, outcome, error } => {
                match outcome {
                    S3Outcome::Recorded { file_id } => tracing::info!(file_id, key, "recorded from an S3 event"),
                    S3Outcome::Failed => {
                        tracing::warn!(
                            key,
                            error,
                            "cannot handle an S3 event; the next poll will pick the object up"
                        )
                    }
                    S3Outcome::Malformed => {}
                    other => tracing::debug!(key, outcome = other.as_str(), "S3 event"),
                }
                counter!(S3_EVENTS, "outcome" => outcome.as_str()).increment(1);
            }
        }
    }
}

/// The stage of a work queue: the last part of its name (`files`, `chunks`, `events`).
pub fn stage(queue: &str) -> &'static str {
    match queue.rsplit('.').next() {
        Some("files") => "files",
        Some("chunks") => "chunks",
        Some("events") => "events",
        Some("errors") => "errors",
        _ => "other",
    }
}

pub fn retried(queue: &str) {
    counter!(RETRIES, "stage" => stage(queue)).increment(1);
}

pub fn dead_lettered(queue: &str) {
    counter!(DEAD_LETTERS, "stage" => stage(queue)).increment(1);
}

pub fn delivery_settled(queue: &str, outcome: &'static str) {
    counter!(DELIVERIES, "stage" => stage(queue), "outcome" => outcome).increment(1);
}

pub fn queue_ready(queue: &str, ready: u32) {
    gauge!(QUEUE_READY, "queue" => queue.to_string()).set(ready as f64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_from_queue_names_and_stay_bounded() {
        assert_eq!(stage("penstock.files"), "files");
        assert_eq!(stage("fleet-b.chunks"), "chunks");
        assert_eq!(stage("p.events"), "events");
        assert_eq!(stage("p.chunks.retry.5s"), "other");
    }
}
