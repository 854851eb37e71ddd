//! Computed responses (aggregates) kept for a TTL and dropped at once when the data changes:
//! the database consumer sends `NOTIFY penstock_data` in every chunk transaction that changed
//! rows (and the one that finishes a file), and every API process reading from the primary
//! listens for it. NOTIFY does not reach a hot standby, so an API reading from one
//! (`api_database_url`) watches the standby's replay position instead: every transaction the
//! standby applies moves it, so a change is heard within [`REPLAY_POLL`] of becoming
//! readable there, never before (dropping the cache when the primary commits would let a
//! reader cache the standby's older rows again).

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use penstock_db::{DataChanges, PgPool, ReplicaStatus};
use tokio_util::sync::CancellationToken;

/// At most this many responses are kept; beyond it moka evicts the least useful ones.
const MAX_ENTRIES: u64 = 10_000;

pub struct Cache {
    /// Each response with the generation it was computed under; only the current
    /// generation's are served. moka's `invalidate_all` hides entries by their insert time
    /// (older than the call), which cannot tell an insert in the same clock tick apart.
    entries: moka::sync::Cache<String, (u64, Bytes)>,
    /// Bumped by every invalidation; a value computed under an older generation is not kept.
    generation: AtomicU64,
    /// Whether invalidations can be heard; nothing is kept while they cannot.
    listening: AtomicBool,
    /// Held shared by `put` from its generation check to its insert and exclusively by
    /// `invalidate`, so no stale value is inserted after an invalidation.
    invalidation: RwLock<()>,
}

impl Cache {
    pub fn new(ttl: Duration) -> Cache {
        Cache {
            entries: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .build(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            invalidation: RwLock::new(()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.entries
            .get(key)
            .filter(|(generation, _)| *generation == self.generation())
            .map(|(_, body)| body)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps `body` unless the cache was invalidated since `generation` was read.
    pub fn put(&self, key: String, body: Bytes, generation: u64) {
        let _no_invalidation = self.invalidation.read().expect("cache lock");
        if self.generation() != generation || !self.listening.load(Ordering::Acquire) {
            return;
        }
        self.entries.insert(key, (generation, body));
    }

    /// Whether invalidations can be heard (so a kept value is dropped when the data changes).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    pub fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        self.invalidate();
    }

    pub fn invalidate(&self) {
        let _no_put = self.invalidation.write().expect("cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        // The generation already hides every kept value; this frees them.
        self.entries.invalidate_all();
    }
}

/// How often an API reading from a standby looks at its replay position.
pub const REPLAY_POLL: Duration = Duration::from_millis(250);

/// Why watching the data stopped.
enum Stopped {
    Shutdown,
    /// The connection dropped or the server changed role (a standby promoted): changes may
    /// have been missed, so nothing is cached until watching starts again.
    Lost,
}

/// Drops the cache whenever the data changes, until shutdown: by LISTEN on a primary, by the
/// replay position on a standby (see the module docs). While changes cannot be heard nothing
/// is cached, and when they can again the cache is dropped.
pub async fn watch(pool: PgPool, cache: std::sync::Arc<Cache>, shutdown: CancellationToken) {
    let mut delay = Duration::from_millis(200);
    loop {
        // Raced with shutdown throughout: a server that stops answering must not hold it up.
        let watched = async {
            match penstock_db::replica_status(&pool).await? {
                Some(standby) => follow_replay(&pool, &cache, standby, &shutdown).await,
                None => hear_notifications(DataChanges::listen(&pool).await?, &cache, &shutdown).await,
            }
        };
        let stopped = tokio::select! {
            _ = shutdown.cancelled() => return,
            stopped = watched => stopped,
        };
        match stopped {
            Ok(Stopped::Shutdown) => return,
            Ok(Stopped::Lost) => delay = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch for data changes; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn hear_notifications(
    mut changes: DataChanges,
    cache: &Cache,
    shutdown: &CancellationToken,
) -> Result<Stopped, penstock_db::DbError> {
    cache.set_listening(true);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Stopped::Shutdown),
            n = changes.next() => match n {
                Ok(Some(dataset)) => {
                    tracing::debug!(dataset, "data changed; dropping cached aggregates");
                    cache.invalidate();
                }
                Ok(None) | Err(_) => {
                    cache.set_listening(false);
                    return Ok(Stopped::Lost);
                }
            },
        }
    }
}

/// `first` was read before caching starts, so a change replayed after it is heard: a
/// value computed before that change cannot outlive the next poll.
async fn follow_replay(
    pool: &PgPool,
    cache: &Cache,
    first: ReplicaStatus,
    shutdown: &CancellationToken,
) -> Result<Stopped, penstock_db::DbError> {
    tracing::info!("the API reads from a hot standby; watching its replay position for data changes");
    let lag = ::metrics::gauge!(crate::metrics::REPLICA_LAG);
    // Unknown (not streaming, nothing replayed) shows as NaN rather than a stale value.
    let caught_up = crate::health::CaughtUp::default();
    let shown = |status: &ReplicaStatus| caught_up.lag(status).unwrap_or(f64::NAN);
    lag.set(shown(&first));
    let mut replayed = first.replay_lsn;
    cache.set_listening(true);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(Stopped::Shutdown),
            _ = tokio::time::sleep(REPLAY_POLL) => {}
        }
        match penstock_db::replica_status(pool).await {
            Ok(Some(status)) => {
                lag.set(shown(&status));
                if status.replay_lsn != replayed {
                    cache.invalidate();
                    replayed = status.replay_lsn;
                }
            }
            Ok(None) => {
                tracing::warn!("the standby the API reads from was promoted; listening for changes instead");
                lag.set(0.0);
                cache.set_listening(false);
                return Ok(Stopped::Lost);
            }
            Err(e) => {
                lag.set(f64::NAN);
                cache.set_listening(false);
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(ttl: Duration) -> Cache {
        let cache = Cache::new(ttl);
        cache.set_listening(true);
        cache
    }

    #[test]
    fn nothing_is_kept_while_invalidations_cannot_be_heard() {
        let cache = Cache::new(Duration::from_secs(60));
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        assert_eq!(cache.get("k"), None);
    }

    #[test]
    fn a_value_is_served_until_its_ttl_passes() {
        let cache = listening(Duration::from_millis(50));
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        assert_eq!(cache.get("k").as_deref(), Some(&b"v"[..]));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("k"), None);
    }

    #[test]
    fn invalidation_drops_everything() {
        let cache = listening(Duration::from_secs(60));
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        cache.invalidate();
        assert_eq!(cache.get("k"), None);
    }

    #[test]
    fn a_value_computed_before_an_invalidation_is_not_kept() {
        let cache = listening(Duration::from_secs(60));
        let generation = cache.generation();
        cache.invalidate();
        cache.put("k".into(), Bytes::from_static(b"stale"), generation);
        assert_eq!(cache.get("k"), None);
        cache.entries.run_pending_tasks();
        assert_eq!(cache.entries.entry_count(), 0, "the stale value is not stored");
    }

    #[test]
    fn a_value_computed_after_an_invalidation_is_kept() {
        let cache = listening(Duration::from_secs(60));
        cache.put("k".into(), Bytes::from_static(b"old"), cache.generation());
        cache.invalidate();
        cache.put("k".into(), Bytes::from_static(b"new"), cache.generation());
        assert_eq!(cache.get("k").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn losing_the_notifications_drops_everything_and_keeps_nothing_until_they_are_heard_again() {
        let cache = listening(Duration::from_secs(60));
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        cache.set_listening(false);
        assert_eq!(cache.get("k"), None);
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        assert_eq!(cache.get("k"), None);
        cache.set_listening(true);
        cache.put("k".into(), Bytes::from_static(b"v"), cache.generation());
        assert_eq!(cache.get("k").as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn at_most_ten_thousand_responses_are_kept() {
        let cache = listening(Duration::from_secs(60));
        for i in 0..MAX_ENTRIES + 500 {
            cache.put(format!("k{i}"), Bytes::from_static(b"v"), cache.generation());
        }
        cache.entries.run_pending_tasks();
        assert!(
            cache.entries.entry_count() <= MAX_ENTRIES,
            "{}",
            cache.entries.entry_count()
        );
    }
}
