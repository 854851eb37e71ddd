//! `penstock backfill`: ingests objects already in the store under a prefix, as the scanner
//! would, without waiting for a scan.

use std::time::SystemTime;

use penstock_broker::WorkQueue;

use crate::context::Context;
use crate::outcome::RunError;
use crate::scanner::{record_and_publish, settled};

/// What a backfill found.
#[derive(Debug, Default, serde::Serialize)]
pub struct BackfillReport {
    /// Objects under the prefix (modified since the date, when given).
    pub objects: usize,
    /// New file versions recorded and published, by id.
    pub recorded: Vec<i64>,
    /// Objects whose current version is in the ledger already.
    pub known: usize,
    /// Objects that match no dataset.
    pub unmatched: Vec<String>,
    /// Objects modified too recently to be sure they are complete (picked up later).
    pub unsettled: Vec<String>,
    /// Objects whose version could not be read, with the error.
    pub unreadable: Vec<String>,
}

/// Ingests objects already in the store under `prefix` (optionally only those modified at or
/// after `since`): records every version not yet in the ledger and publishes it, as the
/// scanner would, without waiting for a scan. Safe to repeat and to run beside a scanner
/// (the ledger serialises per key).
pub async fn backfill(
    ctx: &Context,
    queue: &dyn WorkQueue,
    prefix: &str,
    since: Option<SystemTime>,
) -> Result<BackfillReport, RunError> {
    let store = ctx.store.clone();
    let store_id = store.id();
    let mut report = BackfillReport::default();
    for meta in store.list().await? {
        if !meta.key.starts_with(prefix) {
            continue;
        }
        if let (Some(since), Some(modified)) = (since, meta.modified)
            && modified < since
        {
            continue;
        }
        report.objects += 1;
        let Some(spec) = ctx.config.dataset_for(&meta.key) else {
            report.unmatched.push(meta.key.clone());
            continue;
        };
        if store.needs_settling() && !settled(&meta, None, ctx.config.scan_interval) {
            report.unsettled.push(meta.key.clone());
            continue;
        }
        let version = match store.version(&meta).await {
            Ok(v) => v,
            Err(e) => {
                report.unreadable.push(format!("{}: {e}", meta.key));
                continue;
            }
        };
        match record_and_publish(ctx, queue, &store_id, &meta, &spec.name, &version).await? {
            Some(id) => report.recorded.push(id),
            None => report.known += 1,
        }
    }
    Ok(report)
}
