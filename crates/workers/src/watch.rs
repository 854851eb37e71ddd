//! Filesystem notifications for a local-folder store, so the scanner looks at once when
//! something lands instead of waiting for its next interval. Notifications only wake the
//! scanner: what is new is still decided by a listing, with the same "stopped changing" rule
//! (two listings agree on size and modification time), and the periodic listing stays as the
//! safety net for anything a notification misses (a full inotify queue, a network mount).

use std::path::Path;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// A running watcher over a folder and everything below it.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
    wake: mpsc::Receiver<()>,
}

impl FolderWatch {
    /// Starts watching `root`, or says why it cannot (the scanner then only polls).
    pub fn start(root: &Path) -> notify::Result<FolderWatch> {
        // One pending wake-up is enough: a scan sees everything that happened before it.
        let (tx, wake) = mpsc::channel(1);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            // Reads (the chunker and the loaders read the files) change nothing.
            if event.is_ok_and(|e| !matches!(e.kind, EventKind::Access(_))) {
                let _ = tx.try_send(());
            }
        })?;
        watcher.watch(root, RecursiveMode::Recursive)?;
        Ok(FolderWatch {
            _watcher: watcher,
            wake,
        })
    }
}

/// Resolves when something in the watched folder changed since the last call; never, when
/// nothing is watched or the watcher's thread is gone (polling goes on).
pub async fn changed(watch: &mut Option<FolderWatch>) {
    let woke = match watch {
        Some(w) => w.wake.recv().await.is_some(),
        None => false,
    };
    if !woke {
        std::future::pending::<()>().await;
    }
}
