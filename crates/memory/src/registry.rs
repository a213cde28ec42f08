//! `StoreRegistry`: which DB a project path selects, one open store per DB file, and the list of
//! every DB the host has opened (kept in the state dir across restarts, for the manager API).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::{Displacement, GraphPage, MemoryStore, StoreCounts, StoreError};

/// How many times one operation follows a DB file that keeps losing its name before failing.
const MAX_REOPENS: usize = 4;

/// A memory DB whose file lost its name while in use, and what the registry opened instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reopened {
    /// The DB path the old store had.
    pub db: PathBuf,
    /// The project that DB belongs to; `None` for the home DB.
    pub project: Option<PathBuf>,
    pub how: Displacement,
    /// The DB the operation ran on instead: the same path (a new file, or the one put there),
    /// or the home DB when the project dir is gone or no longer writable.
    pub now: PathBuf,
}

impl Reopened {
    /// One sentence for a person: what happened and where writes go now.
    pub fn message(&self) -> String {
        let whose = match &self.project {
            Some(dir) => format!(
                "for {}",
                dir.file_name()
                    .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
            ),
            None => "in the home directory".to_owned(),
        };
        let after = match (self.how, self.now == self.db) {
            (Displacement::Gone, true) => "a new one was created".to_owned(),
            (Displacement::Replaced, true) => "the file now at its path is used".to_owned(),
            (_, false) => format!("writes now go to {}", self.now.display()),
        };
        format!(
            "memory DB {whose} was {} while in use; {after}",
            self.how.as_str()
        )
    }
}

type ReopenedObserver = Arc<dyn Fn(&Reopened) + Send + Sync>;

/// One DB the host has opened, as the manager API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbInfo {
    /// Stable for a path (a hash of it), across restarts.
    pub id: String,
    pub path: PathBuf,
    /// The project directory that selected it; `None` for the home DB.
    pub project: Option<PathBuf>,
    pub exists: bool,
    /// The DB file plus its WAL.
    pub size_bytes: u64,
    /// `None` when the file is missing or cannot be opened (see `error`).
    pub counts: Option<StoreCounts>,
    /// The latest modification time of the DB file or its WAL.
    pub last_write: Option<SystemTime>,
    /// Why the DB cannot be opened (unknown schema, ...).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct KnownDb {
    path: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    project: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KnownDbsFile {
    dbs: Vec<KnownDb>,
}

/// Resolves `Mcp-Project-Path` values to DBs and keeps one open [`MemoryStore`] per DB file.
/// Two projects never share a store; a project path that cannot be used falls back to the home
/// DB (`~/.claude/memory.db`) with one warning per distinct value.
pub struct StoreRegistry {
    home: PathBuf,
    known_dbs_file: PathBuf,
    stores: Mutex<HashMap<PathBuf, Arc<MemoryStore>>>,
    known: Mutex<Vec<KnownDb>>,
    warned: Mutex<HashSet<String>>,
    /// Header values already resolved to a project DB (saves the file system checks per call).
    resolved: Mutex<HashMap<String, Arc<MemoryStore>>>,
    observer: Mutex<Option<ReopenedObserver>>,
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreRegistry")
            .field("home", &self.home)
            .field("known_dbs_file", &self.known_dbs_file)
            .finish()
    }
}

impl StoreRegistry {
    /// `home` is the user's home directory (the fallback DB is `home/.claude/memory.db`);
    /// `known_dbs_file` is where the list of opened DBs persists
    /// (`StateDir::memory_dbs_path()`). A missing or unreadable list starts empty.
    pub fn new(home: impl Into<PathBuf>, known_dbs_file: impl Into<PathBuf>) -> StoreRegistry {
        let known_dbs_file = known_dbs_file.into();
        let known = match fs::read(&known_dbs_file) {
            Ok(bytes) => match serde_json::from_slice::<KnownDbsFile>(&bytes) {
                Ok(file) => file.dbs,
                Err(err) => {
                    tracing::warn!(file = %known_dbs_file.display(), %err, "ignoring an unreadable list of memory DBs");
                    Vec::new()
                }
            },
            Err(_) => Vec::new(),
        };
        StoreRegistry {
            home: home.into(),
            known_dbs_file,
            stores: Mutex::new(HashMap::new()),
            known: Mutex::new(known),
            warned: Mutex::new(HashSet::new()),
            resolved: Mutex::new(HashMap::new()),
            observer: Mutex::new(None),
        }
    }

    /// Calls `observer` each time a DB is reopened because its file lost its name (the host
    /// turns it into an event the UI shows).
    pub fn on_reopened(&self, observer: impl Fn(&Reopened) + Send + Sync + 'static) {
        *self.observer.lock() = Some(Arc::new(observer));
    }

    /// Runs `op` on the store of an `Mcp-Project-Path` value (see [`Self::store_for_project`])
    /// and returns its value and the DB it ran on. When the DB file lost its name (deleted,
    /// moved, replaced), the store is closed, the project resolved again (a deleted `.claude/`
    /// is made anew; a project dir that is gone falls back to the home DB), and `op` runs
    /// again there: nothing is acknowledged into a file without a name.
    pub fn run<T>(
        &self,
        project: Option<&str>,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<(T, PathBuf), StoreError> {
        self.follow(|| self.store_for_project(project), op)
    }

    /// [`Self::run`] on one known DB file, which is not created when missing.
    fn run_on_db<T>(
        &self,
        db: &KnownDb,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let open = || {
            if !db.path.is_file() {
                return Err(StoreError::UnknownDb(db_id(&db.path)));
            }
            self.open(&db.path, db.project.as_deref())
        };
        self.follow(open, op).map(|(value, _)| value)
    }

    fn follow<T>(
        &self,
        store: impl Fn() -> Result<Arc<MemoryStore>, StoreError>,
        op: impl Fn(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<(T, PathBuf), StoreError> {
        let mut lost: Option<(PathBuf, Option<PathBuf>, Displacement)> = None;
        let mut last_error = None;
        for _ in 0..MAX_REOPENS {
            let store = store()?;
            if let Some((db, project, how)) = lost.take() {
                self.announce(Reopened {
                    db,
                    project,
                    how,
                    now: store.path().to_owned(),
                });
            }
            match op(&store) {
                Err(StoreError::Displaced { path, how }) => {
                    lost = self
                        .forget(&store)
                        .map(|project| (path.clone(), project, how));
                    last_error = Some(StoreError::Displaced { path, how });
                }
                Err(error @ StoreError::Closed { .. }) => last_error = Some(error),
                outcome => return outcome.map(|value| (value, store.path().to_owned())),
            }
        }
        #[expect(
            clippy::expect_used,
            reason = "the loop runs at least once and only falls through after an error"
        )]
        let error = last_error.expect("the loop ran at least once");
        Err(error)
    }

    /// Closes a store whose file lost its name and drops it from the caches. The close happens
    /// under the store map's lock, so the path cannot be opened again before the old
    /// connections are gone. Returns the DB's project when this call was the one that removed
    /// it (so the change is announced once).
    fn forget(&self, store: &Arc<MemoryStore>) -> Option<Option<PathBuf>> {
        let mut stores = self.stores.lock();
        store.close();
        let ours = stores
            .get(store.path())
            .is_some_and(|cached| Arc::ptr_eq(cached, store));
        if ours {
            stores.remove(store.path());
        }
        drop(stores);
        self.resolved
            .lock()
            .retain(|_, cached| !Arc::ptr_eq(cached, store));
        if !ours {
            return None;
        }
        let project = self
            .known
            .lock()
            .iter()
            .find(|k| k.path == store.path())
            .and_then(|k| k.project.clone());
        Some(project)
    }

    fn announce(&self, reopened: Reopened) {
        tracing::warn!(
            db = %reopened.db.display(),
            now = %reopened.now.display(),
            how = reopened.how.as_str(),
            "{}",
            reopened.message()
        );
        let observer = self.observer.lock().clone();
        if let Some(observer) = observer {
            observer(&reopened);
        }
    }

    /// The home DB's path: `<home>/.claude/memory.db`.
    pub fn home_db_path(&self) -> PathBuf {
        self.home.join(".claude").join("memory.db")
    }

    /// The store for an `Mcp-Project-Path` value (`None`: no header): the project's
    /// `.claude/memory.db` when the value is an absolute existing directory whose DB file can
    /// be written, else the home DB. Prefer [`Self::run`], which follows a DB file that is
    /// deleted or replaced while in use.
    pub fn store_for_project(&self, project: Option<&str>) -> Result<Arc<MemoryStore>, StoreError> {
        if let Some(raw) = project {
            if let Some(store) = self.resolved.lock().get(raw) {
                return Ok(store.clone());
            }
            match project_db(raw) {
                Ok((db, dir)) => {
                    let store = self.open(&db, Some(&dir))?;
                    self.resolved.lock().insert(raw.to_owned(), store.clone());
                    return Ok(store);
                }
                Err(reason) => {
                    if self.warned.lock().insert(raw.to_owned()) {
                        tracing::warn!(project = %raw.escape_debug(), %reason, "unusable project path: using the home memory DB");
                    }
                }
            }
        }
        let home_db = self.home_db_path();
        let parent = home_db.parent().unwrap_or(&self.home);
        fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.to_owned(),
            source,
        })?;
        self.open(&home_db, None)
    }

    /// Opens (or returns the already open) store of one DB file and remembers it.
    pub fn open(&self, db: &Path, project: Option<&Path>) -> Result<Arc<MemoryStore>, StoreError> {
        let key = db.canonicalize().unwrap_or_else(|_| db.to_owned());
        let mut stores = self.stores.lock();
        if let Some(store) = stores.get(&key) {
            return Ok(store.clone());
        }
        let store = Arc::new(MemoryStore::open(&key)?);
        stores.insert(key.clone(), store.clone());
        drop(stores);
        self.remember(&key, project);
        Ok(store)
    }

    fn remember(&self, path: &Path, project: Option<&Path>) {
        let mut known = self.known.lock();
        if known.iter().any(|k| k.path == path) {
            return;
        }
        known.push(KnownDb {
            path: path.to_owned(),
            project: project.map(Path::to_owned),
        });
        let file = KnownDbsFile { dbs: known.clone() };
        if let Err(err) = write_atomically(&self.known_dbs_file, &file) {
            tracing::warn!(file = %self.known_dbs_file.display(), %err, "cannot save the list of memory DBs");
        }
    }

    /// Every DB ever opened (by this host or an earlier run), with sizes and counts.
    pub fn known_dbs(&self) -> Vec<DbInfo> {
        let known = self.known.lock().clone();
        known
            .into_iter()
            .map(|k| {
                let exists = k.path.is_file();
                let wal = wal_path(&k.path);
                let size_bytes = [&k.path, &wal]
                    .iter()
                    .filter_map(|p| fs::metadata(p).ok())
                    .map(|m| m.len())
                    .sum();
                let last_write = [&k.path, &wal]
                    .iter()
                    .filter_map(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
                    .max();
                let (counts, error) = if exists {
                    match self.run_on_db(&k, MemoryStore::counts) {
                        Ok(c) => (Some(c), None),
                        Err(e) => (None, Some(e.to_string())),
                    }
                } else {
                    (None, None)
                };
                DbInfo {
                    id: db_id(&k.path),
                    path: k.path,
                    project: k.project,
                    exists,
                    size_bytes,
                    counts,
                    last_write,
                    error,
                }
            })
            .collect()
    }

    /// One page of the graph of the known DB `id` (see [`MemoryStore::graph_page`]).
    pub fn graph_page(
        &self,
        id: &str,
        query: &str,
        offset: usize,
        limit: usize,
    ) -> Result<GraphPage, StoreError> {
        self.on_db(id, |store| store.graph_page(query, offset, limit))
    }

    /// Runs `f` on the known DB `id` (as `GET /memory/dbs` names it), following a file that
    /// lost its name as `run` does.
    pub fn on_db<T>(
        &self,
        id: &str,
        f: impl Fn(&MemoryStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let known = self
            .known
            .lock()
            .iter()
            .find(|k| db_id(&k.path) == id)
            .cloned()
            .ok_or_else(|| StoreError::UnknownDb(id.to_owned()))?;
        self.run_on_db(&known, f)
    }

    /// Closes every store, after the operations in flight (at shutdown).
    pub fn close_all(&self) {
        self.resolved.lock().clear();
        for (_, store) in self.stores.lock().drain() {
            store.close();
        }
    }
}

/// The stable id of a DB path (FNV-1a, 64 bits, hex).
pub(crate) fn db_id(path: &Path) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

fn wal_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// The DB of a project path and its canonical directory, or why the path cannot be used.
fn project_db(raw: &str) -> Result<(PathBuf, PathBuf), String> {
    if raw.is_empty() {
        return Err("empty".into());
    }
    if raw.contains('\0') {
        return Err("contains NUL".into());
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err("not an absolute path".into());
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err("contains `..`".into());
    }
    let dir = path
        .canonicalize()
        .map_err(|e| format!("cannot be resolved: {e}"))?;
    if !dir.is_dir() {
        return Err("not a directory".into());
    }
    let claude = dir.join(".claude");
    fs::create_dir_all(&claude).map_err(|e| format!("cannot create {}: {e}", claude.display()))?;
    let db = claude.join("memory.db");
    check_writable(&claude, &db)?;
    Ok((db, dir))
}

/// Whether SQLite can write `db` and its `-wal`/`-shm` files beside it, found out without
/// opening `db` itself: closing any descriptor of a DB file drops every POSIX lock this process
/// holds on it, SQLite's included, and another process may then take the WAL for abandoned,
/// checkpoint it and delete it under our writer (writes lost; seen under load).
fn check_writable(dir: &Path, db: &Path) -> Result<(), String> {
    tempfile::Builder::new()
        .prefix(".memory-db-probe")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    match fs::metadata(db) {
        Ok(meta) if meta.permissions().readonly() => Err(format!("{} is read-only", db.display())),
        Ok(meta) if !meta.is_file() => Err(format!("{} is not a file", db.display())),
        _ => Ok(()),
    }
}

fn write_atomically(path: &Path, value: &KnownDbsFile) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(&serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?)?;
    tmp.flush()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
