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

    /// Resolves when something in the folder changed since the last call.
    pub async fn changed(&mut self) {
        if self.wake.recv().await.is_none() {
            // The watcher's thread is gone: never wake again (polling goes on).
            std::future::pending::<()>().await;
        }
    }
}
