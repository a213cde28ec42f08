//! The memory target's backing store as the host sees it: one `StoreRegistry` per host, shared
//! by every session of the memory target and by the manager API's `/memory/dbs` routes, closed
//! at shutdown. Their answers (`api_types`) are made here, at the edge.

use std::sync::Arc;

use msm_core::StateDir;
use msm_memory::{DbInfo, GraphPage, StoreError, StoreRegistry};

use crate::api_types;

/// Errors of the `/memory/dbs` routes.
#[derive(Debug, thiserror::Error)]
pub enum MemoryApiError {
    #[error("unknown memory DB `{0}` (see GET /memory/dbs)")]
    UnknownDb(String),
    #[error("{0}")]
    NotAvailable(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for MemoryApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnknownDb(id) => MemoryApiError::UnknownDb(id),
            other => MemoryApiError::Store(other.to_string()),
        }
    }
}

/// The memory store of this host (cheap to clone).
#[derive(Clone)]
pub struct MemoryBackend {
    stores: Arc<StoreRegistry>,
    /// Graph changes, shared by every memory session so a write reaches the subscribers of
    /// other sessions on the same DB.
    changes: crate::memory::GraphChanges,
}

impl MemoryBackend {
    /// The registry for this user: the fallback DB under `$HOME/.claude/`, the list of known
    /// DBs in the state dir.
    pub fn open(state_dir: &StateDir) -> MemoryBackend {
        let home = msm_core::state_dir::home_dir().unwrap_or_else(|| state_dir.root().to_owned());
        MemoryBackend {
            stores: Arc::new(StoreRegistry::new(home, state_dir.memory_dbs_path())),
            changes: crate::memory::GraphChanges::new(),
        }
    }

    /// The shared registry (what the memory MCP handler is built on).
    pub fn stores(&self) -> &Arc<StoreRegistry> {
        &self.stores
    }

    /// Closes every open DB (at shutdown).
    pub fn close(&self) {
        self.stores.close_all();
    }

    /// Every memory DB this host has ever opened, as `GET /memory/dbs` lists them.
    pub fn list_dbs(&self) -> Result<Vec<api_types::Db>, MemoryApiError> {
        Ok(self.stores.known_dbs().iter().map(db_answer).collect())
    }

    /// One page of a DB's graph, filtered by `query` (search semantics; empty = everything).
    pub fn graph_page(
        &self,
        id: &str,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<api_types::GraphPage, MemoryApiError> {
        Ok(page_answer(
            &self.stores.graph_page(id, query, offset, limit)?,
        ))
    }

    /// The whole graph of DB `id` as a file: `read_graph`'s JSON, or with `jsonl` the
    /// reference server's `memory.jsonl` (which `memory import` reads back).
    pub fn export(&self, id: &str, jsonl: bool) -> Result<String, MemoryApiError> {
        let graph = self.stores.on_db(id, |store| store.read_graph())?;
        if jsonl {
            return Ok(msm_memory::export_jsonl(&graph));
        }
        let value = serde_json::json!({
            "entities": graph.entities.iter().map(entity_answer).collect::<Vec<_>>(),
            "relations": graph.relations.iter().map(relation_answer).collect::<Vec<_>>(),
        });
        Ok(serde_json::to_string_pretty(&value).unwrap_or_default())
    }

    /// Deletes the named entities of DB `id` (their observations and relations with them), as
    /// the `delete_entities` tool does; the sessions watching that DB's graph are told.
    pub fn delete_entities(&self, id: &str, names: &[String]) -> Result<(), MemoryApiError> {
        // Announced under the path of the store the delete went to, found by the one lookup.
        let written = self.stores.on_db(id, |store| {
            store.delete_entities(names)?;
            Ok(store.path().to_owned())
        })?;
        self.changes.announce(&written);
        Ok(())
    }
}

fn db_answer(db: &DbInfo) -> api_types::Db {
    let counts = db.counts;
    api_types::Db {
        id: db.id.clone(),
        path: db.path.display().to_string(),
        project: db.project.as_ref().map(|p| p.display().to_string()),
        exists: db.exists,
        size_bytes: db.size_bytes,
        entities: counts.map(|c| c.entities),
        relations: counts.map(|c| c.relations),
        observations: counts.map(|c| c.observations),
        last_write: db
            .last_write
            .map(|t| crate::status::rfc3339(time::OffsetDateTime::from(t))),
        error: db.error.clone(),
    }
}

fn entity_answer(e: &msm_memory::Entity) -> api_types::Entity {
    api_types::Entity {
        name: e.name.clone(),
        entity_type: e.entity_type.clone(),
        observations: e.observations.clone(),
    }
}

fn relation_answer(r: &msm_memory::Relation) -> api_types::Relation {
    api_types::Relation {
        from: r.from.clone(),
        to: r.to.clone(),
        relation_type: r.relation_type.clone(),
    }
}

fn page_answer(page: &GraphPage) -> api_types::GraphPage {
    api_types::GraphPage {
        entities: page.entities.iter().map(entity_answer).collect(),
        relations: page.relations.iter().map(relation_answer).collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    }
}

/// Makes one memory MCP handler per session (and per stateless request), all on the host's
/// one registry and one channel of graph changes.
pub(crate) fn memory_handler_factory(
    backend: MemoryBackend,
) -> impl Fn() -> crate::memory::MemoryService + Send + Sync + 'static {
    move || {
        crate::memory::MemoryService::with_changes(backend.stores.clone(), backend.changes.clone())
    }
}
