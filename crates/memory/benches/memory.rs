//! The memory store's benchmark; prints its figures. Run with
//! `cargo bench -p msm-memory --bench memory` (a few minutes on 2 cores).
//!
//! 1. search_nodes p50/p99 on 100k entities with 3 observations each (goal: p50 <= 2 ms).
//! 2. create_entities throughput from 10 concurrent writers on one shared store, as the daemon's
//!    sessions share it (goal: >= 5,000 entities/s, no lock errors).
//! 3. The same searches on 10k entities against the reference `@modelcontextprotocol/
//!    server-memory` over stdio JSON-RPC, side by side (goal: >= 100x faster): the store alone,
//!    then end to end through the built daemon from the same raw JSON-RPC client (session and
//!    stateless revisions).
//! 4. `memory_http.py`: the same end to end through the real daemon over HTTP (when a
//!    `mcp-session-manager` binary is built; release if there is one).
//!
//! `MSM_BENCH_ONLY=reference|throughput|search|http` runs one part.

// A benchmark is a harness like a test: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use msm_memory::{Entity, MemoryStore, Relation, import_jsonl};

mod common;
use common::{Daemon, DirRef, Rng, StdioClient, built_manager, ms, percentile};

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
fn start_reference(memory_file: &Path) -> std::io::Result<StdioClient> {
    let mut command = Command::new("node");
    command
        .arg(reference_js())
        .env("MEMORY_FILE_PATH", memory_file);
    StdioClient::start(command, "2025-06-18")
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
    // Closed, so that the file holds everything when it is copied for the daemon.
    drop(store);

    if !reference_js().is_file() {
        println!("reference server not installed (tests/peers): comparison skipped");
        return;
    }
    let mut reference = match start_reference(&jsonl) {
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
    daemon_versus_reference(dir, &qs, &theirs, their_hits);
}

/// The same queries end to end through the real daemon, from this same process: a raw
/// JSON-RPC client on a keep-alive HTTP/1.1 connection, as the reference above gets raw JSON-RPC
/// on its stdin. Both sides thus pay their own transport and protocol layers and nothing else.
fn daemon_versus_reference(dir: &Path, qs: &[String], theirs: &[Duration], their_hits: usize) {
    let Some(bin) = built_manager() else {
        println!("  no mcp-session-manager binary built: end-to-end comparison skipped");
        return;
    };
    let project = dir.join("project-10k");
    std::fs::create_dir_all(project.join(".claude")).expect("project dir");
    std::fs::copy(dir.join("ours-10k.db"), project.join(".claude/memory.db")).expect("copy DB");
    let daemon = match Daemon::start(&bin, dir) {
        Ok(d) => d,
        Err(e) => {
            println!("  cannot start the daemon ({e}): end-to-end comparison skipped");
            return;
        }
    };
    for (mode, stateless) in [
        ("session 2025-11-25", false),
        ("stateless 2026-07-28", true),
    ] {
        let mut client = match HttpClient::connect(&daemon, &project, stateless) {
            Ok(c) => c,
            Err(e) => {
                println!("  {mode}: cannot connect ({e})");
                continue;
            }
        };
        // Warm the connection and the store cache, as the reference's first call warmed its.
        let _ = client.search(&qs[0]);
        let mut ours = Vec::with_capacity(qs.len() * 5);
        let mut our_hits = 0;
        for round in 0..5 {
            for q in qs {
                let start = Instant::now();
                let answer = client.search(q).expect("daemon search_nodes");
                ours.push(start.elapsed());
                if round == 0 {
                    our_hits += answer["result"]["structuredContent"]["entities"]
                        .as_array()
                        .map_or(0, Vec::len);
                }
            }
        }
        ours.sort();
        let (ours_p50, theirs_p50) = (percentile(&ours, 0.5), percentile(theirs, 0.5));
        println!(
            "  end to end, {mode} over HTTP vs reference over stdio, same raw JSON-RPC client: ours p50 {:.3} ms p99 {:.3} ms | {:.0}x faster  [goal >= 100x]; same answers: {}",
            ms(ours_p50),
            ms(percentile(&ours, 0.99)),
            theirs_p50.as_secs_f64() / ours_p50.as_secs_f64(),
            our_hits == their_hits,
        );
        if !stateless {
            let mut pings: Vec<Duration> = (0..300)
                .map(|_| {
                    let start = Instant::now();
                    client.ping().expect("daemon ping");
                    start.elapsed()
                })
                .collect();
            pings.sort();
            println!(
                "    of which HTTP + MCP session routing alone (a `ping` round trip): p50 {:.3} ms",
                ms(percentile(&pings, 0.5))
            );
        }
    }
}

/// The leanest MCP client over streamable HTTP (JSON responses): one keep-alive connection,
/// one request in flight, no SDK in between.
struct HttpClient {
    stream: BufReader<std::net::TcpStream>,
    headers: String,
    next_id: u64,
    stateless: bool,
}

impl HttpClient {
    fn connect(daemon: &Daemon, project: &Path, stateless: bool) -> std::io::Result<HttpClient> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", daemon.port))?;
        stream.set_nodelay(true)?;
        let version = if stateless {
            "2026-07-28"
        } else {
            "2025-11-25"
        };
        let mut client = HttpClient {
            stream: BufReader::new(stream),
            headers: format!(
                "Host: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nMcp-Project-Path: {}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMCP-Protocol-Version: {version}\r\n",
                daemon.port,
                daemon.token,
                project.display()
            ),
            next_id: 0,
            stateless,
        };
        if !stateless {
            let (session, _) = client.post(&serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}))?;
            let session = session.ok_or_else(|| std::io::Error::other("no Mcp-Session-Id"))?;
            client
                .headers
                .push_str(&format!("Mcp-Session-Id: {session}\r\n"));
            client.post(
                &serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )?;
        }
        Ok(client)
    }

    fn search(&mut self, query: &str) -> std::io::Result<serde_json::Value> {
        self.next_id += 1;
        let mut request = serde_json::json!({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
            "params": {"name": "search_nodes", "arguments": {"query": query}}});
        if self.stateless {
            // What a 2026-07-28 request carries instead of a session's handshake.
            request["params"]["_meta"] = serde_json::json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
            });
        }
        Ok(self.post(&request)?.1)
    }

    fn ping(&mut self) -> std::io::Result<()> {
        self.next_id += 1;
        let request = serde_json::json!({"jsonrpc": "2.0", "id": self.next_id, "method": "ping"});
        self.post(&request).map(drop)
    }

    /// One POST; the answer's `Mcp-Session-Id` and its JSON body (`null` for a 202).
    fn post(
        &mut self,
        message: &serde_json::Value,
    ) -> std::io::Result<(Option<String>, serde_json::Value)> {
        let body = message.to_string();
        // 2026-07-28 requests name their method (and tool) in headers too.
        let routing = match (self.stateless, message["method"].as_str()) {
            (true, Some(method)) => match message["params"]["name"].as_str() {
                Some(name) => format!("Mcp-Method: {method}\r\nMcp-Name: {name}\r\n"),
                None => format!("Mcp-Method: {method}\r\n"),
            },
            _ => String::new(),
        };
        let request = format!(
            "POST /mcp HTTP/1.1\r\n{}{routing}Content-Length: {}\r\n\r\n{body}",
            self.headers,
            body.len()
        );
        self.stream.get_mut().write_all(request.as_bytes())?;
        let (mut status, mut session, mut length, mut chunked) =
            (String::new(), None, 0usize, false);
        let mut line = String::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("the daemon closed the connection"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if status.is_empty() {
                status = header.to_owned();
            } else if let Some((name, value)) = header.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "mcp-session-id" => session = Some(value.trim().to_owned()),
                    "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
                    _ => {}
                }
            }
        }
        let body = if chunked {
            self.read_chunked()?
        } else {
            let mut body = vec![0; length];
            std::io::Read::read_exact(&mut self.stream, &mut body)?;
            body
        };
        if !(status.contains(" 200 ") || status.contains(" 202 ")) {
            return Err(std::io::Error::other(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let answer = match body.first() {
            None => serde_json::Value::Null,
            Some(b'{') => serde_json::from_slice(&body)?,
            // An SSE answer: its last `data:` line.
            Some(_) => {
                let text = String::from_utf8_lossy(&body);
                let data = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .rfind(|d| !d.trim().is_empty())
                    .unwrap_or("null");
                serde_json::from_str(data.trim())?
            }
        };
        Ok((session, answer))
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {line:?}")))?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            std::io::Read::read_exact(&mut self.stream, &mut body[start..])?;
            body.truncate(start + size);
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

/// The end-to-end part (`memory_http.py`): through the real daemon over HTTP, beside the
/// reference server. It uses `target/release` binaries when built, else `target/debug` ones.
fn http_bench() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = repo.join("tests/peers/.venv/bin/python");
    let Some(bin_dir) = built_manager().and_then(|bin| bin.parent().map(Path::to_owned)) else {
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
