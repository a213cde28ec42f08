//! A DB file that loses its name while the store has it open (deleted, moved, replaced):
//! `StoreRegistry::run` must never acknowledge a write into a file without a name.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use msm_memory::{Displacement, Entity, MemoryStore, Reopened, StoreError, StoreRegistry};
use parking_lot::Mutex;
use proptest::prelude::*;

fn entity(name: &str) -> Entity {
    Entity {
        name: name.into(),
        entity_type: "t".into(),
        observations: vec![format!("observation of {name}")],
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    project: PathBuf,
    registry: StoreRegistry,
    events: Arc<Mutex<Vec<Reopened>>>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("home")).unwrap();
        let project = root.join("projA");
        std::fs::create_dir(&project).unwrap();
        let registry = StoreRegistry::new(root.join("home"), root.join("state/memory-dbs.json"));
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        registry.on_reopened(move |r| sink.lock().push(r.clone()));
        Fixture {
            _dir: dir,
            root,
            project,
            registry,
            events,
        }
    }

    fn header(&self) -> Option<&str> {
        self.project.to_str()
    }

    fn db(&self) -> PathBuf {
        self.project.join(".claude/memory.db")
    }

    fn create(&self, name: &str) -> PathBuf {
        let (created, db) = self
            .registry
            .run(self.header(), |s| s.create_entities(&[entity(name)]))
            .unwrap();
        assert_eq!(created.len(), 1, "{name} created");
        db
    }

    fn names(&self) -> Vec<String> {
        let (graph, _) = self
            .registry
            .run(self.header(), |s| s.read_graph())
            .unwrap();
        graph.entities.into_iter().map(|e| e.name).collect()
    }
}

/// The names in a DB file, read by a separate SQLite connection, as another program would.
fn names_on_disk(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM mem_entities ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_deleted_claude_dir_is_made_anew_and_the_write_lands_there() {
    let f = Fixture::new();
    f.create("before");
    std::fs::remove_dir_all(f.project.join(".claude")).unwrap();
    let db = f.create("after");
    assert_eq!(db, f.db());
    assert_eq!(names_on_disk(&f.db()), ["after"]);
    assert_eq!(f.names(), ["after"]);
    let events = f.events.lock();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].how, Displacement::Gone);
    assert_eq!(events[0].project.as_deref(), Some(f.project.as_path()));
    assert_eq!(
        events[0].message(),
        "memory DB for projA was deleted while in use; a new one was created"
    );
}

#[test]
fn a_read_after_the_deletion_sees_the_new_db_not_an_error() {
    let f = Fixture::new();
    f.create("before");
    std::fs::remove_dir_all(f.project.join(".claude")).unwrap();
    assert!(f.names().is_empty());
    assert!(f.db().is_file(), "the read made the DB anew");
}

#[test]
fn a_replaced_db_file_is_used_from_then_on() {
    let f = Fixture::new();
    f.create("ours");
    let other = f.root.join("other.db");
    MemoryStore::open(&other)
        .unwrap()
        .create_entities(&[entity("theirs")])
        .unwrap();
    // An atomic replace, as a copy tool or a restore does it.
    let staged = f.project.join(".claude/staged.db");
    std::fs::copy(&other, &staged).unwrap();
    std::fs::rename(&staged, f.db()).unwrap();
    assert_eq!(f.names(), ["theirs"]);
    f.create("next");
    assert_eq!(names_on_disk(&f.db()), ["theirs", "next"]);
    let events = f.events.lock();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].how, Displacement::Replaced);
}

#[test]
fn a_renamed_project_dir_falls_back_to_the_home_db_and_keeps_the_old_data() {
    let f = Fixture::new();
    f.create("before");
    let moved = f.root.join("projA-renamed");
    std::fs::rename(&f.project, &moved).unwrap();
    let db = f.create("after");
    let home_db = f.root.join("home/.claude/memory.db");
    assert_eq!(db, home_db);
    assert_eq!(names_on_disk(&home_db), ["after"]);
    assert_eq!(names_on_disk(&moved.join(".claude/memory.db")), ["before"]);
    assert!(!f.project.exists(), "the old project dir is not made again");
    let message = f.events.lock()[0].message();
    assert!(
        message.contains(&format!("writes now go to {}", home_db.display())),
        "{message}"
    );
}

#[test]
fn a_store_opened_directly_refuses_to_write_into_a_deleted_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("memory.db");
    let store = MemoryStore::open(&db).unwrap();
    store.create_entities(&[entity("a")]).unwrap();
    std::fs::remove_file(&db).unwrap();
    let error = store.create_entities(&[entity("b")]).unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Displaced {
                how: Displacement::Gone,
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("memory.db was deleted while in use")
    );
}

/// Writers keep writing while another thread deletes the project's `.claude/` again and again:
/// every write acknowledged after the last deletion must be in the DB at the path.
#[test]
fn concurrent_writers_and_deletions_lose_no_write_acknowledged_after_the_last_deletion() {
    let f = Arc::new(Fixture::new());
    let stop = Arc::new(AtomicBool::new(false));
    let deleting = {
        let (f, stop) = (f.clone(), stop.clone());
        std::thread::spawn(move || {
            for _ in 0..20 {
                std::thread::sleep(std::time::Duration::from_millis(5));
                let _ = std::fs::remove_dir_all(f.project.join(".claude"));
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (f, stop) = (f.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged_after_stop = Vec::new();
                let mut i = 0;
                loop {
                    let done = stop.load(Ordering::SeqCst);
                    let name = format!("w{w}-{i}");
                    i += 1;
                    if f.registry
                        .run(f.header(), |s| s.create_entities(&[entity(&name)]))
                        .is_ok()
                        && done
                    {
                        acknowledged_after_stop.push(name);
                    }
                    if done && acknowledged_after_stop.len() >= 5 {
                        return acknowledged_after_stop;
                    }
                }
            })
        })
        .collect();
    deleting.join().unwrap();
    let expected: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    let on_disk = names_on_disk(&f.db());
    for name in &expected {
        assert!(on_disk.contains(name), "{name} acknowledged but missing");
    }
}

#[derive(Debug, Clone)]
enum Step {
    Write,
    DeleteClaudeDir,
    DeleteDbFile,
    ReplaceDb,
    Read,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Write),
        1 => Just(Step::DeleteClaudeDir),
        1 => Just(Step::DeleteDbFile),
        1 => Just(Step::ReplaceDb),
        2 => Just(Step::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any interleaving of writes, reads and changes to the file: the DB at the path holds
    /// exactly what it held after the last change plus every write acknowledged since.
    #[test]
    fn no_acknowledged_write_is_missing_from_the_db_at_the_path(steps in proptest::collection::vec(step(), 1..40)) {
        let f = Fixture::new();
        let spare = f.root.join("spare.db");
        MemoryStore::open(&spare).unwrap().create_entities(&[entity("spare")]).unwrap();
        let mut expected: Vec<String> = Vec::new();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Write => {
                    let name = format!("e{i}");
                    f.create(&name);
                    expected.push(name);
                }
                Step::DeleteClaudeDir => {
                    let _ = std::fs::remove_dir_all(f.project.join(".claude"));
                    expected.clear();
                }
                Step::DeleteDbFile => {
                    let _ = std::fs::remove_file(f.db());
                    expected.clear();
                }
                Step::ReplaceDb => {
                    std::fs::create_dir_all(f.project.join(".claude")).unwrap();
                    let staged = f.project.join(".claude/staged.db");
                    std::fs::copy(&spare, &staged).unwrap();
                    std::fs::rename(&staged, f.db()).unwrap();
                    expected = vec!["spare".into()];
                }
                Step::Read => prop_assert_eq!(f.names(), expected.clone()),
            }
        }
        // Another program reads the file after the host let go of it.
        f.registry.close_all();
        if f.db().is_file() {
            prop_assert_eq!(names_on_disk(&f.db()), expected);
        }
    }
}
