//! The search index of the entities, and the only code that writes it: one FTS5 trigram
//! document per entity (`mem_search`, rowid = entity id) and the suffixes of the document's
//! digit runs (`mem_digit_runs`), so the two never drift apart.
//!
//! Why a side index for digits: a key such as `s0245489` or `4821` has no rare trigram (ten
//! digits make only a thousand trigrams, each in about 1% of the documents), so even the best
//! trigrams of the key read thousands of index entries. Every substring of a digit run is a
//! prefix of one of the run's suffixes, so one FTS5 prefix query over the suffixes (as
//! tokens of a contentless table) finds every document that holds the key's longest digit run:
//! usually one or two. FTS5 rather than a b-tree of suffixes: it appends each commit's tokens
//! as one small segment, where a b-tree would dirty a page per suffix (twice the write cost).

use rusqlite::{OptionalExtension, Transaction, params};

use crate::StoreError;

/// Digit runs shorter than this are not indexed, and keys need a run this long to use the
/// index (shorter runs match too many documents to narrow anything).
const MIN_DIGIT_RUN: usize = 4;

/// A digit run matching more documents than this is searched through the trigrams instead.
const MAX_DIGIT_CANDIDATES: usize = 256;

/// Adds entity `id`'s search document.
pub(crate) fn insert(tx: &Transaction<'_>, id: i64, doc: &str) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO mem_search(rowid, doc) VALUES (?1, ?2)")?
        .execute(params![id, doc])?;
    let suffixes = digit_run_suffixes(doc);
    if !suffixes.is_empty() {
        tx.prepare_cached("INSERT INTO mem_digit_runs(rowid, suffixes) VALUES (?1, ?2)")?
            .execute(params![id, suffixes])?;
    }
    Ok(())
}

/// Removes entity `id`'s search document, if it has one.
pub(crate) fn delete(tx: &Transaction<'_>, id: i64) -> Result<(), StoreError> {
    let old: Option<String> = tx
        .prepare_cached("SELECT doc FROM mem_search WHERE rowid = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(old) = old else {
        return Ok(());
    };
    tx.prepare_cached("DELETE FROM mem_search WHERE rowid = ?1")?
        .execute([id])?;
    let suffixes = digit_run_suffixes(&old);
    if !suffixes.is_empty() {
        // A contentless table forgets a row given the text it was indexed with.
        tx.prepare_cached(
            "INSERT INTO mem_digit_runs(mem_digit_runs, rowid, suffixes) VALUES ('delete', ?1, ?2)",
        )?
        .execute(params![id, suffixes])?;
    }
    Ok(())
}

/// Empties both parts of the index.
pub(crate) fn clear(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "DELETE FROM mem_search; INSERT INTO mem_digit_runs(mem_digit_runs) VALUES ('delete-all');",
    )?;
    Ok(())
}

/// Fills the digit-run part from the documents (the migration to schema 2).
pub(crate) fn index_digit_runs(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut docs = tx.prepare("SELECT rowid, doc FROM mem_search")?;
    let mut insert = tx.prepare("INSERT INTO mem_digit_runs(rowid, suffixes) VALUES (?1, ?2)")?;
    let mut rows = docs.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let suffixes = digit_run_suffixes(&row.get::<_, String>(1)?);
        if !suffixes.is_empty() {
            insert.execute(params![id, suffixes])?;
        }
    }
    Ok(())
}

/// The ids (ascending) of the entities whose document holds the longest digit run of `key`:
/// a superset of those that contain `key`. `None` when the key has no run long enough or
/// the run is too common to narrow the search.
pub(crate) fn digit_candidates(
    tx: &Transaction<'_>,
    key: &str,
) -> Result<Option<Vec<i64>>, StoreError> {
    let Some(run) = digit_runs(key).max_by_key(|r| r.len()) else {
        return Ok(None);
    };
    if run.len() < MIN_DIGIT_RUN {
        return Ok(None);
    }
    // The documents with a token (a suffix) that starts with the run, in rowid order.
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT rowid FROM mem_digit_runs WHERE mem_digit_runs MATCH ?1 ORDER BY rowid LIMIT ?2",
        )?
        .query_map(
            params![format!("{run}*"), MAX_DIGIT_CANDIDATES as i64 + 1],
            |r| r.get(0),
        )?
        .collect::<Result<_, _>>()?;
    if ids.len() > MAX_DIGIT_CANDIDATES {
        return Ok(None);
    }
    Ok(Some(ids))
}

/// The maximal runs of ASCII digits in `text`.
fn digit_runs(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
}

/// The suffixes, at least [`MIN_DIGIT_RUN`] long, of the long-enough digit runs of `doc`,
/// separated by spaces (the text the digit-run table indexes; empty when there are none).
fn digit_run_suffixes(doc: &str) -> String {
    let mut out = String::new();
    for run in digit_runs(doc).filter(|run| run.len() >= MIN_DIGIT_RUN) {
        for start in 0..=run.len() - MIN_DIGIT_RUN {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&run[start..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_substring_of_a_run_is_a_prefix_of_an_indexed_suffix() {
        let doc = "serial s0245489, port 80\nissue #12345";
        let suffixes = digit_run_suffixes(doc);
        let suffixes: Vec<&str> = suffixes.split(' ').collect();
        assert_eq!(
            suffixes,
            ["0245489", "245489", "45489", "5489", "12345", "2345"]
        );
        for key in ["0245", "2454", "5489", "45489", "1234", "2345"] {
            assert!(
                suffixes.iter().any(|s| s.starts_with(key)),
                "{key} is findable"
            );
        }
    }

    #[test]
    fn only_ascii_digits_make_runs() {
        assert_eq!(
            digit_runs("v1.2.34 ٣٣٣٣ 2024").collect::<Vec<_>>(),
            ["1", "2", "34", "2024"]
        );
    }
}
