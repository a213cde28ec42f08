//! Which file a path names, compared with one `stat` (no open: see the invariant in
//! ARCHITECTURE.md that only SQLite opens a DB file).
//!
//! An open SQLite connection keeps writing to the file it opened even when that file lost its
//! name: `rm -rf .claude`, `git clean -fdx`, a renamed project dir, a DB copied over ours. The
//! store compares the identity it opened with the path's before each transaction and after
//! each commit, so that nothing is acknowledged into a file nobody can find again.

use std::io;
use std::path::Path;

/// The identity of one file: device and inode on Unix. On Windows the stable std API has no
/// file index, so the creation time stands in for it; Windows also refuses to delete or
/// rename a file SQLite holds open, which rules out most of these faults there to begin with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileIdentity {
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(windows)]
    created: u64,
}

impl FileIdentity {
    /// The identity of the file `path` names now.
    pub(crate) fn of(path: &Path) -> io::Result<FileIdentity> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Ok(FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::MetadataExt;
            Ok(FileIdentity {
                created: meta.creation_time(),
            })
        }
    }
}

/// How the file a store opened lost its place at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Displacement {
    /// Nothing is at the path any more (the file or a directory above it was deleted or
    /// renamed), or the path cannot be looked at.
    Gone,
    /// Another file is at the path (copied or moved over it).
    Replaced,
}

impl Displacement {
    /// A word for logs and the host's event (`deleted`, `replaced`).
    pub fn as_str(self) -> &'static str {
        match self {
            Displacement::Gone => "deleted",
            Displacement::Replaced => "replaced",
        }
    }
}

/// Whether `path` still names the file whose identity is `opened`.
pub(crate) fn check(path: &Path, opened: FileIdentity) -> Result<(), Displacement> {
    match FileIdentity::of(path) {
        Ok(now) if now == opened => Ok(()),
        Ok(_) => Err(Displacement::Replaced),
        Err(_) => Err(Displacement::Gone),
    }
}
