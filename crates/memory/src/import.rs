//! Import of a reference server's `memory.jsonl` (one `{"type":"entity",...}` or
//! `{"type":"relation",...}` object per line), idempotent: what exists is merged, not doubled.

use std::io::BufRead;

use rusqlite::params;
use serde::Deserialize;

use crate::store::{entity_id, refresh_search_doc, search_doc};
use crate::{MemoryStore, StoreError};

/// A line that was not imported, by its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Entities that did not exist.
    pub entities_created: usize,
    /// Entities that existed and received at least one new observation.
    pub entities_merged: usize,
    /// Entities that existed with every observation of the line already present.
    pub entities_unchanged: usize,
    pub observations_added: usize,
    pub relations_created: usize,
    /// Relations that existed already.
    pub relations_existing: usize,
    pub bad_lines: Vec<BadLine>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    Entity {
        name: String,
        #[serde(rename = "entityType")]
        entity_type: String,
        #[serde(default)]
        observations: Vec<String>,
    },
    Relation {
        from: String,
        to: String,
        #[serde(rename = "relationType")]
        relation_type: String,
    },
}

/// Imports every good line of `reader` into `store` in one transaction; bad lines (not JSON,
/// unknown type, missing fields, not UTF-8) are reported by number and skipped. Blank lines
/// are ignored, as the reference server ignores them.
pub fn import_jsonl(
    store: &MemoryStore,
    mut reader: impl BufRead,
) -> Result<ImportReport, StoreError> {
    let mut lines = Vec::new();
    let mut report = ImportReport::default();
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| StoreError::Io {
                path: "<import input>".into(),
                source,
            })?;
        if n == 0 {
            break;
        }
        number += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) => {
                report.bad_lines.push(BadLine {
                    line: number,
                    reason: format!("not UTF-8: {e}"),
                });
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(text) {
            Ok(line) => lines.push(line),
            Err(e) => report.bad_lines.push(BadLine {
                line: number,
                reason: e.to_string(),
            }),
        }
    }
    store.write_with(|tx, docs| {
        let mut insert_entity = tx.prepare_cached(
            "INSERT INTO mem_entities(name, entity_type) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
        )?;
        let mut insert_observation = tx.prepare_cached(
            "INSERT OR IGNORE INTO mem_observations(entity_id, content) VALUES (?1, ?2)",
        )?;
        let mut insert_relation = tx.prepare_cached(
            "INSERT OR IGNORE INTO mem_relations(from_name, to_name, relation_type) VALUES (?1, ?2, ?3)",
        )?;
        for line in &lines {
            match line {
                Line::Entity {
                    name,
                    entity_type,
                    observations,
                } => {
                    if insert_entity.execute(params![name, entity_type])? == 1 {
                        let id = tx.last_insert_rowid();
                        let mut kept = Vec::new();
                        for content in observations {
                            if insert_observation.execute(params![id, content])? == 1 {
                                kept.push(content.clone());
                            }
                        }
                        let doc = search_doc(name, entity_type, &kept);
                        crate::search_index::insert(tx, id, &doc)?;
                        docs.push(doc);
                        report.entities_created += 1;
                        report.observations_added += kept.len();
                    } else {
                        #[expect(clippy::expect_used, reason = "INSERT OR IGNORE changed nothing, so the name exists in this transaction")]
                        let id = entity_id(tx, name)?.expect("the entity exists: its insert conflicted");
                        let mut added = 0;
                        for content in observations {
                            added += insert_observation.execute(params![id, content])?;
                        }
                        if added > 0 {
                            docs.push(refresh_search_doc(tx, id)?);
                            report.entities_merged += 1;
                            report.observations_added += added;
                        } else {
                            report.entities_unchanged += 1;
                        }
                    }
                }
                Line::Relation {
                    from,
                    to,
                    relation_type,
                } => {
                    if insert_relation.execute(params![from, to, relation_type])? == 1 {
                        report.relations_created += 1;
                    } else {
                        report.relations_existing += 1;
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(report)
}
