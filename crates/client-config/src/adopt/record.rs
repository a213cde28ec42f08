//! The adoption record (`adoptions.json` in the state dir, mode 0600): each adopted entry's
//! original text and the blocks added to config.toml and secrets.toml, so that undo is exact.
//! It holds env values in clear (the originals), hence the mode.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::discover::Source;
use crate::writer;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Record {
    pub version: u32,
    pub entries: Vec<RecordEntry>,
    pub targets: Vec<RecordTarget>,
    /// secrets.toml did not exist before the first adoption: undo removes it when empty.
    pub secrets_created: bool,
    /// config.toml did not exist before: undo removes it when it is back to the default.
    pub config_created: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RecordEntry {
    pub server: String,
    pub file: PathBuf,
    pub scope: Source,
    pub key_path: Vec<String>,
    pub target: String,
    /// The entry's value, byte for byte, before adoption.
    pub original: String,
    pub adopted_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct RecordTarget {
    pub name: String,
    /// Exactly what was appended to config.toml.
    pub config_block: String,
    /// Exactly what was appended to secrets.toml, if anything.
    pub secrets_block: Option<String>,
}

#[derive(Debug)]
pub(super) struct RecordError {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl Record {
    pub fn load(path: &Path) -> Result<Record, RecordError> {
        let error = |reason: String| RecordError {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| error(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Record {
                version: 1,
                ..Record::default()
            }),
            Err(e) => Err(error(e.to_string())),
        }
    }

    /// Writes the record atomically, mode 0600; an empty record removes the file.
    pub fn save(&self, path: &Path) -> Result<(), RecordError> {
        let error = |reason: String| RecordError {
            path: path.to_owned(),
            reason,
        };
        if self.entries.is_empty() && self.targets.is_empty() {
            return match std::fs::remove_file(path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(error(e.to_string())),
            };
        }
        let mut json = serde_json::to_string_pretty(self).map_err(|e| error(e.to_string()))?;
        json.push('\n');
        let snapshot = writer::read_snapshot(path).map_err(|e| error(e.to_string()))?;
        match writer::commit(path, snapshot.as_ref(), json.as_bytes(), 0o600, &mut |_| {})
            .map_err(|e| error(e.to_string()))?
        {
            writer::Commit::Written { .. } => Ok(()),
            writer::Commit::ChangedUnderUs => {
                Err(error("changed by another program while we wrote it".into()))
            }
        }
    }

    /// The recorded adoption of entry `name` at `key_path` of `file`.
    pub fn entry(&self, file: &Path, key_path: &[String], name: &str) -> Option<&RecordEntry> {
        self.entries
            .iter()
            .find(|e| e.file == file && e.key_path == key_path && e.server == name)
    }
}
