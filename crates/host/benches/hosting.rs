//! Benchmark of issue 5's hosting (prints its figures): `cargo bench -p msm-host --bench hosting`.
//!
//! 1. Shared stdio hosting of server-everything: requests per second through 10 concurrent
//!    sessions of the stdio bridge, and the latency the bridge adds over talking to the child
//!    directly on its stdin/stdout (p50/p99), at 1 and at 10 requests in flight.
//! 2. Memory: 50 sessions (50 `mcp-session-proxy` processes) on one shared memory daemon vs 50
//!    separate stdio reference servers (`@modelcontextprotocol/server-memory`): total RSS of each
//!    setup (sum of VmRSS). Goal: <= 1/10. Uses the built binaries of target/debug (or
//!    `MSM_BIN_DIR`; `MSM_PROXY_BIN` for another proxy binary, e.g. a release build): build them
//!    first with `cargo build -p mcp-session-manager -p msm-proxy`.
//!
//! `--seconds N` sets each throughput phase's length (default 5); `--sessions N` the session
//! count of part 2 (default 50); `--only bridge|rss` runs one part.

// A benchmark is a harness like a test: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msm_core::ShareMode;
use msm_host::stdio_bridge::{self, BridgeSpec, StdioBridge};
use msm_host::supervisor::{ChildSpec, RestartPolicy};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{Mutex, oneshot};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peer_script(package: &str) -> PathBuf {
    let script = repo().join(format!(
        "tests/peers/node_modules/@modelcontextprotocol/{package}/dist/index.js"
    ));
    assert!(
        script.is_file(),
        "{} missing: run scripts/install-deps.sh",
        script.display()
    );
    script
}

struct Options {
    seconds: u64,
    sessions: usize,
    only: Option<String>,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 5,
        sessions: 50,
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        match args[i].as_str() {
            "--seconds" => options.seconds = value.and_then(|v| v.parse().ok()).unwrap_or(5),
            "--sessions" => options.sessions = value.and_then(|v| v.parse().ok()).unwrap_or(50),
            "--only" => options.only = value,
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

fn main() {
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        if options.only.as_deref() != Some("rss") {
            bridge_bench(Duration::from_secs(options.seconds)).await;
        }
        if options.only.as_deref() != Some("bridge") {
            rss_bench(options.sessions).await;
        }
    });
}

/// Latencies of one phase.
struct Figures {
    label: String,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
    fn print(&self) {
        println!(
            "  {:<44} {:>8.0} req/s   p50 {:>7.3} ms   p99 {:>7.3} ms   ({} requests)",
            self.label,
            self.rate(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99)),
            self.latencies.len()
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn echo_call(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "echo", "arguments": {"message": format!("m{id}")}}})
}

fn initialize_request() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "hosting-bench", "version": "1"}}})
}

// ---------------------------------------------------------------------------------------------
// Part 1: the stdio bridge vs the child directly.

/// A stdio JSON-RPC client of one child: requests may be in flight concurrently.
struct StdioClient {
    stdin: Mutex<ChildStdin>,
    waiting: Arc<parking_lot::Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>>,
    child: Child,
}

impl StdioClient {
    async fn spawn(program: &str, args: &[String], env: &[(&str, String)]) -> StdioClient {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let waiting: Arc<
            parking_lot::Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>,
        > = Arc::default();
        tokio::spawn(read_answers(stdout, waiting.clone()));
        let client = StdioClient {
            stdin: Mutex::new(stdin),
            waiting,
            child,
        };
        let answer = client.call(initialize_request()).await;
        assert!(answer.get("result").is_some(), "initialize: {answer}");
        client
            .send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        client
    }

    async fn send(&self, message: &Value) {
        let mut line = message.to_string();
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        stdin.write_all(line.as_bytes()).await.expect("write");
        stdin.flush().await.expect("flush");
    }

    async fn call(&self, message: Value) -> Value {
        let id = message["id"].as_u64().unwrap();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().insert(id, tx);
        self.send(&message).await;
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("answer within 30s")
            .expect("child alive")
    }
}

async fn read_answers(
    stdout: ChildStdout,
    waiting: Arc<parking_lot::Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>>,
) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if message.get("method").is_some() {
            continue;
        }
        if let Some(id) = message.get("id").and_then(Value::as_u64)
            && let Some(tx) = waiting.lock().remove(&id)
        {
            let _ = tx.send(message);
        }
    }
}

/// Runs `workers` loops of `one(worker, sequence)` for `duration`; collects latencies.
async fn run_phase<F, Fut>(label: &str, workers: usize, duration: Duration, one: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let one = Arc::new(one);
    // Warm-up.
    for w in 0..workers {
        for s in 0..20 {
            one(w, 1_000_000_000 + (w as u64) * 1000 + s).await;
        }
    }
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let one = one.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut sequence = 0u64;
                while Instant::now() < deadline {
                    sequence += 1;
                    let t = Instant::now();
                    one(w, (w as u64) << 32 | sequence).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    Figures {
        label: label.to_owned(),
        latencies,
        elapsed: started.elapsed(),
    }
}

struct HttpSession {
    http: reqwest::Client,
    url: String,
    id: String,
}

impl HttpSession {
    async fn open(url: &str) -> HttpSession {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let response = http
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(initialize_request().to_string())
            .send()
            .await
            .unwrap();
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = response.bytes().await;
        let session = HttpSession {
            http,
            url: url.to_owned(),
            id,
        };
        session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        session
    }

    /// Posts as streamable HTTP clients do (accepting SSE); answers the whole body.
    async fn post(&self, message: Value) -> String {
        let response = self
            .http
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", &self.id)
            .header("mcp-protocol-version", "2025-06-18")
            .body(message.to_string())
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }
}

async fn bridge_bench(duration: Duration) {
    let script = peer_script("server-everything");
    let args = vec![script.display().to_string(), "stdio".to_owned()];
    println!(
        "Shared stdio hosting of server-everything (tools/call echo), {duration:?} per phase:"
    );

    let direct = Arc::new(StdioClient::spawn("node", &args, &[]).await);
    let mut figures = Vec::new();
    for workers in [1usize, 10] {
        let client = direct.clone();
        let label = format!("direct to the child, {workers} in flight");
        let phase = run_phase(&label, workers, duration, move |_, id| {
            let client = client.clone();
            async move {
                let answer = client.call(echo_call(id)).await;
                assert!(answer.get("result").is_some(), "{answer}");
            }
        })
        .await;
        phase.print();
        figures.push(phase);
    }
    drop(direct);

    let dir = tempfile::tempdir().unwrap();
    let spec = BridgeSpec {
        name: "everything".into(),
        child: ChildSpec {
            name: "everything".into(),
            command: "node".into(),
            args,
            env: BTreeMap::new(),
            cwd: None,
            log_path: dir.path().join("everything.log"),
            policy: RestartPolicy::default(),
            internal_port: None,
            stop_grace: Duration::from_secs(2),
        },
        share: ShareMode::Shared,
        on_demand: false,
        idle_stop: Duration::from_secs(1800),
        ready_timeout: Duration::from_secs(30),
    };
    let bridge = StdioBridge::new(spec, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let app = stdio_bridge::router(bridge.clone());
    let listener = {
        use axum::serve::ListenerExt;
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        })
    };
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    for workers in [1usize, 10] {
        let mut sessions = Vec::new();
        for _ in 0..workers {
            sessions.push(HttpSession::open(&url).await);
        }
        let sessions = Arc::new(sessions);
        let label = format!(
            "through the bridge, {workers} session{}",
            if workers == 1 { "" } else { "s" }
        );
        let phase = run_phase(&label, workers, duration, move |w, id| {
            let sessions = sessions.clone();
            async move {
                let body = sessions[w].post(echo_call(id)).await;
                assert!(body.contains("\"result\""), "{body}");
            }
        })
        .await;
        phase.print();
        figures.push(phase);
    }
    for (direct, bridged) in [(&figures[0], &figures[2]), (&figures[1], &figures[3])] {
        println!(
            "  added by the bridge ({:<26}): p50 {:+.3} ms, p99 {:+.3} ms; throughput {:.0}% of direct",
            bridged.label.trim_start_matches("through the bridge, "),
            ms(bridged.percentile(0.5)) - ms(direct.percentile(0.5)),
            ms(bridged.percentile(0.99)) - ms(direct.percentile(0.99)),
            100.0 * bridged.rate() / direct.rate()
        );
    }
    bridge.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Part 2: RSS of 50 proxies + one daemon vs 50 reference memory servers.

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// The process and all its descendants (a `node` launcher may fork).
fn tree_rss_kib(pid: u32) -> u64 {
    let mut total = vm_rss_kib(pid);
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(child) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit(')')
                        .next()
                        .and_then(|rest| rest.split_whitespace().nth(1))
                        .and_then(|p| p.parse::<u32>().ok())
                });
            if parent == Some(pid) {
                total += tree_rss_kib(child);
            }
        }
    }
    total
}

fn bin_dir() -> PathBuf {
    std::env::var_os("MSM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/debug"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn read_graph_through(client: &StdioClient) {
    let answer = client
        .call(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "read_graph", "arguments": {}}}))
        .await;
    assert!(answer.get("result").is_some(), "{answer}");
}

async fn rss_bench(sessions: usize) {
    let manager = bin_dir().join("mcp-session-manager");
    let proxy = std::env::var_os("MSM_PROXY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| bin_dir().join("mcp-session-proxy"));
    if !manager.is_file() || !proxy.is_file() {
        println!(
            "RSS part not run: {} or {} missing (cargo build -p mcp-session-manager -p msm-proxy)",
            manager.display(),
            proxy.display()
        );
        return;
    }
    println!(
        "Memory: {sessions} sessions, one shared memory daemon vs {sessions} reference stdio servers ({}, {}):",
        manager.display(),
        proxy.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let state = dir.path().join("state");
    let project = dir.path().join("project");
    for d in [&home, &state, &project] {
        std::fs::create_dir_all(d).unwrap();
    }
    let manager_port = free_port();
    let memory_port = free_port();
    std::fs::write(
        state.join("config.toml"),
        format!(
            "[manager]\nport = {manager_port}\n\n[targets.memory]\nbuiltin = \"memory\"\nport = {memory_port}\n"
        ),
    )
    .unwrap();
    let env = vec![
        ("HOME", home.display().to_string()),
        ("MCP_SESSION_MANAGER_HOME", state.display().to_string()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut daemon = Command::new(&manager);
    daemon
        .arg("daemon")
        .envs(env.iter().cloned())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut daemon = daemon.spawn().expect("daemon");
    let daemon_pid = daemon.id().unwrap();
    let health = format!("http://127.0.0.1:{memory_port}/health");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reqwest::get(&health)
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(Instant::now() < deadline, "daemon not up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let proxy_args = vec![
        "--target".to_owned(),
        "memory".to_owned(),
        "--project".to_owned(),
        project.display().to_string(),
    ];
    let proxy_program = proxy.display().to_string();
    let mut proxies = Vec::new();
    for _ in 0..sessions {
        proxies.push(StdioClient::spawn(&proxy_program, &proxy_args, &env).await);
    }
    for client in &proxies {
        read_graph_through(client).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let proxy_rss: u64 = proxies
        .iter()
        .map(|c| tree_rss_kib(c.child.id().unwrap()))
        .sum();
    let daemon_rss = tree_rss_kib(daemon_pid);
    let shared_total = proxy_rss + daemon_rss;
    println!(
        "  shared daemon: {sessions} proxies {:.1} MiB ({:.1} MiB each) + daemon {:.1} MiB = {:.1} MiB",
        proxy_rss as f64 / 1024.0,
        proxy_rss as f64 / 1024.0 / sessions as f64,
        daemon_rss as f64 / 1024.0,
        shared_total as f64 / 1024.0
    );
    drop(proxies);
    let _ = daemon.start_kill();
    let _ = daemon.wait().await;

    let script = peer_script("server-memory").display().to_string();
    let mut references = Vec::new();
    for n in 0..sessions {
        let file = dir.path().join(format!("memory-{n}.jsonl"));
        let env = vec![("MEMORY_FILE_PATH", file.display().to_string())];
        references.push(StdioClient::spawn("node", std::slice::from_ref(&script), &env).await);
    }
    for client in &references {
        read_graph_through(client).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reference_total: u64 = references
        .iter()
        .map(|c| tree_rss_kib(c.child.id().unwrap()))
        .sum();
    println!(
        "  separate servers: {sessions} x server-memory {:.1} MiB ({:.1} MiB each)",
        reference_total as f64 / 1024.0,
        reference_total as f64 / 1024.0 / sessions as f64
    );
    let ratio = shared_total as f64 / reference_total as f64;
    println!(
        "  ratio shared/separate = {ratio:.3} (goal <= 0.100): {}",
        if ratio <= 0.1 { "met" } else { "NOT met" }
    );
    drop(references);
}
