//! `NAME.lock`: which process serves a target (or the manager), on which port.
//!
//! The file holds JSON for readers and an exclusive OS lock (`File::try_lock`) for as long as its owner
//! lives, so a lock left by a killed process is recognised as stale even if its pid was reused.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a lock file says about its owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    pub port: u16,
    pub transport: String,
    /// RFC 3339.
    pub started_at: String,
    pub version: String,
}

impl LockInfo {
    /// Describes this process serving `port`.
    pub fn for_this_process(port: u16, transport: &str) -> Self {
        let now = time::OffsetDateTime::now_utc();
        Self {
            pid: std::process::id(),
            port,
            transport: transport.to_owned(),
            started_at: now
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            version: crate::VERSION.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is held by a live process (pid {}, port {})", path.display(), owner.pid, owner.port)]
    Held { path: PathBuf, owner: LockInfo },
    #[error("{} is held by a live process", path.display())]
    HeldUnreadable { path: PathBuf },
    #[error("lock file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held lock; dropping it removes the file (a clean stop).
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    file: Option<File>,
    info: LockInfo,
}

impl LockFile {
    /// Takes the lock at `path`, replacing a stale file; fails if a live process holds it.
    pub fn acquire(path: &Path, info: LockInfo) -> Result<LockFile, LockError> {
        let io_err = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io_err)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err)?;
        if let Err(e) = file.try_lock() {
            if let TryLockError::Error(source) = e {
                return Err(io_err(source));
            }
            return Err(match read_info(&mut file) {
                Some(owner) => LockError::Held {
                    path: path.to_owned(),
                    owner,
                },
                None => LockError::HeldUnreadable {
                    path: path.to_owned(),
                },
            });
        }
        if let Some(stale) = read_info(&mut file) {
            tracing::info!(path = %path.display(), pid = stale.pid, "replacing a stale lock file");
        }
        #[expect(
            clippy::expect_used,
            reason = "plain strings and numbers always serialise"
        )]
        let json = serde_json::to_vec_pretty(&info).expect("LockInfo serialises");
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(&json).map_err(io_err)?;
        file.sync_data().map_err(io_err)?;
        Ok(LockFile {
            path: path.to_owned(),
            file: Some(file),
            info,
        })
    }

    /// The owner of the lock at `path`, if a live process holds it. Stale or missing: `None`.
    pub fn read_live(path: &Path) -> Option<LockInfo> {
        let mut file = File::open(path).ok()?;
        let info = read_info(&mut file)?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(TryLockError::WouldBlock) => Some(info),
            // No advisory locks here (some network file systems): trust the pid.
            Err(TryLockError::Error(_)) => pid_alive(info.pid).then_some(info),
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        // Remove while still holding the lock, so nobody sees a live-but-empty file.
        let _ = std::fs::remove_file(&self.path);
        if let Some(file) = self.file.take() {
            let _ = file.unlock();
        }
    }
}

fn read_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether a process with this pid exists (signal 0).
pub fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        use nix::sys::signal::kill;
        use nix::unistd::Pid;
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        !matches!(
            kill(Pid::from_raw(raw), None),
            Err(nix::errno::Errno::ESRCH)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_read_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.lock");
        let lock =
            LockFile::acquire(&path, LockInfo::for_this_process(3100, "streamable-http")).unwrap();
        let live = LockFile::read_live(&path).expect("held lock is live");
        assert_eq!(live.port, 3100);
        assert_eq!(live.pid, std::process::id());
        // A second acquirer (another open file description) is refused with the owner's info.
        match LockFile::acquire(&path, LockInfo::for_this_process(1, "x")) {
            Err(LockError::Held { owner, .. }) => assert_eq!(owner.port, 3100),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(lock);
        assert!(!path.exists(), "clean stop removes the file");
        assert!(LockFile::read_live(&path).is_none());
    }

    #[test]
    fn stale_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("memory.lock");
        let stale = LockInfo {
            pid: 999_999_999,
            ..LockInfo::for_this_process(3100, "streamable-http")
        };
        std::fs::write(&path, serde_json::to_vec(&stale).unwrap()).unwrap();
        assert!(
            LockFile::read_live(&path).is_none(),
            "unlocked file is stale"
        );
        let lock = LockFile::acquire(&path, LockInfo::for_this_process(3105, "sse")).unwrap();
        assert_eq!(LockFile::read_live(&path).unwrap().port, 3105);
        assert_eq!(lock.info().transport, "sse");
    }

    #[test]
    fn garbage_file_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, b"{half").unwrap();
        assert!(LockFile::read_live(&path).is_none());
        assert!(LockFile::acquire(&path, LockInfo::for_this_process(1, "x")).is_ok());
    }
}
