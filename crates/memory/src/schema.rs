//! The DB schema, its version (`PRAGMA user_version`), and the migrations: from nothing, and from
//! the seed's Node memory server (tables `entities`/`observations`/`relations` keyed by name).
//! Detection only reads; nothing is written to a file whose schema is not recognised.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::StoreError;
use crate::search_index;
use crate::store::search_doc;

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = 2;

const SCHEMA_V1: &str = "
CREATE TABLE mem_info(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO mem_info(key, value) VALUES ('app', 'mcp-session-manager memory');
CREATE TABLE mem_entities(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    entity_type TEXT NOT NULL
);
CREATE TABLE mem_observations(
    id INTEGER PRIMARY KEY,
    entity_id INTEGER NOT NULL REFERENCES mem_entities(id) ON DELETE CASCADE,
    content TEXT NOT NULL,
    UNIQUE(entity_id, content)
);
CREATE TABLE mem_relations(
    id INTEGER PRIMARY KEY,
    from_name TEXT NOT NULL,
    to_name TEXT NOT NULL,
    relation_type TEXT NOT NULL,
    UNIQUE(from_name, to_name, relation_type)
);
CREATE INDEX mem_relations_by_to ON mem_relations(to_name);
-- One row per entity (rowid = entity id): its name, type and observations, lowercased as
-- JavaScript's toLowerCase does, so that a case-sensitive trigram match is the prefilter of
-- the reference server's case-insensitive substring search.
CREATE VIRTUAL TABLE mem_search USING fts5(doc, tokenize = 'trigram case_sensitive 1');
";

/// Version 2: the suffixes of each search document's digit runs (see `search_index.rs`), as
/// the tokens of a contentless FTS5 table (rowid = entity id; no positions, no sizes).
const SCHEMA_V2: &str = "
CREATE VIRTUAL TABLE mem_digit_runs USING fts5(
    suffixes, content = '', detail = none, columnsize = 0, tokenize = 'unicode61'
);
";

/// What a file holds, judged from its tables and `user_version` without writing anything.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// No tables: a new (or empty) file.
    Empty,
    /// Ours, at this version.
    Current,
    /// Ours, at an older version: migrated in place at open.
    Older(i64),
    /// The seed's Node memory server's schema.
    SeedNode,
}

pub(crate) fn detect(conn: &Connection, path: &Path) -> Result<Detected, StoreError> {
    let unknown = |detail: String| StoreError::UnknownSchema {
        path: path.to_owned(),
        detail,
    };
    // The first read of a file that is not SQLite fails here ("file is not a database").
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| unknown(e.to_string()))?;
    let tables: BTreeSet<String> = {
        let mut stmt = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table'
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
            )
            .map_err(|e| unknown(e.to_string()))?;
        stmt.query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<_, _>>()?
    };
    if tables.contains("mem_info") {
        let app: Option<String> = conn
            .query_row("SELECT value FROM mem_info WHERE key = 'app'", [], |r| {
                r.get(0)
            })
            .ok();
        if app.as_deref() != Some("mcp-session-manager memory") {
            return Err(unknown("table mem_info without our marker".into()));
        }
        return match version {
            SCHEMA_VERSION => Ok(Detected::Current),
            v if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: v,
                supported: SCHEMA_VERSION,
            }),
            v => Ok(Detected::Older(v)),
        };
    }
    if tables.is_empty() {
        return if version == 0 {
            Ok(Detected::Empty)
        } else {
            Err(unknown(format!("user_version {version} but no tables")))
        };
    }
    let seed: BTreeSet<String> = ["entities", "observations", "relations"]
        .into_iter()
        .map(String::from)
        .collect();
    if tables == seed && version == 0 && seed_columns_match(conn)? {
        return Ok(Detected::SeedNode);
    }
    Err(unknown(format!(
        "tables {}",
        tables.into_iter().collect::<Vec<_>>().join(", ")
    )))
}

fn seed_columns_match(conn: &Connection) -> Result<bool, StoreError> {
    let expected: [(&str, &[&str]); 3] = [
        ("entities", &["name", "entity_type"]),
        ("observations", &["id", "entity_name", "content"]),
        (
            "relations",
            &["id", "from_entity", "to_entity", "relation_type"],
        ),
    ];
    for (table, columns) in expected {
        let mut stmt = conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let found: BTreeSet<String> = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<_, _>>()?;
        if !columns.iter().all(|c| found.contains(*c)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Creates the current schema in an empty file; `false` when another process filled the file
/// between detection and our write lock (the caller then detects again).
pub(crate) fn create(conn: &mut Connection) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables > 0 {
        return Ok(false);
    }
    tx.execute_batch(SCHEMA_V1)?;
    tx.execute_batch(SCHEMA_V2)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(true)
}

/// Brings a DB of ours from `version` to the current one, in one transaction.
pub(crate) fn migrate(conn: &mut Connection, version: i64) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated it between detection and our write lock.
    let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if now != version {
        return Ok(());
    }
    if version < 2 {
        tx.execute_batch(SCHEMA_V2)?;
        search_index::index_digit_runs(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Moves the seed's tables into ours, keeping every entity, observation and relation in order,
/// in one transaction (the caller has made a backup first).
pub(crate) fn migrate_from_seed(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(SCHEMA_V1)?;
    tx.execute_batch(SCHEMA_V2)?;
    tx.execute_batch(
        "INSERT INTO mem_entities(name, entity_type)
             SELECT name, entity_type FROM entities ORDER BY rowid;
         -- Observations whose entity is gone (foreign keys were off) keep an entity of type ''.
         INSERT OR IGNORE INTO mem_entities(name, entity_type)
             SELECT entity_name, '' FROM observations
             WHERE entity_name NOT IN (SELECT name FROM entities) ORDER BY id;
         INSERT OR IGNORE INTO mem_observations(entity_id, content)
             SELECT e.id, o.content FROM observations o JOIN mem_entities e ON e.name = o.entity_name
             ORDER BY o.id;
         INSERT OR IGNORE INTO mem_relations(from_name, to_name, relation_type)
             SELECT from_entity, to_entity, relation_type FROM relations ORDER BY id;
         DROP TABLE relations;
         DROP TABLE observations;
         DROP TABLE entities;",
    )?;
    rebuild_search(&tx)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Rewrites every row of the search index from the entities and observations.
pub(crate) fn rebuild_search(tx: &Transaction<'_>) -> Result<(), StoreError> {
    search_index::clear(tx)?;
    let mut entities = tx.prepare("SELECT id, name, entity_type FROM mem_entities ORDER BY id")?;
    let mut observations =
        tx.prepare("SELECT content FROM mem_observations WHERE entity_id = ?1 ORDER BY id")?;
    let rows = entities
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (id, name, entity_type) in rows {
        let obs = observations
            .query_map([id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        search_index::insert(tx, id, &search_doc(&name, &entity_type, &obs))?;
    }
    Ok(())
}
