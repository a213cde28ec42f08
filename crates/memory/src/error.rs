//! The one error type of the memory store.

use std::path::PathBuf;

use crate::Displacement;

/// Why a store operation failed. `EntityNotFound`'s text is the reference server's own message,
/// which MCP clients see verbatim.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `add_observations` on an entity that does not exist (the reference's wording).
    #[error("Entity with name {0} not found")]
    EntityNotFound(String),
    /// The file is a SQLite DB of some other program (or not a DB at all): it is left untouched.
    #[error(
        "{path} is not a memory DB this version knows ({detail}); it was left untouched: move it away or point the project elsewhere"
    )]
    UnknownSchema { path: PathBuf, detail: String },
    /// The file was written by a newer version of MCP Session Manager.
    #[error(
        "{path} has memory schema version {found}, newer than this build's {supported}: upgrade MCP Session Manager"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// `graph_page` or similar with an id that names no known DB.
    #[error("unknown memory DB `{0}`")]
    UnknownDb(String),
    /// The store's file no longer has its name (deleted, moved, replaced), or the store was
    /// closed for that reason: nothing was acknowledged into it. [`crate::StoreRegistry`]
    /// reopens the path and runs the operation again.
    #[error("memory DB {path} was {} while in use", how.as_str())]
    Displaced { path: PathBuf, how: Displacement },
    /// The store was closed (after a displacement, or at shutdown) while a caller still held
    /// it; the registry runs the operation again on the store open now.
    #[error("memory DB {path} is closed")]
    Closed { path: PathBuf },
    /// SQLite failed on one DB file: the message names the file and the cause in words.
    #[error("memory DB {path}: {}", describe(source))]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// This error with the DB file it happened on named (a bare SQLite error says "database or
    /// disk is full" but not which file or disk).
    pub(crate) fn on_db(self, path: &std::path::Path) -> StoreError {
        match self {
            StoreError::Sqlite(source) => StoreError::Database {
                path: path.to_owned(),
                source,
            },
            other => other,
        }
    }
}

/// SQLite's failure in the words a user acts on; SQLite's own text follows in parentheses.
fn describe(error: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    let Some(code) = error.sqlite_error_code() else {
        return error.to_string();
    };
    let cause = match code {
        ErrorCode::DiskFull => "the disk is full; nothing of this call was written",
        ErrorCode::ReadOnly => "the file or its directory is read-only; nothing was written",
        ErrorCode::CannotOpen => "the file cannot be opened",
        ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => "the file is damaged",
        ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
            "another program holds the DB locked; try again"
        }
        ErrorCode::SystemIoFailure => "the disk reported an I/O error",
        ErrorCode::PermissionDenied => "permission denied",
        _ => return format!("SQLite: {error}"),
    };
    format!("{cause} (SQLite: {error})")
}
