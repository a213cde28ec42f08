//! Search answers equal the reference semantics (case-insensitive literal substring) for every
//! shape of key, whichever index narrows the candidates: trigrams, digit runs, or a scan.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use msm_memory::{Entity, MemoryStore, search_key};
use proptest::prelude::*;

fn brute_force(entities: &[Entity], query: &str) -> Vec<String> {
    let key = search_key(query);
    entities
        .iter()
        .filter(|e| {
            search_key(&e.name).contains(&key)
                || search_key(&e.entity_type).contains(&key)
                || e.observations.iter().any(|o| search_key(o).contains(&key))
        })
        .map(|e| e.name.clone())
        .collect()
}

fn searched(store: &MemoryStore, query: &str) -> Vec<String> {
    store
        .search_nodes(query)
        .unwrap()
        .entities
        .into_iter()
        .map(|e| e.name)
        .collect()
}

fn text() -> impl Strategy<Value = String> {
    // Digits weigh heavily: runs of every length, next to letters, dots and CJK.
    proptest::string::string_regex("[0-9]{0,9}([a-fs. #/-]|[0-9]{1,8}|決定){0,6}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn digit_and_mixed_keys_find_exactly_what_a_plain_scan_finds(
        observations in proptest::collection::vec(text(), 1..30),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..12, 1usize..12), 1..12),
        extra in proptest::collection::vec("[0-9]{4,9}", 0..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = MemoryStore::open(&dir.path().join("memory.db")).unwrap();
        let entities: Vec<Entity> = observations
            .iter()
            .enumerate()
            .map(|(i, o)| Entity { name: format!("e{i}"), entity_type: "t".into(), observations: vec![o.clone()] })
            .collect();
        store.create_entities(&entities).unwrap();
        // Keys cut from the data at any place (mid-run too), and digit strings of their own.
        let mut keys: Vec<String> = picks
            .iter()
            .map(|(index, start, len)| {
                let chars: Vec<char> = observations[index.index(observations.len())].chars().collect();
                let start = (*start).min(chars.len());
                chars[start..(start + len).min(chars.len())].iter().collect()
            })
            .collect();
        keys.extend(extra);
        for key in keys {
            prop_assert_eq!(searched(&store, &key), brute_force(&entities, &key), "key {:?}", key);
        }
        // After edits to the documents, the digit index follows them.
        store.delete_entities(&["e0".to_owned()]).unwrap();
        let rest = &entities[1..];
        for o in observations.iter().skip(1).take(3) {
            prop_assert_eq!(searched(&store, o), brute_force(rest, o));
        }
    }
}

#[test]
fn a_schema_1_db_gains_the_digit_index_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("memory.db");
    let entity = Entity {
        name: "ticket".into(),
        entity_type: "bug".into(),
        observations: vec!["serial s0245489".into()],
    };
    MemoryStore::open(&path)
        .unwrap()
        .create_entities(&[entity])
        .unwrap();
    // What version 1 looked like: no digit index.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE mem_digit_runs; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let store = MemoryStore::open(&path).unwrap();
    assert_eq!(searched(&store, "245489"), ["ticket"]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    let indexed: i64 = conn
        .query_row(
            "SELECT count(*) FROM mem_digit_runs WHERE mem_digit_runs MATCH '5489*'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1, "the entity's digit runs are indexed");
}
