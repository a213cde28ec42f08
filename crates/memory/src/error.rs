//! The one error type of the memory store.

use std::path::PathBuf;

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
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}
