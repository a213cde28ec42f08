//! Document frequencies of the search index's trigrams, kept in memory so that a search can ask
//! the FTS5 index for the rarest few trigrams of its key (an `AND` of them) instead of the whole
//! phrase: a phrase of common trigrams walks nearly every document. The answer stays exact: the
//! candidates are a superset that the caller checks against each document. The counts are only
//! a guide (never decremented, and another process's writes are not seen until reopening).

use std::collections::HashMap;

use parking_lot::Mutex;
use rusqlite::Connection;

/// How many trigrams of a key go into the index query.
const TRIGRAMS_PER_QUERY: usize = 3;

pub(crate) struct TrigramStats {
    doc_counts: Mutex<HashMap<u64, u32>>,
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
        }
    }

    /// Counts the trigrams of documents just written to the index.
    pub(crate) fn note(&self, docs: &[String]) {
        if docs.is_empty() {
            return;
        }
        let mut counts = self.doc_counts.lock();
        for doc in docs {
            for (key, _) in trigrams(doc) {
                *counts.entry(key).or_insert(0) += 1;
            }
        }
    }

    /// The FTS5 query for `key` (at least three characters): its rarest trigrams, ANDed.
    pub(crate) fn match_expression(&self, key: &str) -> String {
        let mut grams = trigrams(key);
        {
            let counts = self.doc_counts.lock();
            grams.sort_by_key(|(k, _)| counts.get(k).copied().unwrap_or(0));
        }
        grams
            .into_iter()
            .take(TRIGRAMS_PER_QUERY)
            .map(|(_, chars)| {
                let text: String = chars.iter().collect();
                format!("\"{}\"", text.replace('"', "\"\""))
            })
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}
