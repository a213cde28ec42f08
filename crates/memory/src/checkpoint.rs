//! WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit
//! that crosses its threshold: that one write copies the WAL into the DB and `fsync`s it, tens
//! of milliseconds on a slow disk, the whole p99 of a write. Here the writer connection never
//! checkpoints; once the WAL has grown past SQLite's own threshold it wakes a thread that runs
//! a PASSIVE checkpoint (which waits for nobody) on a connection of its own.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::Connection;

/// The WAL frames after a commit that ask for a checkpoint: SQLite's own default.
const CHECKPOINT_FRAMES: i32 = 1000;

/// What the writer's hook and the store ask of the thread.
enum Ask {
    Checkpoint,
    Stop,
}

pub(crate) struct Checkpointer {
    wake: SyncSender<Ask>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the thread for the DB at `path`; `None` (and SQLite's automatic checkpoints
    /// stay on) when no thread can be started.
    pub(crate) fn start(path: &Path) -> Option<Checkpointer> {
        let (wake, woken) = mpsc::sync_channel::<Ask>(1);
        let path: PathBuf = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("memory-checkpoint".into())
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                while let Ok(Ask::Checkpoint) = woken.recv() {
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

    /// Takes over the writer's checkpoints: SQLite calls this hook after every commit with
    /// the WAL's frame count (its automatic checkpoint is this same hook, now replaced).
    pub(crate) fn attach(&self, writer: &mut Connection) -> rusqlite::Result<()> {
        let wake = self.wake.clone();
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
            if frames >= CHECKPOINT_FRAMES {
                // Full: a checkpoint is already asked for. Disconnected: the store is closing.
                match wake.try_send(Ask::Checkpoint) {
                    Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
                }
            }
            Ok(())
        }))
    }

    /// Ends the thread and closes its connection (before the DB's path may be opened again).
    /// The writer's hook still holds a sender, so the thread is told, not left to notice.
    pub(crate) fn stop(self) {
        let _ = self.wake.send(Ask::Stop);
        let _ = self.thread.join();
    }
}
