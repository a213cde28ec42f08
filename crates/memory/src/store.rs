//! `MemoryStore`: one SQLite knowledge-graph DB and the nine operations of the reference memory
//! server, each one transaction (`BEGIN IMMEDIATE` for writes, so that concurrent writers queue
//! on the busy timeout instead of failing a lock upgrade).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use crate::checkpoint::Checkpointer;
use crate::file_identity::{self, FileIdentity};
use crate::schema::{self, Detected};
use crate::search_index;
use crate::trigrams::TrigramStats;
use crate::{
    AddedObservations, Entity, Graph, GraphPage, ObservationAddition, ObservationDeletion,
    Relation, StoreCounts, StoreError,
};

/// How long a writer waits for another process's write lock before giving up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Queries of at least this many characters use the trigram index; shorter ones scan.
const TRIGRAM: usize = 3;

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 4;

/// Above this many names, the relations touching them are found by one scan, not by lookups.
const RELATION_LOOKUP_LIMIT: usize = 256;

/// The search key of a text: lowercased as JavaScript's `toLowerCase` does (full Unicode case
/// mapping, final sigma included), which is what the reference server compares.
pub fn search_key(text: &str) -> String {
    text.to_lowercase()
}

/// The search index's document of one entity: its fields' search keys, one per line. A match
/// across two lines is possible in the index but is always re-checked field by field.
pub(crate) fn search_doc(name: &str, entity_type: &str, observations: &[String]) -> String {
    let mut doc = String::with_capacity(
        name.len()
            + entity_type.len()
            + observations.iter().map(|o| o.len() + 1).sum::<usize>()
            + 2,
    );
    doc.push_str(&search_key(name));
    doc.push('\n');
    doc.push_str(&search_key(entity_type));
    for o in observations {
        doc.push('\n');
        doc.push_str(&search_key(o));
    }
    doc
}

/// One open memory DB. Cheap to share (`Arc`); every method is one transaction.
///
/// Every transaction first checks that the path still names the file the store opened, and a
/// write checks again after its commit: a write is acknowledged only while its file has its
/// name. Otherwise the method fails with [`StoreError::Displaced`], and the owner
/// ([`crate::StoreRegistry`]) closes this store and reopens the path.
pub struct MemoryStore {
    path: PathBuf,
    /// The file SQLite opened at `path`.
    identity: FileIdentity,
    /// Held shared by every transaction and exclusively by [`MemoryStore::close`], so that
    /// closing waits for the transactions in flight: no connection to the old file may outlive
    /// the store, since SQLite deletes `-wal`/`-shm` by name when its last connection closes,
    /// and by then the names may belong to a new DB at the same path.
    gate: RwLock<()>,
    /// Set by [`MemoryStore::close`]; every method then fails with `Closed`.
    closed: AtomicBool,
    /// The one writer connection (writes are serialised here, then by SQLite's lock).
    conn: Mutex<Option<Connection>>,
    /// Idle read connections: in WAL mode reads run beside the writer and each other.
    readers: Mutex<Vec<Connection>>,
    trigrams: TrigramStats,
    /// Runs the WAL checkpoints (`None`: SQLite's automatic ones).
    checkpointer: Mutex<Option<Checkpointer>>,
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        if let Some(checkpointer) = self.checkpointer.get_mut().take() {
            checkpointer.stop();
        }
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("path", &self.path)
            .finish()
    }
}

impl MemoryStore {
    /// Opens (creating if absent) the DB at `path`. A DB in the seed's Node schema is backed up
    /// to `memory.db.bak-<UTC timestamp>` beside it and migrated in place; a file in a schema we
    /// do not know is left untouched and refused with [`StoreError::UnknownSchema`].
    pub fn open(path: &Path) -> Result<MemoryStore, StoreError> {
        Self::open_inner(path).map_err(|e| e.on_db(path))
    }

    fn open_inner(path: &Path) -> Result<MemoryStore, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match schema::detect(&conn, path)? {
            Detected::Empty => {
                set_connection_pragmas(&conn)?;
                if !schema::create(&mut conn)? {
                    // Another process created the schema meanwhile: check what it made.
                    if schema::detect(&conn, path)? != Detected::Current {
                        return Err(StoreError::UnknownSchema {
                            path: path.to_owned(),
                            detail: "created concurrently by another program".into(),
                        });
                    }
                }
            }
            Detected::SeedNode => {
                let backup = backup_path(path);
                conn.backup("main", &backup, None::<fn(rusqlite::backup::Progress)>)?;
                // The copy is one self-contained file, whatever the original's journal mode.
                Connection::open(&backup)?.pragma_update(None, "journal_mode", "DELETE")?;
                tracing::warn!(
                    db = %path.display(),
                    backup = %backup.display(),
                    "migrating a memory DB of the seed's Node server (backup made)"
                );
                set_connection_pragmas(&conn)?;
                schema::migrate_from_seed(&mut conn)?;
            }
            Detected::Current => set_connection_pragmas(&conn)?,
            Detected::Older(version) => {
                set_connection_pragmas(&conn)?;
                schema::migrate(&mut conn, version)?;
            }
        }
        let trigrams = TrigramStats::load(&conn);
        let identity = FileIdentity::of(path).map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
        let checkpointer = Checkpointer::start(path);
        if let Some(checkpointer) = &checkpointer {
            checkpointer.attach(&mut conn)?;
        }
        Ok(MemoryStore {
            path: path.to_owned(),
            identity,
            gate: RwLock::new(()),
            closed: AtomicBool::new(false),
            conn: Mutex::new(Some(conn)),
            readers: Mutex::new(Vec::new()),
            trigrams,
            checkpointer: Mutex::new(checkpointer),
        })
    }

    /// The DB file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store is open and the path still names its file (one `stat`).
    pub fn check_file(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed {
                path: self.path.clone(),
            });
        }
        file_identity::check(&self.path, self.identity).map_err(|how| StoreError::Displaced {
            path: self.path.clone(),
            how,
        })
    }

    /// Closes every connection, after the transactions in flight; every later call fails with
    /// [`StoreError::Closed`]. Idempotent.
    pub(crate) fn close(&self) {
        let _exclusive = self.gate.write();
        self.closed.store(true, Ordering::Release);
        if let Some(checkpointer) = self.checkpointer.lock().take() {
            checkpointer.stop();
        }
        if let Some(conn) = self.conn.lock().take() {
            // SQLite neither checkpoints nor deletes the WAL when it closes a DB file that
            // has moved, so `-wal` and `-shm` stay at the path, where the next file opened
            // there would adopt their frames as its own (a replaced DB reads as the old one).
            // Emptying the WAL into the old file first leaves nothing to adopt.
            if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
                tracing::warn!(db = %self.path.display(), %err, "cannot empty the WAL at close");
            }
        }
        self.readers.lock().clear();
    }

    /// One write transaction; `f` pushes every search document it writes, counted after the
    /// commit. The file is checked before the transaction and after the commit.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Vec<String>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _shared = self.gate.read();
        self.check_file()?;
        let mut guard = self.conn.lock();
        let conn = guard.as_mut().ok_or_else(|| StoreError::Closed {
            path: self.path.clone(),
        })?;
        let mut docs = Vec::new();
        let value = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx, &mut docs)?;
            tx.commit()?;
            Ok(value)
        })()
        .map_err(|e: StoreError| e.on_db(&self.path))?;
        drop(guard);
        // Committed, but into a file that may have lost its name meanwhile: only acknowledge
        // it if the path still names that file.
        self.check_file()?;
        self.trigrams.note(&docs);
        Ok(value)
    }

    /// One read transaction on a pooled read connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _shared = self.gate.read();
        self.check_file()?;
        let pooled = self.readers.lock().pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.path).map_err(|e| e.on_db(&self.path))?,
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })()
        .map_err(|e: StoreError| e.on_db(&self.path));
        let mut pool = self.readers.lock();
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }

    /// Creates the entities whose names do not exist yet and returns those (as stored: an
    /// observation repeated in the request is kept once). Later duplicates of a name in the same
    /// request are skipped like existing names.
    pub fn create_entities(&self, entities: &[Entity]) -> Result<Vec<Entity>, StoreError> {
        self.write(|tx, docs| {
            let mut created = Vec::new();
            for entity in entities {
                if let Inserted::Created(observations) = insert_entity(tx, docs, entity)? {
                    created.push(Entity {
                        name: entity.name.clone(),
                        entity_type: entity.entity_type.clone(),
                        observations,
                    });
                }
            }
            Ok(created)
        })
    }

    /// Creates the relations that do not exist yet and returns those. Endpoints need not exist.
    pub fn create_relations(&self, relations: &[Relation]) -> Result<Vec<Relation>, StoreError> {
        self.write(|tx, _docs| {
            let mut created = Vec::new();
            for relation in relations {
                if insert_relation(tx, relation)? {
                    created.push(relation.clone());
                }
            }
            Ok(created)
        })
    }

    /// Adds the contents each entity does not have yet; returns what was added per item. A
    /// missing entity fails the whole call ([`StoreError::EntityNotFound`]) and changes nothing.
    pub fn add_observations(
        &self,
        additions: &[ObservationAddition],
    ) -> Result<Vec<AddedObservations>, StoreError> {
        self.write(|tx, docs| {
            let mut results = Vec::with_capacity(additions.len());
            for addition in additions {
                let Some(id) = entity_id(tx, &addition.entity_name)? else {
                    return Err(StoreError::EntityNotFound(addition.entity_name.clone()));
                };
                results.push(AddedObservations {
                    entity_name: addition.entity_name.clone(),
                    added_observations: add_contents(tx, docs, id, &addition.contents)?,
                });
            }
            Ok(results)
        })
    }

    /// Deletes the named entities, their observations, and every relation touching them.
    /// Missing names are ignored.
    pub fn delete_entities(&self, names: &[String]) -> Result<(), StoreError> {
        self.write(|tx, _docs| {
            let mut delete_relations = tx
                .prepare_cached("DELETE FROM mem_relations WHERE from_name = ?1 OR to_name = ?1")?;
            let mut delete_observations =
                tx.prepare_cached("DELETE FROM mem_observations WHERE entity_id = ?1")?;
            let mut delete_entity = tx.prepare_cached("DELETE FROM mem_entities WHERE id = ?1")?;
            for name in names {
                delete_relations.execute([name])?;
                if let Some(id) = entity_id(tx, name)? {
                    search_index::delete(tx, id)?;
                    delete_observations.execute([id])?;
                    delete_entity.execute([id])?;
                }
            }
            Ok(())
        })
    }

    /// Deletes the given observations; missing entities and contents are ignored.
    pub fn delete_observations(&self, deletions: &[ObservationDeletion]) -> Result<(), StoreError> {
        self.write(|tx, docs| {
            let mut delete = tx.prepare_cached(
                "DELETE FROM mem_observations WHERE entity_id = ?1 AND content = ?2",
            )?;
            let mut touched = Vec::new();
            for deletion in deletions {
                let Some(id) = entity_id(tx, &deletion.entity_name)? else {
                    continue;
                };
                let mut changed = false;
                for content in &deletion.observations {
                    changed |= delete.execute(params![id, content])? > 0;
                }
                if changed {
                    touched.push(id);
                }
            }
            for id in touched {
                docs.push(refresh_search_doc(tx, id)?);
            }
            Ok(())
        })
    }

    /// Deletes the given relations; missing ones are ignored.
    pub fn delete_relations(&self, relations: &[Relation]) -> Result<(), StoreError> {
        self.write(|tx, _docs| {
            let mut delete = tx.prepare_cached(
                "DELETE FROM mem_relations WHERE from_name = ?1 AND to_name = ?2 AND relation_type = ?3",
            )?;
            for r in relations {
                delete.execute(params![r.from, r.to, r.relation_type])?;
            }
            Ok(())
        })
    }

    /// The whole graph, in insertion order.
    pub fn read_graph(&self) -> Result<Graph, StoreError> {
        self.read(|tx| {
            let mut observations: HashMap<i64, Vec<String>> = HashMap::new();
            let mut stmt =
                tx.prepare_cached("SELECT entity_id, content FROM mem_observations ORDER BY id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                observations
                    .entry(row.get(0)?)
                    .or_default()
                    .push(row.get(1)?);
            }
            let mut stmt =
                tx.prepare_cached("SELECT id, name, entity_type FROM mem_entities ORDER BY id")?;
            let entities = stmt
                .query_map([], |r| {
                    let id: i64 = r.get(0)?;
                    Ok(Entity {
                        name: r.get(1)?,
                        entity_type: r.get(2)?,
                        observations: observations.remove(&id).unwrap_or_default(),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = tx.prepare_cached(
                "SELECT from_name, to_name, relation_type FROM mem_relations ORDER BY id",
            )?;
            let relations = stmt
                .query_map([], relation_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Graph {
                entities,
                relations,
            })
        })
    }

    /// The entities whose name, type or an observation contains `query`, compared
    /// case-insensitively as the reference does (`toLowerCase` on both sides, literal
    /// substring), plus every relation with at least one endpoint among them.
    pub fn search_nodes(&self, query: &str) -> Result<Graph, StoreError> {
        self.read(|tx| {
            let entities: Vec<Entity> = search_entities(tx, &self.trigrams, query)?
                .into_iter()
                .map(|(_, e)| e)
                .collect();
            let relations = relations_touching(tx, &entities)?;
            Ok(Graph {
                entities,
                relations,
            })
        })
    }

    /// The named entities (in insertion order, each once) and every relation with at least
    /// one endpoint among them. Missing names are ignored.
    pub fn open_nodes(&self, names: &[String]) -> Result<Graph, StoreError> {
        self.read(|tx| {
            let mut ids = Vec::new();
            for name in names {
                if let Some(id) = entity_id(tx, name)? {
                    ids.push(id);
                }
            }
            ids.sort_unstable();
            ids.dedup();
            let entities = ids
                .into_iter()
                .map(|id| load_entity(tx, id))
                .collect::<Result<Vec<_>, _>>()?;
            let relations = relations_touching(tx, &entities)?;
            Ok(Graph {
                entities,
                relations,
            })
        })
    }

    /// Row counts, for the manager API.
    pub fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.read(|tx| {
            let count = |table: &str| -> Result<u64, StoreError> {
                Ok(
                    tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                        r.get::<_, i64>(0)
                    })? as u64,
                )
            };
            Ok(StoreCounts {
                entities: count("mem_entities")?,
                relations: count("mem_relations")?,
                observations: count("mem_observations")?,
            })
        })
    }

    /// One page (`offset`, at most `limit` entities) of the entities matching `query` with
    /// search semantics (an empty query matches all), with the relations touching the page.
    pub fn graph_page(
        &self,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<GraphPage, StoreError> {
        self.read(|tx| {
            // Only the page's entities are loaded: the ids are paged in SQL (browsing) or
            // after the index filter (a search), never every entity of a big graph.
            let key = search_key(query);
            let (entities, total) = if key.is_empty() {
                let total: i64 =
                    tx.query_row("SELECT COUNT(*) FROM mem_entities", [], |r| r.get(0))?;
                let ids: Vec<i64> = tx
                    .prepare_cached("SELECT id FROM mem_entities ORDER BY id LIMIT ?1 OFFSET ?2")?
                    .query_map([limit as i64, offset as i64], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let page = load_entities(tx, &ids)?;
                (page.into_iter().map(|(_, e)| e).collect(), total as usize)
            } else if !key.contains('\n') {
                let ids = matching_ids(tx, &self.trigrams, &key)?;
                let total = ids.len();
                let page: Vec<i64> = ids.into_iter().skip(offset).take(limit).collect();
                let page = load_entities(tx, &page)?;
                (page.into_iter().map(|(_, e)| e).collect(), total)
            } else {
                let matching = search_entities(tx, &self.trigrams, query)?;
                let total = matching.len();
                let page: Vec<Entity> = matching
                    .into_iter()
                    .skip(offset)
                    .take(limit)
                    .map(|(_, e)| e)
                    .collect();
                (page, total)
            };
            let relations = relations_touching(tx, &entities)?;
            Ok(GraphPage {
                entities,
                relations,
                total,
                offset,
                limit,
            })
        })
    }

    /// Rebuilds the search index from the data (after a bulk change made outside the store).
    pub fn rebuild_search_index(&self) -> Result<(), StoreError> {
        self.write(|tx, docs| {
            schema::rebuild_search(tx)?;
            let mut stmt = tx.prepare("SELECT doc FROM mem_search")?;
            for doc in stmt.query_map([], |r| r.get::<_, String>(0))? {
                docs.push(doc?);
            }
            Ok(())
        })
    }

    /// Runs `f` in one write transaction (used by the JSONL import).
    pub(crate) fn write_with<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &mut Vec<String>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.write(f)
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    // Searches of a big graph revisit the same index pages: 64 MiB instead of SQLite's 2 MiB.
    conn.pragma_update(None, "cache_size", -65_536i64)?;
    set_query_plan_stability(&conn)?;
    Ok(conn)
}

/// Our statements are cached and run with new values each time. SQLite (built with STAT4, as
/// the bundled one is) re-plans an indexed `= ?` statement on every new binding, FTS5's own
/// statements too: a third of a small search's time. The query planner stability guarantee
/// keeps the plan made at prepare time, which is the one our indexes are designed for.
fn set_query_plan_stability(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

fn set_connection_pragmas(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode");
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    // In WAL mode NORMAL is durable across application crashes (not across power loss) and
    // saves an fsync per transaction.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // A write touches index pages all over a big DB (names, the digit-run suffixes, FTS5
    // segments): 64 MiB instead of SQLite's 2 MiB keeps them in memory.
    conn.pragma_update(None, "cache_size", -65_536i64)?;
    set_query_plan_stability(conn)
}

/// `memory.db.bak-<UTC timestamp>` beside `path`, not yet taken.
fn backup_path(path: &Path) -> PathBuf {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| "0".into());
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "memory.db".into());
    let mut candidate = path.with_file_name(format!("{file_name}.bak-{stamp}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{file_name}.bak-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// What [`insert_entity`] did.
pub(crate) enum Inserted {
    /// A new entity, with the observations kept (a repeated one once).
    Created(Vec<String>),
    /// The name exists already: nothing was written.
    Exists,
}

// The write primitives below are the only code that inserts entities, observations and
// relations (the tools and the JSONL import share them): each keeps the search index in step
// with what it wrote, and pushes the documents written to `docs` for the trigram counts.

/// Inserts `entity` unless its name exists.
pub(crate) fn insert_entity(
    tx: &Transaction<'_>,
    docs: &mut Vec<String>,
    entity: &Entity,
) -> Result<Inserted, StoreError> {
    let inserted = tx
        .prepare_cached(
            "INSERT INTO mem_entities(name, entity_type) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        )?
        .execute(params![entity.name, entity.entity_type])?;
    if inserted == 0 {
        return Ok(Inserted::Exists);
    }
    let id = tx.last_insert_rowid();
    let observations = insert_contents(tx, id, &entity.observations)?;
    let doc = search_doc(&entity.name, &entity.entity_type, &observations);
    search_index::insert(tx, id, &doc)?;
    docs.push(doc);
    Ok(Inserted::Created(observations))
}

/// Adds to entity `id` the contents it does not have yet; returns those added.
pub(crate) fn add_contents(
    tx: &Transaction<'_>,
    docs: &mut Vec<String>,
    id: i64,
    contents: &[String],
) -> Result<Vec<String>, StoreError> {
    let added = insert_contents(tx, id, contents)?;
    if !added.is_empty() {
        docs.push(refresh_search_doc(tx, id)?);
    }
    Ok(added)
}

fn insert_contents(
    tx: &Transaction<'_>,
    id: i64,
    contents: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO mem_observations(entity_id, content) VALUES (?1, ?2)",
    )?;
    let mut added = Vec::with_capacity(contents.len());
    for content in contents {
        if insert.execute(params![id, content])? == 1 {
            added.push(content.clone());
        }
    }
    Ok(added)
}

/// Inserts `relation` unless it exists; whether it was new.
pub(crate) fn insert_relation(
    tx: &Transaction<'_>,
    relation: &Relation,
) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT OR IGNORE INTO mem_relations(from_name, to_name, relation_type) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![relation.from, relation.to, relation.relation_type])?
        == 1)
}

pub(crate) fn entity_id(tx: &Transaction<'_>, name: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT id FROM mem_entities WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

/// Rewrites one entity's search document; returns it.
pub(crate) fn refresh_search_doc(tx: &Transaction<'_>, id: i64) -> Result<String, StoreError> {
    let entity = load_entity(tx, id)?;
    let doc = search_doc(&entity.name, &entity.entity_type, &entity.observations);
    search_index::delete(tx, id)?;
    search_index::insert(tx, id, &doc)?;
    Ok(doc)
}

fn load_entity(tx: &Transaction<'_>, id: i64) -> Result<Entity, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT e.name, e.entity_type, o.content FROM mem_entities e
         LEFT JOIN mem_observations o ON o.entity_id = e.id WHERE e.id = ?1 ORDER BY o.id",
    )?;
    let mut rows = stmt.query([id])?;
    let mut entity: Option<Entity> = None;
    while let Some(row) = rows.next()? {
        let e = match &mut entity {
            Some(e) => e,
            None => entity.insert(Entity {
                name: row.get(0)?,
                entity_type: row.get(1)?,
                observations: Vec::new(),
            }),
        };
        if let Some(content) = row.get::<_, Option<String>>(2)? {
            e.observations.push(content);
        }
    }
    entity.ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
}

/// The entities with these ids (ascending, each once), by one statement.
fn load_entities(tx: &Transaction<'_>, ids: &[i64]) -> Result<Vec<(i64, Entity)>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() == 1 {
        return Ok(vec![(ids[0], load_entity(tx, ids[0])?)]);
    }
    let ids_json = serde_json::to_string(ids)
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    let mut stmt = tx.prepare_cached(
        "SELECT e.id, e.name, e.entity_type, o.content FROM mem_entities e
         LEFT JOIN mem_observations o ON o.entity_id = e.id
         WHERE e.id IN (SELECT value FROM json_each(?1)) ORDER BY e.id, o.id",
    )?;
    let mut rows = stmt.query([ids_json])?;
    let mut found: Vec<(i64, Entity)> = Vec::with_capacity(ids.len());
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if found.last().is_none_or(|(last, _)| *last != id) {
            found.push((
                id,
                Entity {
                    name: row.get(1)?,
                    entity_type: row.get(2)?,
                    observations: Vec::new(),
                },
            ));
        }
        if let Some(content) = row.get::<_, Option<String>>(3)?
            && let Some((_, entity)) = found.last_mut()
        {
            entity.observations.push(content);
        }
    }
    Ok(found)
}

fn relation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Relation> {
    Ok(Relation {
        from: r.get(0)?,
        to: r.get(1)?,
        relation_type: r.get(2)?,
    })
}

/// The entities matching `query` (reference semantics), in insertion order, with their ids.
///
/// The index holds each entity's search keys one per line, so for a key without a line break
/// "the document contains the key" is exactly "some field contains the key"; a key with a line
/// break is checked field by field.
fn search_entities(
    tx: &Transaction<'_>,
    trigrams: &TrigramStats,
    query: &str,
) -> Result<Vec<(i64, Entity)>, StoreError> {
    let key = search_key(query);
    if key.is_empty() {
        let ids: Vec<i64> = tx
            .prepare_cached("SELECT id FROM mem_entities ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        return load_entities(tx, &ids);
    }
    let key_spans_fields = key.contains('\n');
    let ids = matching_ids(tx, trigrams, &key)?;
    let mut found = load_entities(tx, &ids)?;
    if key_spans_fields {
        found.retain(|(_, entity)| {
            search_key(&entity.name).contains(&key)
                || search_key(&entity.entity_type).contains(&key)
                || entity
                    .observations
                    .iter()
                    .any(|o| search_key(o).contains(&key))
        });
    }
    Ok(found)
}

/// The ids, in insertion order, of the entities whose search document holds `key` (a
/// non-empty search key): exact for a key without a line break, a superset otherwise.
fn matching_ids(
    tx: &Transaction<'_>,
    trigrams: &TrigramStats,
    key: &str,
) -> Result<Vec<i64>, StoreError> {
    // Candidates are verified inside SQLite (`instr`): no document is copied out to be checked,
    // which was most of a search whose trigrams leave hundreds of candidates.
    if let Some(ids) = search_index::digit_candidates(tx, key)? {
        let mut holds_key = tx.prepare_cached(
            "SELECT rowid FROM mem_search WHERE rowid = ?1 AND instr(doc, ?2) > 0",
        )?;
        let mut found = Vec::new();
        for id in ids {
            if let Some(id) = holds_key
                .query_row(rusqlite::params![id, key], |r| r.get(0))
                .optional()?
            {
                found.push(id);
            }
        }
        return Ok(found);
    }
    if key.contains('\0') {
        // SQLite's text functions stop at a NUL: check such a key here.
        let mut scan = tx.prepare_cached("SELECT rowid, doc FROM mem_search ORDER BY rowid")?;
        let rows = scan.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut found = Vec::new();
        for row in rows {
            let (id, doc) = row?;
            if doc.contains(key) {
                found.push(id);
            }
        }
        return Ok(found);
    }
    let ids = if key.chars().count() >= TRIGRAM {
        tx.prepare_cached(
            "SELECT rowid FROM mem_search WHERE mem_search MATCH ?1 AND instr(doc, ?2) > 0 ORDER BY rowid",
        )?
        .query_map(
            rusqlite::params![trigrams.match_expression(key), key],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?
    } else {
        tx.prepare_cached("SELECT rowid FROM mem_search WHERE instr(doc, ?1) > 0 ORDER BY rowid")?
            .query_map([key], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    Ok(ids)
}

/// The relations with at least one endpoint among `entities`' names, in insertion order.
fn relations_touching(
    tx: &Transaction<'_>,
    entities: &[Entity],
) -> Result<Vec<Relation>, StoreError> {
    if entities.is_empty() {
        return Ok(Vec::new());
    }
    if entities.len() > RELATION_LOOKUP_LIMIT {
        let names: HashSet<&str> = entities.iter().map(|e| e.name.as_str()).collect();
        let mut stmt = tx.prepare_cached(
            "SELECT from_name, to_name, relation_type FROM mem_relations ORDER BY id",
        )?;
        let all = stmt
            .query_map([], relation_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(all
            .into_iter()
            .filter(|r| names.contains(r.from.as_str()) || names.contains(r.to.as_str()))
            .collect());
    }
    let names: Vec<&str> = entities.iter().map(|e| e.name.as_str()).collect();
    let names_json = serde_json::to_string(&names)
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    let mut stmt = tx.prepare_cached(
        "SELECT from_name, to_name, relation_type FROM mem_relations WHERE id IN (
             SELECT id FROM mem_relations WHERE from_name IN (SELECT value FROM json_each(?1))
             UNION
             SELECT id FROM mem_relations WHERE to_name IN (SELECT value FROM json_each(?1)))
         ORDER BY id",
    )?;
    let relations = stmt
        .query_map([names_json], relation_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(relations)
}
