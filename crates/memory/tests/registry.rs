//! Tests of `StoreRegistry` (project path → DB, caching, known DBs) and of the JSONL import.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use msm_memory::{Entity, Relation, StoreRegistry, import_jsonl};

fn entity(name: &str) -> Entity {
    Entity {
        name: name.into(),
        entity_type: "t".into(),
        observations: vec![],
    }
}

struct Fixture {
    dir: tempfile::TempDir,
    registry: StoreRegistry,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("home")).unwrap();
    let registry = StoreRegistry::new(
        dir.path().join("home"),
        dir.path().join("state/memory-dbs.json"),
    );
    Fixture { dir, registry }
}

#[test]
fn project_paths_select_their_db_and_bad_ones_fall_back_to_home() {
    let f = fixture();
    let root = f.dir.path().canonicalize().unwrap();
    let project = root.join("project");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(root.join("a-file"), b"x").unwrap();
    let home_db = root.join("home/.claude/memory.db");
    let project_db = project.join(".claude/memory.db");
    let project_str = project.to_str().unwrap();
    // (header value, expected DB)
    let cases: Vec<(Option<String>, &std::path::Path)> = vec![
        (None, &home_db),
        (Some(project_str.into()), &project_db),
        (Some(format!("{project_str}/")), &project_db),
        (Some(format!("{project_str}/./")), &project_db),
        (Some("relative/dir".into()), &home_db),
        (Some("".into()), &home_db),
        (
            Some(root.join("missing").to_str().unwrap().into()),
            &home_db,
        ),
        (Some(format!("{project_str}/../project")), &home_db),
        (Some(format!("{project_str}\0evil")), &home_db),
        (Some(root.join("a-file").to_str().unwrap().into()), &home_db),
    ];
    for (header, expected) in cases {
        let store = f.registry.store_for_project(header.as_deref()).unwrap();
        assert_eq!(store.path(), expected, "header {header:?}");
    }
    assert!(!root.join("a-file/.claude").exists());
}

#[test]
fn one_store_per_db_and_projects_never_see_each_others_data() {
    let f = fixture();
    let a = f.dir.path().join("a");
    let b = f.dir.path().join("b");
    std::fs::create_dir(&a).unwrap();
    std::fs::create_dir(&b).unwrap();
    let store_a = f.registry.store_for_project(a.to_str()).unwrap();
    let store_a_again = f.registry.store_for_project(a.to_str()).unwrap();
    assert!(Arc::ptr_eq(&store_a, &store_a_again), "cached");
    let store_b = f.registry.store_for_project(b.to_str()).unwrap();
    store_a.create_entities(&[entity("only in a")]).unwrap();
    assert!(store_b.search_nodes("only").unwrap().entities.is_empty());
    assert!(
        f.registry
            .store_for_project(None)
            .unwrap()
            .read_graph()
            .unwrap()
            .entities
            .is_empty()
    );
    assert_eq!(store_a.search_nodes("only").unwrap().entities.len(), 1);
}

#[test]
fn known_dbs_survive_a_restart_with_stable_ids_counts_and_pages() {
    let f = fixture();
    let project = f.dir.path().join("p");
    std::fs::create_dir(&project).unwrap();
    let store = f.registry.store_for_project(project.to_str()).unwrap();
    store
        .create_entities(&[entity("one"), entity("two")])
        .unwrap();
    store
        .create_relations(&[Relation {
            from: "one".into(),
            to: "two".into(),
            relation_type: "r".into(),
        }])
        .unwrap();
    f.registry.store_for_project(None).unwrap();
    let before = f.registry.known_dbs();
    assert_eq!(before.len(), 2);
    drop(store);
    f.registry.close_all();

    let restarted = StoreRegistry::new(
        f.dir.path().join("home"),
        f.dir.path().join("state/memory-dbs.json"),
    );
    let after = restarted.known_dbs();
    assert_eq!(after.len(), 2);
    let info = after
        .iter()
        .find(|d| d.project.is_some())
        .expect("the project DB is listed");
    assert_eq!(
        info.id,
        before.iter().find(|d| d.project.is_some()).unwrap().id
    );
    assert_eq!(
        info.project.as_deref(),
        Some(project.canonicalize().unwrap().as_path())
    );
    assert!(info.exists);
    assert!(info.size_bytes > 0);
    assert!(info.last_write.is_some());
    let counts = info.counts.unwrap();
    assert_eq!(
        (counts.entities, counts.relations, counts.observations),
        (2, 1, 0)
    );
    let page = restarted.graph_page(&info.id, "TWO", 0, 10).unwrap();
    assert_eq!(page.entities.len(), 1);
    assert_eq!(page.relations.len(), 1);
    assert!(restarted.graph_page("nope", "", 0, 10).is_err());
}

#[test]
fn a_db_in_an_unknown_schema_is_listed_with_its_error_and_tool_calls_fail_clearly() {
    let f = fixture();
    let project = f.dir.path().join("p");
    std::fs::create_dir_all(project.join(".claude")).unwrap();
    let db = project.join(".claude/memory.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE other(x)")
        .unwrap();
    let err = f.registry.store_for_project(project.to_str()).unwrap_err();
    assert!(err.to_string().contains("left untouched"), "{err}");
}

const JSONL: &str = r#"{"type":"entity","name":"Alice","entityType":"person","observations":["likes tea","ÄÖÜ"]}
{"type":"entity","name":"Bob","entityType":"person","observations":[]}

{"type":"relation","from":"Alice","to":"Bob","relationType":"knows"}
this is not json
{"type":"entity","name":"NoType"}
{"type":"banana","name":"x"}
{"type":"relation","from":"Alice","to":"Ghost","relationType":"haunts"}
{"type":"entity","name":"Alice","entityType":"person","observations":["likes tea","plays chess"]}
"#;

#[test]
fn import_reports_counts_and_bad_lines_and_is_idempotent() {
    let f = fixture();
    let store = f.registry.store_for_project(None).unwrap();
    let report = import_jsonl(&store, JSONL.as_bytes()).unwrap();
    assert_eq!(report.entities_created, 2);
    assert_eq!(
        report.entities_merged, 1,
        "the second Alice line adds one observation"
    );
    assert_eq!(report.observations_added, 3);
    assert_eq!(report.relations_created, 2);
    let bad: Vec<usize> = report.bad_lines.iter().map(|b| b.line).collect();
    assert_eq!(bad, [5, 6, 7]);
    let graph = store.read_graph().unwrap();
    assert_eq!(
        graph.entities[0].observations,
        ["likes tea", "ÄÖÜ", "plays chess"]
    );
    assert_eq!(store.search_nodes("chess").unwrap().entities.len(), 1);

    let again = import_jsonl(&store, JSONL.as_bytes()).unwrap();
    assert_eq!(
        (
            again.entities_created,
            again.entities_merged,
            again.entities_unchanged
        ),
        (0, 0, 3)
    );
    assert_eq!((again.relations_created, again.relations_existing), (0, 2));
    assert_eq!(store.read_graph().unwrap(), graph);
}
