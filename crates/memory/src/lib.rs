//! The knowledge-graph memory store: one SQLite DB per project, with the exact semantics of the
//! reference `@modelcontextprotocol/server-memory` (entities, observations, relations; literal,
//! Unicode case-insensitive substring search), fast at scale through an FTS5 trigram prefilter.
//!
//! - [`MemoryStore`]: one DB file (WAL, schema versions, migration from the seed's Node schema).
//! - [`StoreRegistry`]: project path → DB path, one open store per DB, the list of known DBs.
//! - [`import_jsonl`]: loads a reference server's `memory.jsonl`, idempotently.
//!
//! The store knows nothing of HTTP or JSON-RPC: its types are plain Rust, and the MCP layer
//! converts them at the edge.
//!
//! One deliberate difference from the reference: it stores a name, an observation or a relation
//! repeated *within one request* twice (two entities of one name, or a doubled observation);
//! here every name, every observation of an entity and every relation exists once, so the
//! repeat is skipped like one that existed before the request. Across requests the two agree.

mod checkpoint;
mod error;
mod file_identity;
mod import;
mod model;
mod registry;
mod schema;
mod search_index;
mod store;
mod trigrams;

pub use error::StoreError;
pub use file_identity::Displacement;
pub use import::{BadLine, ImportReport, export_jsonl, import_jsonl};
pub use model::{
    AddedObservations, Entity, Graph, GraphPage, ObservationAddition, ObservationDeletion,
    Relation, StoreCounts,
};
pub use registry::{DbInfo, Reopened, StoreRegistry};
pub use store::{MemoryStore, search_key};
