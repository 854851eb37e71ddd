//! Scanner: lists the store every `scan_interval` and turns each new object version into an
//! `ingest_files` row (status `discovered`) and a file item on `<prefix>.files`. A local
//! folder is also watched (filesystem notifications): a change there is listed at once, and
//! again 500 ms later while a file is still settling, so a renamed-in file is picked up in
//! well under a second whatever the interval.
//!
//! Consumes: object listings. Produces: file items (persistent, publisher-confirmed).
//! Guarantees: a version is identified by (store, key, ETag) on S3 and (store, key, content
//! hash) on a local folder; bytes identical to the key's latest version are not ingested
//! again, while a key reverted to bytes it held earlier is a new version (it is the latest). The
//! row is written before the publish and marked published after the confirm; rows left
//! unpublished by a crash are published again on the next pass (the chunker tolerates the
//! duplicate). A local file is picked up only once it has settled: two consecutive listings
//! agree on its size and modification time (or, on first sight, it has not changed for a
//! whole interval), so a file still being written is left alone. Objects that
//! match no dataset are recorded once in `ingest_ignored` and logged once.
//!
//! With `s3_events_queue` set, the scanner also consumes S3 bucket notifications (MinIO's
//! AMQP target) and records each created object at once, through the same ledger: the
//! latest-version rule and its per-key lock make an event and a later poll (or two events)
//! record a version once. An event that cannot be handled is dropped with a warning; the
//! next poll catches its object.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use penstock_broker::{Meta, SharedQueue, WorkQueue};
use penstock_core::{FileItem, message::VERSION};
use penstock_db::PgPool;
use penstock_storage::{ObjectMeta, ObjectStore};
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::metrics::{Occurrence, S3Outcome};
use crate::outcome::{Disposition, RunError};
use crate::stage::{self, Stage};
use crate::watch::FolderWatch;

/// What a listing says about an object that could change its version: size, mtime, ETag,
/// and (local files) inode and ctime.
type Stamp = (u64, Option<SystemTime>, Option<String>, Option<String>);

/// The stamp an object's cached version is valid for: when any part of it moves, the object
/// is hashed (or HEAD-ed) again.
pub(crate) fn stamp(meta: &ObjectMeta) -> Stamp {
    (meta.size, meta.modified, meta.etag.clone(), meta.change.clone())
}

/// What the scanner remembers between passes.
#[derive(Default)]
struct ScanState {
    /// key → (size, modified) from the previous listing, for settling local files.
    last_seen: HashMap<String, (u64, Option<SystemTime>)>,
    /// key → stamp → version, so unchanged objects are not hashed again.
    versions: HashMap<String, (Stamp, String)>,
    /// key → its latest version in the ledger.
    latest: HashMap<String, String>,
    ignored: HashSet<String>,
}

pub async fn run(ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    let events = async {
        match ctx.config.s3_events_queue.clone() {
            Some(events_queue) => consume_events(ctx.clone(), queue.clone(), events_queue, shutdown.clone()).await,
            None => Ok(()),
        }
    };
    tokio::try_join!(poll(ctx.clone(), queue.clone(), shutdown.clone()), events).map(|_| ())
}

/// Consumes S3 bucket notifications until shutdown.
async fn consume_events(
    ctx: Arc<Context>,
    queue: SharedQueue,
    events_queue: String,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    queue.ensure_external_queue(&events_queue).await?;
    tracing::info!(queue = %events_queue, "consuming S3 event notifications");
    let settings = ctx.settings();
    let events = Arc::new(S3Events {
        ctx,
        queue: queue.clone(),
        events_queue,
    });
    stage::run(events, queue, settings, &shutdown).await?;
    Ok(())
}

/// The scanner's S3 event consumer as a stage. An event that cannot be handled is acked
/// anyway: the next poll finds its object, so nothing is lost by dropping it.
pub struct S3Events {
    pub ctx: Arc<Context>,
    pub queue: SharedQueue,
    pub events_queue: String,
}

#[async_trait::async_trait]
impl Stage for S3Events {
    type Item = Vec<penstock_core::s3_event::ObjectCreated>;

    fn queue(&self) -> &str {
        &self.events_queue
    }

    fn prefetch(&self) -> u16 {
        16
    }

    fn decode(&self, body: &[u8], _meta: &Meta, _redelivered: bool) -> Result<Self::Item, String> {
        penstock_core::s3_event::parse(body).inspect_err(|_| s3_event("", S3Outcome::Malformed, None))
    }

    async fn handle(&self, created: Self::Item) -> Disposition {
        let (ctx, queue) = (self.ctx.as_ref(), self.queue.as_ref());
        let penstock_config::StorageUrl::S3 { bucket, prefix } = &ctx.config.storage else {
            return Disposition::Ack;
        };
        let store_id = ctx.store.id();
        for object in created {
            let Some(key) = object
                .key
                .strip_prefix(prefix.as_str())
                .filter(|_| object.bucket == *bucket)
            else {
                s3_event(&object.key, S3Outcome::OutsideStore, None);
                continue;
            };
            let Some(spec) = ctx.config.dataset_for(key) else {
                s3_event(key, S3Outcome::NoDataset, None);
                if let Err(e) = penstock_db::record_ignored(ctx.home(), &store_id, key).await {
                    tracing::warn!(key, error = %e, "cannot record an ignored object");
                }
                continue;
            };
            let meta = ObjectMeta {
                key: key.to_string(),
                size: object.size,
                modified: None,
                etag: object.etag.clone(),
                change: None,
            };
            let outcome = crate::outcome::retrying(|| async {
                let version = ctx.store.version(&meta).await?;
                Ok(record_and_publish(ctx, queue, &store_id, &meta, &spec.name, &version).await?)
            })
            .await;
            match outcome {
                Ok(Some(file_id)) => s3_event(key, S3Outcome::Recorded { file_id }, None),
                Ok(None) => s3_event(key, S3Outcome::Known, None),
                // Polling will find the object; nothing is lost by dropping the event.
                Err(e) => s3_event(key, S3Outcome::Failed, Some(&format!("{e:?}"))),
            }
        }
        Disposition::Ack
    }
}

fn s3_event(key: &str, outcome: S3Outcome, error: Option<&str>) {
    Occurrence::S3Event { key, outcome, error }.record();
}

/// The latest known version of every key of the store, from every database.
async fn latest_versions(ctx: &Context, store_id: &str) -> Result<HashMap<String, String>, RunError> {
    let mut latest = HashMap::new();
    for pool in ctx.dbs.pools() {
        latest.extend(penstock_db::latest_versions(pool, store_id).await?);
    }
    Ok(latest)
}

/// Lists the store every scan interval until shutdown.
async fn poll(ctx: Arc<Context>, queue: SharedQueue, shutdown: CancellationToken) -> Result<(), RunError> {
    let store = ctx.store.clone();
    let store_id = store.id();
    let mut state = ScanState {
        latest: latest_versions(&ctx, &store_id).await?,
        ..ScanState::default()
    };
    let mut watch = match &ctx.config.storage {
        penstock_config::StorageUrl::Local(root) => match FolderWatch::start(root) {
            Ok(watch) => Some(watch),
            Err(e) => {
                tracing::warn!(store = %store_id, error = %e, "cannot watch the folder for changes; polling only");
                None
            }
        },
        penstock_config::StorageUrl::S3 { .. } => None,
    };
    tracing::info!(store = %store_id, interval = ?ctx.config.scan_interval, watching = watch.is_some(), "scanner started");
    let mut ticker = tokio::time::interval(ctx.config.scan_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // When a watched folder changed, or a listing found a file still settling: look again
    // this soon instead of a whole interval later.
    let mut recheck: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = ticker.tick() => {}
            _ = crate::watch::changed(&mut watch), if recheck.is_none() => {}
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(tokio::time::Instant::now)), if recheck.is_some() => {}
        }
        recheck = None;
        for pool in ctx.dbs.pools() {
            republish_unpublished(pool, queue.as_ref(), &store_id).await?;
        }
        match store.list().await {
            Ok(objects) => {
                let settling = scan_pass(
                    &ctx,
                    queue.as_ref(),
                    store.as_ref(),
                    &store_id,
                    &mut state,
                    objects,
                    &shutdown,
                )
                .await?;
                if settling && watch.is_some() {
                    recheck = Some(tokio::time::Instant::now() + SETTLE_RECHECK.min(ctx.config.scan_interval));
                }
            }
            Err(e) => {
                tracing::warn!(store = %store_id, error = %e, "listing the store failed; retrying next interval")
            }
        }
    }
}

/// How soon a watched folder is listed again while a file in it has not settled (at most a
/// scan interval): the second listing that agrees on size and modification time picks the
/// file up. A writer that pauses longer than this mid-file should write under a hidden name
/// and rename, as the README says for every writer.
const SETTLE_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

async fn scan_pass(
    ctx: &Context,
    queue: &dyn WorkQueue,
    store: &dyn ObjectStore,
    store_id: &str,
    state: &mut ScanState,
    objects: Vec<ObjectMeta>,
    shutdown: &CancellationToken,
) -> Result<bool, RunError> {
    let mut seen_now = HashMap::with_capacity(objects.len());
    let mut settling = false;
    for meta in objects {
        if shutdown.is_cancelled() {
            break;
        }
        let size_and_mtime = (meta.size, meta.modified);
        seen_now.insert(meta.key.clone(), size_and_mtime);
        let Some(spec) = ctx.config.dataset_for(&meta.key) else {
            if state.ignored.insert(meta.key.clone())
                && penstock_db::record_ignored(ctx.home(), store_id, &meta.key).await?
            {
                tracing::info!(key = %meta.key, "object matches no dataset's key prefix; ignoring it");
            }
            continue;
        };
        if store.needs_settling() && !settled(&meta, state.last_seen.get(&meta.key), ctx.config.scan_interval) {
            settling = true;
            continue; // changed recently: maybe still being written
        }
        let cache_key = stamp(&meta);
        let version = match state.versions.get(&meta.key) {
            Some((cached, version)) if *cached == cache_key => version.clone(),
            _ => match store.version(&meta).await {
                Ok(version) => {
                    state.versions.insert(meta.key.clone(), (cache_key, version.clone()));
                    version
                }
                Err(e) => {
                    tracing::warn!(key = %meta.key, error = %e, "cannot identify object version; retrying next interval");
                    continue;
                }
            },
        };
        if state.latest.get(&meta.key) == Some(&version) {
            continue;
        }
        record_and_publish(ctx, queue, store_id, &meta, &spec.name, &version).await?;
        state.latest.insert(meta.key.clone(), version);
    }
    state.last_seen = seen_now;
    Ok(settling)
}

/// A local file is settled when two consecutive listings agree on its size and modification
/// time, or, on first sight, when it has not been modified for a whole scan interval.
pub(crate) fn settled(
    meta: &ObjectMeta,
    previous: Option<&(u64, Option<SystemTime>)>,
    interval: std::time::Duration,
) -> bool {
    match previous {
        Some(previous) => *previous == (meta.size, meta.modified),
        None => meta
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age >= interval),
    }
}

/// Records an object version in the ledger (unless it is the latest of its key already) and
/// publishes its file item; returns the new file id.
pub(crate) async fn record_and_publish(
    ctx: &Context,
    queue: &dyn WorkQueue,
    store_id: &str,
    meta: &ObjectMeta,
    dataset: &str,
    version: &str,
) -> Result<Option<i64>, RunError> {
    let Some(id) = penstock_db::discover(
        ctx.dbs.for_dataset(dataset),
        store_id,
        &meta.key,
        version,
        dataset,
        meta.size,
    )
    .await?
    else {
        return Ok(None);
    };
    Occurrence::FileDiscovered {
        file_id: id,
        key: &meta.key,
        version,
        dataset,
    }
    .record();
    let item = FileItem {
        v: VERSION,
        file_id: id,
        dataset: dataset.to_string(),
        key: meta.key.clone(),
        version: version.to_string(),
        size: meta.size,
    };
    publish_item(ctx.file_db(id), queue, &item).await?;
    Ok(Some(id))
}

/// Publishes the file item of a recorded file version and marks it published.
pub async fn publish_file(
    pool: &PgPool,
    queue: &dyn WorkQueue,
    file: &penstock_db::FileStatus,
) -> Result<(), RunError> {
    let item = FileItem {
        v: VERSION,
        file_id: file.id,
        dataset: file.dataset.clone(),
        key: file.key.clone(),
        version: file.version.clone(),
        size: file.size_bytes as u64,
    };
    publish_item(pool, queue, &item).await
}

/// Publishes a file item (confirmed) and only then marks its version published.
pub(crate) async fn publish_item(pool: &PgPool, queue: &dyn WorkQueue, item: &FileItem) -> Result<(), RunError> {
    queue
        .publish_json(&queue.queues().files, item, &item.message_id())
        .await?;
    penstock_db::mark_published(pool, item.file_id).await?;
    Ok(())
}

async fn republish_unpublished(pool: &PgPool, queue: &dyn WorkQueue, store_id: &str) -> Result<(), RunError> {
    for file in penstock_db::unpublished(pool, store_id).await? {
        publish_file(pool, queue, &file).await?;
        tracing::info!(file_id = file.id, key = %file.key, "published a file item left unpublished");
    }
    Ok(())
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod stage_tests;
