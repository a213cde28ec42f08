//! The memory store's benchmark; prints its figures. Run with
//! `cargo bench -p msm-memory --bench memory` (a few minutes on 2 cores).
//!
//! 1. search_nodes p50/p99 on 100k entities with 3 observations each (goal: p50 <= 2 ms).
//! 2. create_entities throughput from 10 concurrent writers on one shared store, as the daemon's
//!    sessions share it (goal: >= 5,000 entities/s, no lock errors).
//! 3. The same searches on 10k entities against the reference `@modelcontextprotocol/
//!    server-memory` over stdio JSON-RPC, side by side (goal: >= 100x faster).
//! 4. `memory_http.py`: the same end to end through the real daemon over HTTP (when a
//!    `mcp-session-manager` binary is built; release if there is one).
//!
//! `MSM_BENCH_ONLY=reference|throughput|search|http` runs one part.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use msm_memory::{Entity, MemoryStore, Relation, import_jsonl};

/// A small deterministic generator (xorshift64*), so that every run searches the same data.
struct DirRef(PathBuf);

impl DirRef {
    fn path(&self) -> &Path {
        &self.0
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "fel", "gor", "hal", "jon",
    "kir", "lum", "mor", "nix", "pra", "quo", "ros", "sil", "tur", "wen",
];

/// 5,000 made-up words (each appears in about 120 observations of the 100k graph).
fn vocabulary() -> Vec<String> {
    let mut rng = Rng(0x5eed);
    let mut words = std::collections::BTreeSet::new();
    while words.len() < 5000 {
        let n = 2 + rng.below(3);
        let word: String = (0..n)
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect();
        words.insert(word);
    }
    words.into_iter().collect()
}

const TYPES: [&str; 8] = [
    "person", "project", "library", "decision", "bug", "meeting", "service", "Straße",
];

fn make_graph(n: usize, words: &[String]) -> (Vec<Entity>, Vec<Relation>) {
    let mut rng = Rng(42 + n as u64);
    let entities: Vec<Entity> = (0..n)
        .map(|i| {
            let mut pick = || words[rng.below(words.len())].as_str().to_owned();
            let observations = vec![
                format!("Works on {} with the {} team", pick(), pick()),
                format!("Prefers {} over {} since {}", pick(), pick(), 2000 + i % 25),
                format!("Note {i}: ÄÖÜ {} 100% {}", pick(), pick()),
            ];
            Entity {
                name: format!("Entity-{i:06}"),
                entity_type: TYPES[i % TYPES.len()].to_owned(),
                observations,
            }
        })
        .collect();
    let relations = (0..n)
        .map(|i| Relation {
            from: format!("Entity-{i:06}"),
            to: format!("Entity-{:06}", rng.below(n)),
            relation_type: "depends on".to_owned(),
        })
        .collect();
    (entities, relations)
}

fn fill(store: &MemoryStore, entities: &[Entity], relations: &[Relation]) {
    for chunk in entities.chunks(2000) {
        store.create_entities(chunk).expect("create_entities");
    }
    for chunk in relations.chunks(2000) {
        store.create_relations(chunk).expect("create_relations");
    }
}

/// Selective queries: a word (about 120 hits in 100k), an entity name (1 hit), a phrase.
fn queries(words: &[String], n_entities: usize, count: usize) -> Vec<String> {
    let mut rng = Rng(7);
    (0..count)
        .map(|i| match i % 3 {
            0 => words[rng.below(words.len())].to_uppercase(),
            1 => format!("entity-{:06}", rng.below(n_entities)),
            _ => format!("note {}:", rng.below(n_entities)),
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time_searches(store: &MemoryStore, queries: &[String]) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = 0;
    for q in queries {
        let start = Instant::now();
        let graph = store.search_nodes(q).expect("search_nodes");
        times.push(start.elapsed());
        hits += graph.entities.len();
    }
    times.sort();
    (times, hits)
}

fn search_100k(dir: &Path, words: &[String]) {
    let n = 100_000;
    let (entities, relations) = make_graph(n, words);
    let store = MemoryStore::open(&dir.join("search-100k.db")).expect("open");
    let start = Instant::now();
    fill(&store, &entities, &relations);
    println!(
        "setup: {n} entities x 3 observations + {n} relations written in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let warm = queries(words, n, 30);
    time_searches(&store, &warm);
    let qs = queries(words, n, 600);
    let (times, hits) = time_searches(&store, &qs);
    println!(
        "search_nodes on 100k entities ({} queries, {:.1} hits avg): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms  [goal p50 <= 2 ms]",
        qs.len(),
        hits as f64 / qs.len() as f64,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap()),
    );
    for (class, label) in ["a word", "an entity name", "\"note N:\""]
        .iter()
        .enumerate()
    {
        let q: Vec<String> = qs.iter().skip(class).step_by(3).cloned().collect();
        let (times, hits) = time_searches(&store, &q);
        println!(
            "  queries for {label}: p50 {:.3} ms, p99 {:.3} ms, {:.1} hits avg",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            hits as f64 / q.len() as f64
        );
    }
    for (label, q) in [
        ("2-char query (scan)", vec!["zq".to_owned(); 5]),
        (
            "broad query (\"straße\", 1/8 of entities)",
            vec!["STRASSE".to_owned(), "straße".to_owned()],
        ),
    ] {
        let (times, hits) = time_searches(&store, &q);
        println!(
            "search_nodes {label}: p50 {:.1} ms ({} hits)",
            ms(percentile(&times, 0.5)),
            hits / q.len()
        );
    }
}

fn throughput(dir: &Path) {
    let store = Arc::new(MemoryStore::open(&dir.join("throughput.db")).expect("open"));
    let writers = 10;
    let calls = 200;
    let per_call = 10;
    let errors = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            let errors = errors.clone();
            std::thread::spawn(move || {
                for c in 0..calls {
                    let batch: Vec<Entity> = (0..per_call)
                        .map(|k| Entity {
                            name: format!("w{w}-c{c}-k{k}"),
                            entity_type: "load".into(),
                            observations: vec![
                                format!("written by writer {w}"),
                                format!("call {c}"),
                                "third observation".into(),
                            ],
                        })
                        .collect();
                    if let Err(e) = store.create_entities(&batch) {
                        eprintln!("create_entities failed: {e}");
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread");
    }
    let elapsed = start.elapsed();
    let total = writers * calls * per_call;
    let stored = store.counts().expect("counts").entities as usize;
    println!(
        "create_entities, {writers} concurrent writers x {calls} calls x {per_call} entities: {:.0} entities/s, {} errors, {stored}/{total} stored  [goal >= 5,000/s, 0 lock errors]",
        total as f64 / elapsed.as_secs_f64(),
        errors.load(Ordering::Relaxed),
    );
}

fn reference_js() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers/node_modules/@modelcontextprotocol/server-memory/dist/index.js")
}

/// The reference server on stdio, spoken to in raw JSON-RPC.
struct Reference {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl Reference {
    fn start(memory_file: &Path) -> std::io::Result<Reference> {
        let mut child = Command::new("node")
            .arg(reference_js())
            .env("MEMORY_FILE_PATH", memory_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut reference = Reference {
            child,
            stdout,
            next_id: 0,
        };
        reference.request(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        )?;
        reference
            .send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(reference)
    }

    fn send(&mut self, message: &serde_json::Value) -> std::io::Result<()> {
        let stdin = self.child.stdin.as_mut().expect("piped");
        writeln!(stdin, "{message}")?;
        stdin.flush()
    }

    fn request(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("the reference server exited"));
            }
            let answer: serde_json::Value = serde_json::from_str(&line)?;
            if answer["id"] == id {
                return Ok(answer);
            }
        }
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn versus_reference(dir: &Path, words: &[String]) {
    let n = 10_000;
    let (entities, relations) = make_graph(n, words);
    let jsonl = dir.join("reference-10k.jsonl");
    let mut text = String::new();
    for e in &entities {
        text.push_str(&serde_json::json!({"type": "entity", "name": e.name, "entityType": e.entity_type, "observations": e.observations}).to_string());
        text.push('\n');
    }
    for r in &relations {
        text.push_str(&serde_json::json!({"type": "relation", "from": r.from, "to": r.to, "relationType": r.relation_type}).to_string());
        text.push('\n');
    }
    std::fs::write(&jsonl, text.trim_end()).expect("write the reference's file");
    let store = MemoryStore::open(&dir.join("ours-10k.db")).expect("open");
    import_jsonl(&store, BufReader::new(std::fs::File::open(&jsonl).unwrap())).expect("import");
    let qs = queries(words, n, 60);
    let (ours, our_hits) = time_searches(&store, &qs);

    if !reference_js().is_file() {
        println!("reference server not installed (tests/peers): comparison skipped");
        return;
    }
    let mut reference = match Reference::start(&jsonl) {
        Ok(r) => r,
        Err(e) => {
            println!("cannot start the reference server ({e}): comparison skipped");
            return;
        }
    };
    let mut theirs = Vec::new();
    let mut their_hits = 0;
    for q in &qs {
        let start = Instant::now();
        let answer = reference
            .request(
                "tools/call",
                serde_json::json!({"name": "search_nodes", "arguments": {"query": q}}),
            )
            .expect("reference search_nodes");
        theirs.push(start.elapsed());
        their_hits += answer["result"]["structuredContent"]["entities"]
            .as_array()
            .map_or(0, Vec::len);
    }
    theirs.sort();
    let (ours_p50, theirs_p50) = (percentile(&ours, 0.5), percentile(&theirs, 0.5));
    println!(
        "search_nodes on 10k entities ({} queries): ours p50 {:.3} ms p99 {:.3} ms | reference p50 {:.1} ms p99 {:.1} ms | {:.0}x faster  [goal >= 100x]",
        qs.len(),
        ms(ours_p50),
        ms(percentile(&ours, 0.99)),
        ms(theirs_p50),
        ms(percentile(&theirs, 0.99)),
        theirs_p50.as_secs_f64() / ours_p50.as_secs_f64(),
    );
    println!(
        "  same answers: {} (hits ours {our_hits}, reference {their_hits})",
        our_hits == their_hits
    );
}

/// The end-to-end part (`memory_http.py`): through the real daemon over HTTP, beside the
/// reference server. It uses `target/release` binaries when built, else `target/debug` ones.
fn http_bench() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = repo.join("tests/peers/.venv/bin/python");
    let release = repo.join("target/release/mcp-session-manager");
    let debug = repo.join("target/debug/mcp-session-manager");
    let bin_dir = if release.is_file() {
        release.parent().unwrap().to_owned()
    } else if debug.is_file() {
        debug.parent().unwrap().to_owned()
    } else {
        println!("no mcp-session-manager binary built: HTTP part skipped");
        return;
    };
    if !python.is_file() {
        println!("tests/peers/.venv not installed: HTTP part skipped");
        return;
    }
    println!("end to end through the daemon in {}:", bin_dir.display());
    let status = Command::new(python)
        .arg(repo.join("crates/memory/benches/memory_http.py"))
        .env("MSM_BIN_DIR", &bin_dir)
        .current_dir(&repo)
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        println!("the HTTP part failed: {status:?}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special: both run all.
    let dir = tempfile::tempdir().expect("temp dir");
    // MSM_BENCH_KEEP=1 keeps the DBs for a look afterwards.
    let dir_path = if std::env::var_os("MSM_BENCH_KEEP").is_some() {
        let kept = dir.keep();
        println!("DBs kept in {}", kept.display());
        kept
    } else {
        dir.path().to_owned()
    };
    let dir = DirRef(dir_path);
    let words = vocabulary();
    // MSM_BENCH_ONLY=reference|throughput|search|http runs one part.
    let only = std::env::var("MSM_BENCH_ONLY").unwrap_or_default();
    println!("msm-memory benchmark (SQLite WAL, FTS5 trigram prefilter)");
    if only.is_empty() || only == "reference" {
        versus_reference(dir.path(), &words);
    }
    if only.is_empty() || only == "throughput" {
        throughput(dir.path());
    }
    if only.is_empty() || only == "search" {
        search_100k(dir.path(), &words);
    }
    if only.is_empty() || only == "http" {
        http_bench();
    }
}
