//! Helpers shared by the memory benches: a deterministic generator, percentiles, and a real
//! headless daemon on ephemeral ports.

// A benchmark is a harness like a test: a failed step should stop it loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)] // each bench uses its own part of these

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A temp dir's path (the dir itself is owned by `main`).
pub struct DirRef(pub PathBuf);

impl DirRef {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

/// A small deterministic generator (xorshift64*), so that every run uses the same data.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One of our binaries in `target/release` when built, else the debug one.
pub fn built_binary(name: &str) -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join(name))
        .find(|p| p.is_file())
}

/// `mcp-session-manager`, release when built, else debug.
pub fn built_manager() -> Option<PathBuf> {
    built_binary("mcp-session-manager")
}

/// A headless daemon on ephemeral ports with its own state dir, stopped on drop.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
    pub token: String,
    /// Its state dir (`MCP_SESSION_MANAGER_HOME`); `HOME` is its parent.
    pub state: PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Daemon {
    pub fn start(bin: &Path, dir: &Path) -> std::io::Result<Daemon> {
        let state = dir.join("state");
        std::fs::create_dir_all(&state)?;
        let port = free_port();
        std::fs::write(
            state.join("config.toml"),
            format!(
                "[manager]\nport = {}\n\n[targets.memory]\nbuiltin = \"memory\"\nport = {port}\n",
                free_port()
            ),
        )?;
        let child = Command::new(bin)
            .arg("daemon")
            .env("MCP_SESSION_MANAGER_HOME", &state)
            .env("HOME", dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut daemon = Daemon {
            child,
            port,
            token: String::new(),
            state: state.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || daemon.child.try_wait()?.is_some() {
                return Err(std::io::Error::other("the daemon did not come up"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon.token = std::fs::read_to_string(state.join("token"))?
            .trim()
            .to_owned();
        Ok(daemon)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MCP server (or our proxy) on a child's stdio, spoken to in raw JSON-RPC, one request in
/// flight: the leanest client, so that only the server's own cost is measured.
pub struct StdioClient {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    line: String,
}

impl StdioClient {
    /// Starts `command` with piped stdin and stdout and completes the initialize handshake.
    pub fn start(mut command: Command, protocol_version: &str) -> std::io::Result<StdioClient> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut client = StdioClient {
            stdin: child.stdin.take().expect("piped"),
            stdout: BufReader::new(child.stdout.take().expect("piped")),
            child,
            next_id: 0,
            line: String::new(),
        };
        client.request(
            "initialize",
            serde_json::json!({"protocolVersion": protocol_version, "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"}}),
        )?;
        client
            .send(&serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(client)
    }

    pub fn send(&mut self, message: &serde_json::Value) -> std::io::Result<()> {
        writeln!(self.stdin, "{message}")?;
        self.stdin.flush()
    }

    /// The whole answer (`result` or `error`) to one request; notifications are skipped.
    pub fn request(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> std::io::Result<serde_json::Value> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(
            &serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )?;
        loop {
            self.line.clear();
            if self.stdout.read_line(&mut self.line)? == 0 {
                return Err(std::io::Error::other("the server closed its stdout"));
            }
            let answer: serde_json::Value = serde_json::from_str(&self.line)?;
            if answer["id"] == id {
                return Ok(answer);
            }
        }
    }
}

impl Drop for StdioClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
