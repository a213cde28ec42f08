//! Search and write latency for every shape of key a coding assistant's memory holds, at 100k
//! entities with 3 observations each; prints its figures. Run with
//! `cargo bench -p msm-memory --bench key_shapes` (build the release binaries first for the
//! end-to-end part: `cargo build --release -p mcp-session-manager -p msm-proxy`).
//!
//! 1. search_nodes p50/p99 per key shape (words, digit serials, hex hashes of 8 and 40
//!    characters, paths, version strings, CJK text, 3-character keys, keys that match nothing),
//!    in process and end to end through `mcp-session-proxy` and the daemon, from one raw
//!    JSON-RPC client on the proxy's stdin (goal: p50 <= 1 ms, p99 <= 5 ms per shape). Broad
//!    keys, whose answers hold hundreds of entities, are reported apart, per entity answered.
//! 2. create_entities of one entity at 100k, in process and through the proxy (goal: p50 <=
//!    0.5 ms through the proxy), and what the DB file check costs per call.
//!
//! `MSM_BENCH_QUERIES=N` sets the queries per shape (default 300); `MSM_BENCH_OPTIMIZE=1`
//! merges the index into one segment after the bulk load.

// A benchmark is a harness like a test: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use msm_memory::{Entity, MemoryStore};

mod common;
use common::{Daemon, DirRef, Rng, StdioClient, built_binary, built_manager, ms, percentile};

const ENTITIES: usize = 100_000;

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "fel", "gor", "hal", "jon",
    "kir", "lum", "mor", "nix", "pra", "quo", "ros", "sil", "tur", "wen",
];

const TYPES: [&str; 6] = ["decision", "bug", "module", "service", "person", "release"];

/// The data: every entity has a sentence of words, a line of numbers (a serial, a port, an
/// issue number), and one of a commit hash with a path, a version, or CJK text.
struct Corpus {
    entities: Vec<Entity>,
    serials: Vec<String>,
    hashes: Vec<String>,
    paths: Vec<String>,
    versions: Vec<String>,
    cjk: Vec<String>,
    words: Vec<String>,
}

fn word(rng: &mut Rng) -> String {
    let n = 3 + rng.below(2);
    (0..n)
        .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
        .collect()
}

fn hex(rng: &mut Rng, len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(rng.below(16) as u32, 16).expect("a hex digit"))
        .collect()
}

fn cjk(rng: &mut Rng, len: usize) -> String {
    // 800 common ideographs from the start of the CJK block.
    (0..len)
        .map(|_| char::from_u32(0x4E00 + rng.below(800) as u32).expect("a CJK character"))
        .collect()
}

fn corpus() -> Corpus {
    let mut rng = Rng(0x5eed_cafe);
    let vocabulary: Vec<String> = (0..20_000).map(|_| word(&mut rng)).collect();
    let mut c = Corpus {
        entities: Vec::with_capacity(ENTITIES),
        serials: Vec::new(),
        hashes: Vec::new(),
        paths: Vec::new(),
        versions: Vec::new(),
        cjk: Vec::new(),
        words: Vec::new(),
    };
    for i in 0..ENTITIES {
        let w1 = vocabulary[rng.below(vocabulary.len())].clone();
        let w2 = vocabulary[rng.below(vocabulary.len())].clone();
        let serial = format!("s{:07}", rng.below(10_000_000));
        let third = match i % 4 {
            0 => {
                let hash = hex(&mut rng, 40);
                let line = format!("Fixed in commit {hash}");
                c.hashes.push(hash);
                line
            }
            1 => {
                let path = format!(
                    "src/{}/{}_{}.rs",
                    word(&mut rng),
                    word(&mut rng),
                    rng.below(1000)
                );
                let line = format!("Defined in {path} line {}", rng.below(2000));
                c.paths.push(path);
                line
            }
            2 => {
                let version = format!("{}.{}.{}", rng.below(10), rng.below(60), rng.below(100));
                let line = format!("Upgraded {} to {version}", word(&mut rng));
                c.versions.push(version);
                line
            }
            _ => {
                let text = cjk(&mut rng, 10);
                let line = format!("决定: {text}");
                c.cjk.push(text);
                line
            }
        };
        let observations = vec![
            format!("Works on {w1} with the {w2} team"),
            format!(
                "serial {serial}, port {}, issue #{}",
                1024 + rng.below(60_000),
                rng.below(100_000)
            ),
            third,
        ];
        c.serials.push(serial);
        c.words.push(w1);
        c.entities.push(Entity {
            name: format!("{}-{i}", word(&mut rng)),
            entity_type: TYPES[i % TYPES.len()].to_owned(),
            observations,
        });
    }
    c
}

/// A few characters from `text` starting at a random char boundary.
fn window(rng: &mut Rng, text: &str, len: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let start = rng.below(chars.len().saturating_sub(len) + 1);
    chars[start..(start + len).min(chars.len())]
        .iter()
        .collect()
}

/// The query sets: (shape, queries).
fn shapes(c: &Corpus, count: usize) -> Vec<(&'static str, Vec<String>)> {
    let mut rng = Rng(99);
    let mut pick = |from: &[String], f: &mut dyn FnMut(&mut Rng, &str) -> String| -> Vec<String> {
        (0..count)
            .map(|_| {
                let item = from[rng.below(from.len())].clone();
                f(&mut rng, &item)
            })
            .collect()
    };
    let same = &mut |_: &mut Rng, s: &str| s.to_owned();
    let observations: Vec<String> = c
        .entities
        .iter()
        .flat_map(|e| e.observations.iter().cloned())
        .collect();
    vec![
        ("words", pick(&c.words, same)),
        ("digit serials (s0245489)", pick(&c.serials, same)),
        (
            "digits only (0245489)",
            pick(&c.serials, &mut |_, s| s[1..].to_owned()),
        ),
        (
            "hex hashes, 8 chars",
            pick(&c.hashes, &mut |_, s| s[..8].to_owned()),
        ),
        ("hex hashes, 40 chars", pick(&c.hashes, same)),
        ("paths", pick(&c.paths, same)),
        ("version strings", pick(&c.versions, same)),
        (
            "CJK text, 4 chars",
            pick(&c.cjk, &mut |r, s| window(r, s, 4)),
        ),
        (
            THREE_CHARS,
            pick(&observations, &mut |r, s| window(r, s, 3)),
        ),
        ("keys that match nothing", {
            let mut r = Rng(5);
            (0..count)
                .map(|i| match i % 4 {
                    0 => format!("zq{}", word(&mut r)),
                    1 => format!("x{:07}", r.below(10_000_000)),
                    2 => format!("{}g", hex(&mut r, 8)),
                    _ => format!("{}ñ", cjk(&mut r, 3)),
                })
                .collect()
        }),
    ]
}

/// Answers larger than this are broad: bounded by their size, not by the search.
const BROAD: usize = 50;

/// The row of 3-character keys taken from the data; `split_broad` keeps the selective ones.
const THREE_CHARS: &str = "3-char keys, <= 50 hits";

/// Keeps in the 3-character row the keys whose answers are selective, and counts the broad
/// ones (their cost is reported per entity answered, below the table).
fn split_broad(store: &MemoryStore, shapes: &mut [(&str, Vec<String>)]) {
    let row = shapes
        .iter_mut()
        .find(|(name, _)| *name == THREE_CHARS)
        .expect("the 3-character row");
    let before = row.1.len();
    row.1
        .retain(|q| store.search_nodes(q).expect("search").entities.len() <= BROAD);
    println!(
        "3-character keys taken from the data: {} answer <= {BROAD} entities, {} are broad (reported per entity below)",
        row.1.len(),
        before - row.1.len()
    );
}

fn broad_keys() -> Vec<(&'static str, String)> {
    vec![
        ("a type (1/6 of entities)", "decision".into()),
        ("\"fixed in commit\" (1/4)", "Fixed in commit".into()),
        ("a 2-digit run", "42".into()),
        ("a 2-character CJK key", "决定".into()),
        ("a common 3-character key", "ser".into()),
    ]
}

/// A search's latency and hit count.
trait Searcher {
    fn search(&mut self, query: &str) -> usize;
}

impl Searcher for &MemoryStore {
    fn search(&mut self, query: &str) -> usize {
        self.search_nodes(query)
            .expect("search_nodes")
            .entities
            .len()
    }
}

struct Figures {
    times: Vec<Duration>,
    hits: usize,
    max_hits: usize,
}

fn measure(searcher: &mut dyn Searcher, queries: &[String]) -> Figures {
    for q in queries.iter().take(10) {
        searcher.search(q);
    }
    let mut times = Vec::with_capacity(queries.len());
    let (mut hits, mut max_hits) = (0, 0);
    for q in queries {
        let start = Instant::now();
        let n = searcher.search(q);
        times.push(start.elapsed());
        hits += n;
        max_hits = max_hits.max(n);
    }
    times.sort();
    Figures {
        times,
        hits,
        max_hits,
    }
}

fn print_table(title: &str, searcher: &mut dyn Searcher, shapes: &[(&str, Vec<String>)]) {
    println!("{title}");
    println!(
        "  {:<28} {:>9} {:>9} {:>9} {:>9}",
        "key shape", "p50 ms", "p99 ms", "avg hits", "max hits"
    );
    let mut worst = (0.0f64, 0.0f64);
    for (shape, queries) in shapes {
        if queries.is_empty() {
            continue;
        }
        let f = measure(searcher, queries);
        let (p50, p99) = (
            ms(percentile(&f.times, 0.5)),
            ms(percentile(&f.times, 0.99)),
        );
        worst = (worst.0.max(p50), worst.1.max(p99));
        println!(
            "  {shape:<28} {p50:>9.3} {p99:>9.3} {:>9.1} {:>9}",
            f.hits as f64 / queries.len() as f64,
            f.max_hits
        );
    }
    println!(
        "  worst shape: p50 {:.3} ms, p99 {:.3} ms  [goal p50 <= 1 ms, p99 <= 5 ms]",
        worst.0, worst.1
    );
    println!("  broad keys (bounded by the answer's size):");
    for (label, key) in broad_keys() {
        let f = measure(searcher, &vec![key; 3]);
        let p50 = percentile(&f.times, 0.5);
        let hits = f.hits / 3;
        println!(
            "    {label:<28} p50 {:>8.2} ms for {hits} entities ({:.1} us per entity)",
            ms(p50),
            p50.as_secs_f64() * 1e6 / hits.max(1) as f64
        );
    }
}

fn one_entity(i: usize) -> Entity {
    Entity {
        name: format!("bench-new-{i}"),
        entity_type: "decision".into(),
        observations: vec![
            format!("Decided on item {i} in review"),
            format!("serial n{i:07}, port 8080"),
            "Fixed in commit 0123456789abcdef0123456789abcdef01234567".into(),
        ],
    }
}

fn print_writes(label: &str, mut create: impl FnMut(&Entity), offset: usize) {
    let mut times: Vec<Duration> = (0..600)
        .map(|i| {
            let entity = one_entity(offset + i);
            let start = Instant::now();
            create(&entity);
            start.elapsed()
        })
        .skip(100)
        .collect();
    times.sort();
    println!(
        "  create_entities of one entity, {label}: p50 {:.3} ms, p99 {:.3} ms  [goal p50 <= 0.5 ms through the proxy]",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
    );
}

/// A raw JSON-RPC client on a real `mcp-session-proxy`'s stdin and stdout, as Claude Code
/// drives it.
fn start_proxy(proxy: &Path, daemon: &Daemon, project: &Path) -> std::io::Result<StdioClient> {
    let mut command = Command::new(proxy);
    command
        .args(["--target", "memory", "--project"])
        .arg(project)
        .env("MCP_SESSION_MANAGER_HOME", &daemon.state)
        .env(
            "HOME",
            daemon.state.parent().expect("state dir has a parent"),
        )
        .env("RUST_LOG", "warn");
    StdioClient::start(command, "2025-11-25")
}

/// The result of one tool call through the proxy, which must succeed.
fn call(client: &mut StdioClient, tool: &str, arguments: serde_json::Value) -> serde_json::Value {
    let answer = client
        .request(
            "tools/call",
            serde_json::json!({"name": tool, "arguments": arguments}),
        )
        .expect("tools/call through the proxy");
    let result = &answer["result"];
    assert!(
        answer.get("error").is_none() && result["isError"] != true,
        "{tool} failed: {answer}"
    );
    result.clone()
}

impl Searcher for StdioClient {
    fn search(&mut self, query: &str) -> usize {
        call(self, "search_nodes", serde_json::json!({"query": query}))["structuredContent"]
            ["entities"]
            .as_array()
            .map_or(0, Vec::len)
    }
}

fn main() {
    let temp = tempfile::tempdir().expect("temp dir");
    // MSM_BENCH_KEEP=1 keeps the DB (in `<dir>/project/.claude/`) for a look afterwards.
    let dir = if std::env::var_os("MSM_BENCH_KEEP").is_some() {
        let kept = temp.keep();
        println!("DB kept in {}", kept.display());
        DirRef(kept)
    } else {
        DirRef(temp.path().to_owned())
    };
    let count = std::env::var("MSM_BENCH_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    println!("msm-memory key-shape benchmark: {ENTITIES} entities x 3 observations");
    let corpus = corpus();
    let mut shapes = shapes(&corpus, count);
    let project = dir.path().join("project");
    let db = project.join(".claude/memory.db");
    std::fs::create_dir_all(db.parent().expect("has a parent")).expect("project dir");
    {
        let store = MemoryStore::open(&db).expect("open");
        let start = Instant::now();
        for chunk in corpus.entities.chunks(2000) {
            store.create_entities(chunk).expect("create_entities");
        }
        println!("setup: written in {:.1} s", start.elapsed().as_secs_f64());
        if std::env::var_os("MSM_BENCH_OPTIMIZE").is_some() {
            let start = Instant::now();
            rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.execute_batch("INSERT INTO mem_search(mem_search) VALUES('optimize')")
                })
                .expect("optimize the index");
            println!("index optimized in {:.1} s", start.elapsed().as_secs_f64());
        }
        split_broad(&store, &mut shapes);
        print_table(
            "in process (MemoryStore::search_nodes):",
            &mut &store,
            &shapes,
        );
        println!("writes at 100k:");
        print_writes(
            "in process",
            |e| {
                store
                    .create_entities(std::slice::from_ref(e))
                    .expect("create");
            },
            0,
        );
        let checks = 100_000;
        let start = Instant::now();
        for _ in 0..checks {
            store.check_file().expect("the DB file is in place");
        }
        println!(
            "  the DB file check (one stat; twice per write, once per read): {:.2} us",
            start.elapsed().as_secs_f64() * 1e6 / checks as f64
        );
    }
    let (Some(manager), Some(proxy)) = (built_manager(), built_binary("mcp-session-proxy")) else {
        println!(
            "no mcp-session-manager and mcp-session-proxy built: the end-to-end part is skipped"
        );
        return;
    };
    let daemon = match Daemon::start(&manager, dir.path()) {
        Ok(d) => d,
        Err(e) => {
            println!("cannot start the daemon ({e}): the end-to-end part is skipped");
            return;
        }
    };
    let mut client = start_proxy(&proxy, &daemon, &project).expect("start the proxy");
    println!("end to end, through {} and the daemon:", proxy.display());
    let mut pings: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            client.request("ping", serde_json::json!({})).expect("ping");
            start.elapsed()
        })
        .skip(200)
        .collect();
    pings.sort();
    println!(
        "  a `ping` round trip (the transport's share of every call): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&pings, 0.5)),
        ms(percentile(&pings, 0.99))
    );
    print_table(
        "  search_nodes, one raw JSON-RPC client on the proxy's stdin:",
        &mut client,
        &shapes,
    );
    println!("writes at 100k, through the proxy:");
    print_writes(
        "through the proxy",
        |e| {
            call(
                &mut client,
                "create_entities",
                serde_json::json!({"entities": [{"name": e.name, "entityType": e.entity_type,
                    "observations": e.observations}]}),
            );
        },
        1_000,
    );
}
