//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses its threshold: that one write copies the WAL into the DB and `fsync`s it, tens
//! of milliseconds on a slow disk, the whole p99 of a write. Here the writer connection never
//! checkpoints; every few commits it wakes a thread that runs a PASSIVE checkpoint (which
//! waits for nobody) on a connection of its own.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// Commits between two checkpoints (a one-entity write adds about 15 pages to the WAL).
pub(crate) const COMMITS_PER_CHECKPOINT: u64 = 64;

pub(crate) struct Checkpointer {
    wake: SyncSender<()>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the thread for the DB at `path`; `None` (and SQLite's automatic checkpoints
    /// stay on) when no thread can be started.
    pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let path: PathBuf = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("memory-checkpoint".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                while woken.recv().is_ok() {
                    if conn.is_none() {
                        conn = Connection::open(&path)
                            .and_then(|c| c.busy_timeout(crate::store::BUSY_TIMEOUT).map(|()| c))
                            .map_err(|err| tracing::warn!(db = %path.display(), %err, "no checkpoint connection"))
                            .ok();
                    }
                    if let Some(c) = &conn
                        && let Err(err) = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(db = %path.display(), %err, "checkpoint failed");
                    }
                }
            })
            .map_err(|err| tracing::warn!(%err, "cannot start the checkpoint thread"))
            .ok()?;
        Some(Checkpointer { wake, thread })
    }

    /// Asks for a checkpoint; one already asked for and not started yet covers this one.
    pub(crate) fn wake(&self) {
        match self.wake.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
        }
    }

    /// Ends the thread and closes its connection (before the DB's path may be opened again).
    pub(crate) fn stop(self) {
        drop(self.wake);
        let _ = self.thread.join();
    }
}
