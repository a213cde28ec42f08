//! Tests of `MemoryStore`: the reference server's semantics, search, schema detection and
//! migration, concurrency.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use msm_memory::{
    AddedObservations, Entity, MemoryStore, ObservationAddition, ObservationDeletion, Relation,
    StoreError,
};

fn entity(name: &str, entity_type: &str, observations: &[&str]) -> Entity {
    Entity {
        name: name.into(),
        entity_type: entity_type.into(),
        observations: observations.iter().map(|s| s.to_string()).collect(),
    }
}

fn relation(from: &str, to: &str, relation_type: &str) -> Relation {
    Relation {
        from: from.into(),
        to: to.into(),
        relation_type: relation_type.into(),
    }
}

fn names(entities: &[Entity]) -> Vec<&str> {
    entities.iter().map(|e| e.name.as_str()).collect()
}

fn open_temp() -> (tempfile::TempDir, MemoryStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::open(&dir.path().join("memory.db")).unwrap();
    (dir, store)
}

#[test]
fn create_entities_returns_only_new_names_and_keeps_insertion_order() {
    let (_dir, store) = open_temp();
    let first = store
        .create_entities(&[entity("B", "t", &["b1", "b1", "b2"]), entity("A", "t", &[])])
        .unwrap();
    assert_eq!(names(&first), ["B", "A"]);
    assert_eq!(
        first[0].observations,
        ["b1", "b2"],
        "a repeated observation is kept once"
    );
    let second = store
        .create_entities(&[
            entity("A", "other", &["x"]),
            entity("C", "t", &["c"]),
            entity("C", "u", &[]),
        ])
        .unwrap();
    assert_eq!(second, [entity("C", "t", &["c"])]);
    let graph = store.read_graph().unwrap();
    assert_eq!(names(&graph.entities), ["B", "A", "C"]);
    assert_eq!(
        graph.entities[1],
        entity("A", "t", &[]),
        "an existing entity is not changed"
    );
}

#[test]
fn create_relations_allows_dangling_endpoints_and_returns_only_new() {
    let (_dir, store) = open_temp();
    let created = store
        .create_relations(&[relation("X", "Y", "knows"), relation("X", "Y", "likes")])
        .unwrap();
    assert_eq!(created.len(), 2);
    let again = store
        .create_relations(&[relation("X", "Y", "knows"), relation("Y", "X", "knows")])
        .unwrap();
    assert_eq!(again, [relation("Y", "X", "knows")]);
    assert_eq!(store.read_graph().unwrap().relations.len(), 3);
}

#[test]
fn add_observations_returns_added_contents_and_fails_whole_for_a_missing_entity() {
    let (_dir, store) = open_temp();
    store
        .create_entities(&[entity("A", "t", &["one"])])
        .unwrap();
    let added = store
        .add_observations(&[ObservationAddition {
            entity_name: "A".into(),
            contents: vec!["one".into(), "two".into()],
        }])
        .unwrap();
    assert_eq!(
        added,
        [AddedObservations {
            entity_name: "A".into(),
            added_observations: vec!["two".into()]
        }]
    );
    let err = store
        .add_observations(&[
            ObservationAddition {
                entity_name: "A".into(),
                contents: vec!["three".into()],
            },
            ObservationAddition {
                entity_name: "Missing".into(),
                contents: vec!["x".into()],
            },
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::EntityNotFound(_)));
    assert_eq!(err.to_string(), "Entity with name Missing not found");
    assert_eq!(
        store.read_graph().unwrap().entities[0].observations,
        ["one", "two"],
        "the failed call changed nothing"
    );
    assert!(store.search_nodes("three").unwrap().entities.is_empty());
    assert_eq!(names(&store.search_nodes("TWO").unwrap().entities), ["A"]);
}

#[test]
fn deletes_ignore_missing_things_and_delete_entities_removes_touching_relations() {
    let (_dir, store) = open_temp();
    store
        .create_entities(&[
            entity("A", "t", &["a1", "a2"]),
            entity("B", "t", &[]),
            entity("C", "t", &[]),
        ])
        .unwrap();
    store
        .create_relations(&[
            relation("A", "B", "r"),
            relation("C", "A", "r"),
            relation("B", "C", "r"),
        ])
        .unwrap();
    store
        .delete_observations(&[
            ObservationDeletion {
                entity_name: "A".into(),
                observations: vec!["a1".into(), "nope".into()],
            },
            ObservationDeletion {
                entity_name: "Missing".into(),
                observations: vec!["a2".into()],
            },
        ])
        .unwrap();
    assert!(store.search_nodes("a1").unwrap().entities.is_empty());
    store
        .delete_entities(&["A".into(), "Missing".into()])
        .unwrap();
    let graph = store.read_graph().unwrap();
    assert_eq!(names(&graph.entities), ["B", "C"]);
    assert_eq!(graph.relations, [relation("B", "C", "r")]);
    store
        .delete_relations(&[relation("B", "C", "r"), relation("no", "such", "r")])
        .unwrap();
    assert!(store.read_graph().unwrap().relations.is_empty());
    // A re-created entity goes to the end, with none of its old observations.
    store.create_entities(&[entity("A", "t", &[])]).unwrap();
    let graph = store.read_graph().unwrap();
    assert_eq!(names(&graph.entities), ["B", "C", "A"]);
    assert!(graph.entities[2].observations.is_empty());
}

#[test]
fn search_is_a_literal_unicode_case_insensitive_substring_match() {
    let (_dir, store) = open_temp();
    store
        .create_entities(&[
            entity("Straße", "Ort", &["in München"]),
            entity("ÄÖÜ GmbH", "Firma", &["100% sicher"]),
            entity("snake_case", "ident", &["a_b"]),
            entity("ΟΔΟΣ", "greek", &[]),
            entity("İstanbul", "city", &[]),
            entity("quote\"d", "x", &["line\nbreak"]),
            entity("plain", "kind", &["abc", "xyz"]),
        ])
        .unwrap();
    // (query, expected names): the reference's `toLowerCase().includes(toLowerCase())`.
    let cases: &[(&str, &[&str])] = &[
        ("STRASSE", &[]),
        ("straße", &["Straße"]),
        ("STRAßE", &["Straße"]),
        ("münchen", &["Straße"]),
        ("MÜNCHEN", &["Straße"]),
        ("äöü", &["ÄÖÜ GmbH"]),
        ("Ä", &["ÄÖÜ GmbH"]),
        ("%", &["ÄÖÜ GmbH"]),
        ("0%", &["ÄÖÜ GmbH"]),
        ("100% s", &["ÄÖÜ GmbH"]),
        ("_", &["snake_case"]),
        ("e_c", &["snake_case"]),
        ("a_b", &["snake_case"]),
        ("s%", &[]),
        ("οδος", &["ΟΔΟΣ"]),
        ("ΟΔΟΣ", &["ΟΔΟΣ"]),
        ("i̇st", &["İstanbul"]),
        ("e\"d", &["quote\"d"]),
        ("x\"d", &[]),
        ("te\"d", &["quote\"d"]),
        ("\"", &["quote\"d"]),
        ("e\nb", &["quote\"d"]),
        ("d\nx", &[]),
        ("c\nx", &[]),
        ("ABC", &["plain"]),
        ("KIND", &["plain"]),
        ("ind", &["plain"]),
        (
            "",
            &[
                "Straße",
                "ÄÖÜ GmbH",
                "snake_case",
                "ΟΔΟΣ",
                "İstanbul",
                "quote\"d",
                "plain",
            ],
        ),
        ("zzz", &[]),
    ];
    for (query, expected) in cases {
        let found = store.search_nodes(query).unwrap();
        assert_eq!(&names(&found.entities), expected, "query {query:?}");
        // The same answer as the plain definition over the whole graph.
        let key = query.to_lowercase();
        let plain: Vec<String> = store
            .read_graph()
            .unwrap()
            .entities
            .into_iter()
            .filter(|e| {
                e.name.to_lowercase().contains(&key)
                    || e.entity_type.to_lowercase().contains(&key)
                    || e.observations
                        .iter()
                        .any(|o| o.to_lowercase().contains(&key))
            })
            .map(|e| e.name)
            .collect();
        assert_eq!(names(&found.entities), plain, "query {query:?}");
    }
}

#[test]
fn search_and_open_return_relations_with_at_least_one_endpoint_in_the_result() {
    let (_dir, store) = open_temp();
    store
        .create_entities(&[
            entity("alpha", "t", &[]),
            entity("beta", "t", &[]),
            entity("gamma", "t", &[]),
        ])
        .unwrap();
    store
        .create_relations(&[
            relation("alpha", "beta", "r"),
            relation("gamma", "alpha", "r"),
            relation("beta", "gamma", "r"),
            relation("alpha", "ghost", "r"),
        ])
        .unwrap();
    let found = store.search_nodes("alph").unwrap();
    assert_eq!(names(&found.entities), ["alpha"]);
    assert_eq!(
        found.relations,
        [
            relation("alpha", "beta", "r"),
            relation("gamma", "alpha", "r"),
            relation("alpha", "ghost", "r")
        ]
    );
    let opened = store
        .open_nodes(&[
            "gamma".into(),
            "beta".into(),
            "nobody".into(),
            "beta".into(),
        ])
        .unwrap();
    assert_eq!(
        names(&opened.entities),
        ["beta", "gamma"],
        "graph order, each once"
    );
    assert_eq!(
        opened.relations,
        [
            relation("alpha", "beta", "r"),
            relation("gamma", "alpha", "r"),
            relation("beta", "gamma", "r")
        ]
    );
    assert!(store.open_nodes(&[]).unwrap().relations.is_empty());
}

#[test]
fn search_index_follows_every_change() {
    let (_dir, store) = open_temp();
    store
        .create_entities(&[entity("E", "t", &["first note"])])
        .unwrap();
    assert_eq!(store.search_nodes("first").unwrap().entities.len(), 1);
    store
        .add_observations(&[ObservationAddition {
            entity_name: "E".into(),
            contents: vec!["second note".into()],
        }])
        .unwrap();
    assert_eq!(store.search_nodes("second").unwrap().entities.len(), 1);
    store
        .delete_observations(&[ObservationDeletion {
            entity_name: "E".into(),
            observations: vec!["first note".into()],
        }])
        .unwrap();
    assert!(store.search_nodes("first").unwrap().entities.is_empty());
    store.delete_entities(&["E".into()]).unwrap();
    assert!(store.search_nodes("note").unwrap().entities.is_empty());
    store.rebuild_search_index().unwrap();
    assert!(store.search_nodes("note").unwrap().entities.is_empty());
}

#[test]
fn a_new_db_is_wal_with_our_schema_version() {
    let (dir, store) = open_temp();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("memory.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    // Reopening an existing DB of ours keeps its data.
    let store = MemoryStore::open(&dir.path().join("memory.db")).unwrap();
    assert!(store.read_graph().unwrap().entities.is_empty());
}

const SEED_SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
CREATE TABLE entities(name TEXT PRIMARY KEY, entity_type TEXT NOT NULL);
CREATE TABLE observations(id INTEGER PRIMARY KEY AUTOINCREMENT, entity_name TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, content TEXT NOT NULL, UNIQUE(entity_name, content));
CREATE TABLE relations(id INTEGER PRIMARY KEY AUTOINCREMENT, from_entity TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, to_entity TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, relation_type TEXT NOT NULL, UNIQUE(from_entity, to_entity, relation_type));
CREATE INDEX idx_observations_entity ON observations(entity_name);
CREATE INDEX idx_relations_from ON relations(from_entity);
CREATE INDEX idx_relations_to ON relations(to_entity);
";

fn make_seed_db(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(SEED_SCHEMA).unwrap();
    conn.execute_batch(
        "INSERT INTO entities VALUES ('Zed', 'person'), ('Amy', 'person'), ('Köln', 'city');
         INSERT INTO observations(entity_name, content) VALUES
             ('Zed', 'likes tea'), ('Amy', 'ÄÖÜ umlauts'), ('Zed', 'lives in Köln');
         INSERT INTO relations(from_entity, to_entity, relation_type) VALUES
             ('Zed', 'Köln', 'lives in'), ('Amy', 'Zed', 'knows');",
    )
    .unwrap();
}

#[test]
fn a_seed_node_db_is_backed_up_and_migrated_keeping_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    make_seed_db(&path);
    let store = MemoryStore::open(&path).unwrap();
    let graph = store.read_graph().unwrap();
    assert_eq!(
        graph.entities,
        [
            entity("Zed", "person", &["likes tea", "lives in Köln"]),
            entity("Amy", "person", &["ÄÖÜ umlauts"]),
            entity("Köln", "city", &[]),
        ]
    );
    assert_eq!(
        graph.relations,
        [
            relation("Zed", "Köln", "lives in"),
            relation("Amy", "Zed", "knows")
        ]
    );
    assert_eq!(names(&store.search_nodes("äöü").unwrap().entities), ["Amy"]);
    assert_eq!(
        names(&store.search_nodes("KÖLN").unwrap().entities),
        ["Zed", "Köln"]
    );
    // Dangling relations now allowed; the migrated DB behaves like a new one.
    store
        .create_relations(&[relation("Amy", "ghost", "r")])
        .unwrap();
    drop(store);

    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("memory.db.bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = rusqlite::Connection::open(dir.path().join(&backups[0])).unwrap();
    let count: i64 = backup
        .query_row("SELECT count(*) FROM observations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3, "the backup holds the seed's data in its schema");
    drop(backup);

    // Opening again neither migrates nor backs up twice.
    let store = MemoryStore::open(&path).unwrap();
    assert_eq!(store.read_graph().unwrap().entities.len(), 3);
    let backups_after = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("memory.db.bak-")
        })
        .count();
    assert_eq!(backups_after, 1);
}

#[test]
fn files_in_unknown_schemas_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.db");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes(body) VALUES ('keep me');")
            .unwrap();
    }
    let text = dir.path().join("text.db");
    std::fs::write(
        &text,
        b"this is not a database at all, just some text that is long enough",
    )
    .unwrap();
    let newer = dir.path().join("newer.db");
    {
        let store = MemoryStore::open(&newer).unwrap();
        drop(store);
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    for (path, expect_newer) in [(&foreign, false), (&text, false), (&newer, true)] {
        let before = std::fs::read(path).unwrap();
        let err = MemoryStore::open(path).unwrap_err();
        match (&err, expect_newer) {
            (StoreError::UnknownSchema { .. }, false) | (StoreError::NewerSchema { .. }, true) => {}
            _ => panic!("{}: unexpected {err:?}", path.display()),
        }
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(
            std::fs::read(path).unwrap(),
            before,
            "{} untouched",
            path.display()
        );
    }
    let wal = dir.path().join("foreign.db-wal");
    assert!(!wal.exists(), "no WAL switch on a foreign file");
}

#[test]
fn ten_threads_with_their_own_connections_write_at_once_without_lock_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    MemoryStore::open(&path).unwrap();
    let threads: Vec<_> = (0..10)
        .map(|t| {
            // Separate connections, as separate processes would have.
            let store = Arc::new(MemoryStore::open(&path).unwrap());
            std::thread::spawn(move || {
                for i in 0..50 {
                    store
                        .create_entities(&[entity(
                            &format!("t{t}-e{i}"),
                            "load",
                            &["obs one", "obs two"],
                        )])
                        .unwrap();
                    store
                        .create_relations(&[relation(&format!("t{t}-e{i}"), "hub", "points to")])
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no writer failed");
    }
    let store = MemoryStore::open(&path).unwrap();
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.entities, counts.relations, counts.observations),
        (500, 500, 1000)
    );
    assert_eq!(store.search_nodes("load").unwrap().entities.len(), 500);
}

#[test]
fn graph_page_pages_matching_entities_with_their_relations() {
    let (_dir, store) = open_temp();
    let entities: Vec<Entity> = (0..25)
        .map(|i| {
            entity(
                &format!("item{i:02}"),
                if i % 2 == 0 { "even" } else { "odd" },
                &[],
            )
        })
        .collect();
    store.create_entities(&entities).unwrap();
    store
        .create_relations(&[relation("item02", "item03", "next")])
        .unwrap();
    let page = store.graph_page("EVEN", 1, 2).unwrap();
    assert_eq!(page.total, 13);
    assert_eq!(names(&page.entities), ["item02", "item04"]);
    assert_eq!(page.relations, [relation("item02", "item03", "next")]);
    let all = store.graph_page("", 20, 10).unwrap();
    assert_eq!((all.total, all.entities.len()), (25, 5));
}

#[test]
fn search_stays_exact_when_another_connection_wrote_the_data() {
    // The second store's in-memory trigram counts never saw these documents: only its speed
    // may suffer, never its answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let reader = MemoryStore::open(&path).unwrap();
    let writer = MemoryStore::open(&path).unwrap();
    writer
        .create_entities(&[
            entity("Quarzuhr", "thing", &["tickt leise"]),
            entity("Sanduhr", "thing", &["rieselt"]),
        ])
        .unwrap();
    for (query, expected) in [
        ("UHR", vec!["Quarzuhr", "Sanduhr"]),
        ("quarz", vec!["Quarzuhr"]),
        ("TICKT LEISE", vec!["Quarzuhr"]),
        ("nothing", vec![]),
    ] {
        assert_eq!(
            names(&reader.search_nodes(query).unwrap().entities),
            expected,
            "{query}"
        );
    }
}

#[test]
fn searches_run_beside_writers_on_one_shared_store() {
    let (_dir, store) = open_temp();
    let store = Arc::new(store);
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    store
                        .create_entities(&[entity(
                            &format!("w{t}-{i}"),
                            "shared kind",
                            &["payload"],
                        )])
                        .unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..100 {
                    let seen = store.search_nodes("SHARED KIND").unwrap().entities.len();
                    assert!(seen >= last, "a reader never sees fewer committed entities");
                    last = seen;
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().expect("no thread failed");
    }
    assert_eq!(
        store.search_nodes("shared kind").unwrap().entities.len(),
        400
    );
}

#[test]
fn the_wal_is_checkpointed_off_the_write_path_once_it_grows() {
    let (dir, store) = open_temp();
    let db = dir.path().join("memory.db");
    let initial = std::fs::metadata(&db).unwrap().len();
    for i in 0..400 {
        let name = format!("entity {i}");
        store
            .create_entities(&[entity(
                &name,
                "t",
                &["an observation long enough to fill pages"],
            )])
            .unwrap();
    }
    // The checkpoint thread copies the WAL into the DB file (SQLite's own one is off).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&db).unwrap().len() <= initial {
        assert!(std::time::Instant::now() < deadline, "no checkpoint ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(store);
}
