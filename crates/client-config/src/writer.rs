//! Replacing a user's file safely: a backup first, then a temp file in the same directory,
//! fsynced and renamed over the old one (keeping its permissions), then the directory fsynced.
//! Just before the rename the file is read again: if someone else (Claude Code writes
//! `~/.claude.json` all the time) changed it since we read it, nothing is replaced and the
//! caller merges again from the new content. No file lock exists that Claude Code would honour,
//! so the window left is the few microseconds between that check and the rename.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::ConfigWriteError;

/// How many `FILE.bak.<timestamp>` files are kept per file.
pub const BACKUPS_KEPT: usize = 5;

/// A test hook: when set to a path, the writer creates that file just before the rename and
/// waits (up to a minute) until it is deleted, so that a test can change the file under us or
/// kill us at the rename boundary.
pub const PAUSE_BEFORE_RENAME_ENV: &str = "MSM_TEST_PAUSE_BEFORE_RENAME";

/// The file as we read it: its bytes and what identifies this version of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub bytes: Vec<u8>,
    modified: Option<SystemTime>,
    #[cfg_attr(not(unix), allow(dead_code))]
    mode: u32,
    readonly: bool,
}

/// Reads `path`; `None` when it does not exist.
pub(crate) fn read_snapshot(path: &Path) -> Result<Option<Snapshot>, ConfigWriteError> {
    let io_error = |source| ConfigWriteError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        // A file where a parent directory should be: no config yet; creating it will say why.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(io_error(e)),
    };
    if !metadata.is_file() {
        return Err(io_error(io::Error::other("not a regular file")));
    }
    let bytes = fs::read(path).map_err(io_error)?;
    Ok(Some(Snapshot {
        bytes,
        modified: metadata.modified().ok(),
        mode: permissions_mode(&metadata),
        readonly: metadata.permissions().readonly(),
    }))
}

#[cfg(unix)]
fn permissions_mode(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o7777
}
#[cfg(not(unix))]
fn permissions_mode(_: &fs::Metadata) -> u32 {
    0
}

/// Whether the file on disk is still the version we read (same length, mtime and bytes).
fn unchanged_since(path: &Path, snapshot: Option<&Snapshot>) -> Result<bool, ConfigWriteError> {
    let now = read_snapshot(path)?;
    Ok(match (snapshot, now) {
        (None, None) => true,
        (Some(before), Some(now)) => before.modified == now.modified && before.bytes == now.bytes,
        _ => false,
    })
}

/// What `commit` did.
#[derive(Debug)]
pub(crate) enum Commit {
    Written {
        backup: Option<PathBuf>,
    },
    /// The file changed since `snapshot`: nothing was replaced; merge again.
    ChangedUnderUs,
}

/// Replaces `path` (read as `snapshot`) with `contents`.
pub(crate) fn commit(
    path: &Path,
    snapshot: Option<&Snapshot>,
    contents: &[u8],
    new_file_mode: u32,
    before_rename: &mut dyn FnMut(&Path),
) -> Result<Commit, ConfigWriteError> {
    if snapshot.is_some_and(|s| s.readonly) {
        return Err(ConfigWriteError::ReadOnly {
            path: path.to_owned(),
        });
    }
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fs::create_dir_all(dir).map_err(|source| ConfigWriteError::Io {
        action: "create the directory",
        path: dir.to_owned(),
        source,
    })?;
    let in_dir = |action: &'static str| {
        move |source| ConfigWriteError::Io {
            action,
            path: dir.to_owned(),
            source,
        }
    };
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(&file_name))
        .tempfile_in(dir)
        .map_err(in_dir("create a temporary file in"))?;
    let mode = snapshot.map_or(new_file_mode, |s| s.mode);
    set_mode(temp.as_file(), mode).map_err(in_dir("set permissions on a temporary file in"))?;
    temp.write_all(contents)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(in_dir("write a temporary file in"))?;

    let backup = match snapshot {
        Some(snapshot) => Some(write_backup(path, &file_name, snapshot)?),
        None => None,
    };

    before_rename(path);

    if !unchanged_since(path, snapshot)? {
        if let Some(backup) = &backup {
            let _ = fs::remove_file(backup);
        }
        return Ok(Commit::ChangedUnderUs);
    }
    temp.persist(path).map_err(|e| ConfigWriteError::Io {
        action: "replace",
        path: path.to_owned(),
        source: e.error,
    })?;
    sync_dir(dir);
    prune_backups(dir, &file_name);
    Ok(Commit::Written { backup })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `FILE.bak.<UTC timestamp to the millisecond>`, holding exactly the bytes we merged from.
fn write_backup(
    path: &Path,
    file_name: &str,
    snapshot: &Snapshot,
) -> Result<PathBuf, ConfigWriteError> {
    let dir = parent_dir(path);
    let format = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]Z"
    );
    #[expect(
        clippy::expect_used,
        reason = "a UTC time always formats with a fixed description"
    )]
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("a UTC timestamp formats");
    for attempt in 0..100 {
        let name = match attempt {
            0 => format!("{file_name}.bak.{stamp}"),
            n => format!("{file_name}.bak.{stamp}-{n}"),
        };
        let backup = dir.join(name);
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(snapshot.mode & 0o777);
        }
        let io_error = |source| ConfigWriteError::Io {
            action: "write the backup",
            path: backup.clone(),
            source,
        };
        match options.open(&backup) {
            Ok(mut file) => {
                file.write_all(&snapshot.bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(io_error)?;
                return Ok(backup);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(e)),
        }
    }
    Err(ConfigWriteError::Io {
        action: "write the backup beside",
        path: path.to_owned(),
        source: io::Error::other("too many backups with the same timestamp"),
    })
}

/// Keeps the newest `BACKUPS_KEPT` backups of `file_name` (names sort by time).
fn prune_backups(dir: &Path, file_name: &str) {
    let prefix = format!("{file_name}.bak.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut backups: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    backups.sort();
    let excess = backups.len().saturating_sub(BACKUPS_KEPT);
    for old in &backups[..excess] {
        if let Err(e) = fs::remove_file(old) {
            tracing::warn!("cannot remove old backup {}: {e}", old.display());
        }
    }
}

/// Our temp files are hidden and named after the file: `.mcp.json.msm-tmp-XXXXXX`.
fn temp_prefix(file_name: &str) -> String {
    if file_name.starts_with('.') {
        format!("{file_name}.msm-tmp-")
    } else {
        format!(".{file_name}.msm-tmp-")
    }
}

/// The temp files of a writer killed mid-write, left for an hour in case one is still running.
pub(crate) fn remove_stale_temp_files(path: &Path) {
    let dir = parent_dir(path);
    let Some(file_name) = path.file_name() else {
        return;
    };
    let prefix = temp_prefix(&file_name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let stale = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if stale && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}
#[cfg(not(unix))]
fn set_mode(_: &File, _: u32) -> io::Result<()> {
    Ok(())
}

/// Makes the rename durable. Best effort: some filesystems refuse to fsync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::debug!("fsync of {} failed: {e}", dir.display());
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// The production hook: pauses when `MSM_TEST_PAUSE_BEFORE_RENAME` names a marker file.
pub(crate) fn pause_if_asked(_path: &Path) {
    let Some(marker) = std::env::var_os(PAUSE_BEFORE_RENAME_ENV).filter(|v| !v.is_empty()) else {
        return;
    };
    let marker = PathBuf::from(marker);
    if fs::write(&marker, std::process::id().to_string()).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while marker.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
