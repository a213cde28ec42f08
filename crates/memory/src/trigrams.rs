//! Document frequencies of the search index's trigrams, kept in memory so that a search can ask
//! the FTS5 index for a few rare trigrams of its key (an `AND` of them) instead of the whole
//! phrase: a phrase of common trigrams walks nearly every document. The answer stays exact: the
//! candidates are a superset that the caller checks against each document. The counts are only
//! a guide (never decremented, and another process's writes are not seen until reopening).
//!
//! Which trigrams: the rarest first, then more until the estimated candidates are few. Keys of
//! a small alphabet (digit serials, hex hashes, versions) have no rare trigram, only many
//! common ones; overlapping trigrams (`024`, `245`) mostly occur together and narrow nothing,
//! so trigrams that share no character with those already picked go first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rusqlite::Connection;

/// At most this many trigrams of a key go into the index query (each costs a doclist read).
const MAX_TRIGRAMS_PER_QUERY: usize = 6;

/// Trigrams are added until the estimated number of candidates falls to this.
const ENOUGH_CANDIDATES: f64 = 4.0;

pub(crate) struct TrigramStats {
    doc_counts: Mutex<HashMap<u64, u32>>,
    /// Documents counted (an upper bound: deletions are not subtracted).
    documents: AtomicU64,
}

/// One trigram of a key: its packed value, characters, and position in the key.
struct Window {
    key: u64,
    chars: [char; 3],
    at: usize,
}

fn pack(a: char, b: char, c: char) -> u64 {
    (u64::from(a) << 42) | (u64::from(b) << 21) | u64::from(c)
}

/// The distinct trigrams of `text` (consecutive windows of three characters).
fn trigrams(text: &str) -> Vec<(u64, [char; 3])> {
    let chars: Vec<char> = text.chars().collect();
    let mut out: Vec<(u64, [char; 3])> = chars
        .windows(3)
        .map(|w| (pack(w[0], w[1], w[2]), [w[0], w[1], w[2]]))
        .collect();
    out.sort_unstable_by_key(|(k, _)| *k);
    out.dedup_by_key(|(k, _)| *k);
    out
}

impl TrigramStats {
    /// Reads the counts from the index (`fts5vocab`, in the temp schema: the file is not
    /// written). A failure leaves the counts empty, which only costs speed.
    pub(crate) fn load(conn: &Connection) -> TrigramStats {
        let mut counts = HashMap::new();
        let documents: i64 = conn
            .query_row("SELECT count(*) FROM mem_entities", [], |r| r.get(0))
            .unwrap_or(0);
        let result: rusqlite::Result<()> = (|| {
            conn.execute_batch(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.mem_search_vocab USING fts5vocab(main, mem_search, row)",
            )?;
            let mut stmt = conn.prepare("SELECT term, doc FROM temp.mem_search_vocab")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let term: String = row.get(0)?;
                let doc: i64 = row.get(1)?;
                let mut chars = term.chars();
                if let (Some(a), Some(b), Some(c), None) =
                    (chars.next(), chars.next(), chars.next(), chars.next())
                {
                    counts.insert(pack(a, b, c), doc.clamp(0, i64::from(u32::MAX)) as u32);
                }
            }
            Ok(())
        })();
        if let Err(err) = result {
            tracing::debug!(%err, "no trigram counts; searches use whole phrases");
        }
        TrigramStats {
            doc_counts: Mutex::new(counts),
            documents: AtomicU64::new(documents.max(0) as u64),
        }
    }

    /// Counts the trigrams of documents just written to the index.
    pub(crate) fn note(&self, docs: &[String]) {
        if docs.is_empty() {
            return;
        }
        self.documents
            .fetch_add(docs.len() as u64, Ordering::Relaxed);
        let mut counts = self.doc_counts.lock();
        for doc in docs {
            for (key, _) in trigrams(doc) {
                *counts.entry(key).or_insert(0) += 1;
            }
        }
    }

    /// The FTS5 query for `key` (at least three characters): some of its trigrams, ANDed.
    pub(crate) fn match_expression(&self, key: &str) -> String {
        let chars: Vec<char> = key.chars().collect();
        let mut windows: Vec<Window> = chars
            .windows(3)
            .enumerate()
            .map(|(at, w)| Window {
                key: pack(w[0], w[1], w[2]),
                chars: [w[0], w[1], w[2]],
                at,
            })
            .collect();
        let documents = self.documents.load(Ordering::Relaxed).max(1) as f64;
        let share: Vec<f64> = {
            let counts = self.doc_counts.lock();
            windows.sort_by_key(|w| counts.get(&w.key).copied().unwrap_or(0));
            windows
                .iter()
                .map(|w| f64::from(counts.get(&w.key).copied().unwrap_or(0)) / documents)
                .collect()
        };
        let mut picked: Vec<usize> = Vec::new();
        let mut estimate = documents;
        // First trigrams apart from every one picked (nearly independent), then the rest.
        for apart in [true, false] {
            for (i, w) in windows.iter().enumerate() {
                let enough = estimate <= ENOUGH_CANDIDATES && !picked.is_empty();
                if enough || picked.len() == MAX_TRIGRAMS_PER_QUERY {
                    break;
                }
                let disjoint = picked.iter().all(|&p| windows[p].at.abs_diff(w.at) >= 3);
                if picked.contains(&i)
                    || (apart && !disjoint)
                    || picked.iter().any(|&p| windows[p].key == w.key)
                {
                    continue;
                }
                // An overlapping trigram narrows far less than its share says.
                estimate *= if disjoint { share[i] } else { share[i].sqrt() };
                picked.push(i);
            }
        }
        picked
            .into_iter()
            .map(|i| {
                let text: String = windows[i].chars.iter().collect();
                format!("\"{}\"", text.replace('"', "\"\""))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(docs: &[&str]) -> TrigramStats {
        let stats = TrigramStats {
            doc_counts: Mutex::new(HashMap::new()),
            documents: AtomicU64::new(0),
        };
        stats.note(&docs.iter().map(|d| d.to_string()).collect::<Vec<_>>());
        stats
    }

    #[test]
    fn a_key_always_asks_for_at_least_one_trigram_even_in_a_tiny_index() {
        assert_eq!(stats(&[]).match_expression("äöü"), "\"äöü\"");
        // A trigram the index lacks answers "nothing" by itself.
        assert_eq!(stats(&["abc"]).match_expression("abcd"), "\"bcd\"");
    }

    #[test]
    fn keys_without_a_rare_trigram_pick_trigrams_that_do_not_overlap_first() {
        // Each trigram of the key is as common as the others, as in a digit serial.
        let key = "s0245489";
        let chars: Vec<char> = key.chars().collect();
        let mut docs = vec![format!("serial {key}")];
        for w in chars.windows(3) {
            let gram: String = w.iter().collect();
            docs.extend((0..100).map(|i| format!("{gram} #{i}")));
        }
        let stats = TrigramStats {
            doc_counts: Mutex::new(HashMap::new()),
            documents: AtomicU64::new(0),
        };
        stats.note(&docs);
        let expression = stats.match_expression(key);
        assert!(
            expression.starts_with("\"s02\" AND \"454\" AND "),
            "{expression}"
        );
    }

    #[test]
    fn quotes_in_a_key_are_escaped() {
        assert_eq!(stats(&[]).match_expression("a\"b"), "\"a\"\"b\"");
    }
}
