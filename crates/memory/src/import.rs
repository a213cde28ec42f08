//! A reference server's `memory.jsonl` (one `{"type":"entity",...}` or `{"type":"relation",...}`
//! object per line): import, idempotent (what exists is merged, not doubled), and export.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::model::{Entity, Relation};
use crate::store::{Inserted, add_contents, entity_id, insert_entity, insert_relation};
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

#[derive(Deserialize, Serialize)]
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
        for line in lines {
            match line {
                Line::Entity {
                    name,
                    entity_type,
                    observations,
                } => {
                    let entity = Entity {
                        name,
                        entity_type,
                        observations,
                    };
                    match insert_entity(tx, docs, &entity)? {
                        Inserted::Created(kept) => {
                            report.entities_created += 1;
                            report.observations_added += kept.len();
                        }
                        Inserted::Exists => {
                            #[expect(
                                clippy::expect_used,
                                reason = "the insert found the name in this transaction"
                            )]
                            let id = entity_id(tx, &entity.name)?
                                .expect("the entity exists: its insert conflicted");
                            let added = add_contents(tx, docs, id, &entity.observations)?;
                            if added.is_empty() {
                                report.entities_unchanged += 1;
                            } else {
                                report.entities_merged += 1;
                                report.observations_added += added.len();
                            }
                        }
                    }
                }
                Line::Relation {
                    from,
                    to,
                    relation_type,
                } => {
                    let relation = Relation {
                        from,
                        to,
                        relation_type,
                    };
                    if insert_relation(tx, &relation)? {
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

/// `graph` in the reference server's `memory.jsonl` format: one line per entity, then one per
/// relation, so that its file (or this importer) reads it back.
pub fn export_jsonl(graph: &crate::Graph) -> String {
    let entities = graph.entities.iter().map(|e| Line::Entity {
        name: e.name.clone(),
        entity_type: e.entity_type.clone(),
        observations: e.observations.clone(),
    });
    let relations = graph.relations.iter().map(|r| Line::Relation {
        from: r.from.clone(),
        to: r.to.clone(),
        relation_type: r.relation_type.clone(),
    });
    let mut out = String::new();
    for line in entities.chain(relations) {
        // Strings and lists of strings always serialise.
        out.push_str(&serde_json::to_string(&line).unwrap_or_default());
        out.push('\n');
    }
    out
}
