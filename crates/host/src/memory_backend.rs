//! The memory target's backing store as the host sees it: opened once per host, shared by every
//! session of the memory target and by the manager API's `/memory/dbs` routes, closed at
//! shutdown.

use msm_core::StateDir;
use rmcp::ServerHandler;
use rmcp::model::{ServerCapabilities, ServerConfig};

/// Errors of the `/memory/dbs` routes.
#[derive(Debug, thiserror::Error)]
pub enum MemoryApiError {
    #[error("unknown memory DB `{0}`")]
    UnknownDb(String),
    #[error("{0}")]
    NotAvailable(String),
    #[error("{0}")]
    Store(String),
}

/// The memory store of this host (cheap to clone).
#[derive(Clone, Default)]
pub struct MemoryBackend {}

impl MemoryBackend {
    pub fn open(_state_dir: &StateDir) -> MemoryBackend {
        MemoryBackend {}
    }

    /// Closes every open DB (at shutdown).
    pub fn close(&self) {}

    /// Every memory DB this host has ever opened.
    pub fn list_dbs(&self) -> Result<Vec<serde_json::Value>, MemoryApiError> {
        Err(MemoryApiError::NotAvailable(
            "the memory store is not available in this build yet".into(),
        ))
    }

    /// One page of a DB's graph, filtered by `query`.
    pub fn graph_page(
        &self,
        id: &str,
        _query: &str,
        _offset: usize,
        _limit: usize,
    ) -> Result<serde_json::Value, MemoryApiError> {
        Err(MemoryApiError::UnknownDb(id.to_owned()))
    }
}

/// Makes one memory MCP handler per session (and per stateless request).
pub(crate) fn memory_handler_factory(
    _backend: MemoryBackend,
) -> impl Fn() -> PlaceholderMemory + Send + Sync + 'static {
    || PlaceholderMemory
}

/// Stands in for the memory MCP handler until it lands: answers the protocol, has no tools.
#[derive(Clone)]
pub(crate) struct PlaceholderMemory;

impl ServerHandler for PlaceholderMemory {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}
