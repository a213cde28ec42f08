//! `mcp-session-proxy`: the stdio sidecar that Claude Code launches for every session. It
//! ignores SIGINT, finds or starts the shared daemon of its target, and forwards every MCP
//! message verbatim between its stdin/stdout and the target's transport (streamable HTTP,
//! legacy HTTP+SSE or plain JSON POST), re-attaching without the client noticing when the
//! daemon restarts.
//!
//! Map: [`proxy`] is the core loop and owns all state; [`transport`] moves bytes (one small
//! trait, one type per transport); [`discovery`] finds or starts the daemon; [`jsonrpc`] reads
//! just enough of each message to route it; [`stdin_lines`], [`sse`] and [`http`] are the
//! plumbing; [`signals`] keeps SIGINT out.
//!
//! Known limits: no TLS, by design: an `https://` url target is reached through the host's front
//! on the target's `port` (the host holds the TLS connection for every window), and without a
//! port it is refused with a clear error; the stateless revision's `Mcp-Param-*` headers are learnt from the
//! `tools/list` answers this proxy forwarded (a call before any listing goes without them, and
//! the SDKs re-list and retry on the server's header mismatch); on Windows, Ctrl-C is ignored from the moment the runtime starts
//! (a few milliseconds into `main`), not before.

pub mod discovery;
pub mod http;
pub mod jsonrpc;
pub mod param_headers;
pub mod proxy;
pub mod signals;
pub mod sse;
pub mod stdin_lines;
pub mod transport;

use std::path::PathBuf;

pub use proxy::{ProxyOptions, run};

/// The command line of `mcp-session-proxy`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "mcp-session-proxy",
    version,
    about = "Stdio MCP proxy for Claude Code: ignores SIGINT and forwards to the shared MCP Session Manager daemon of a target."
)]
pub struct Args {
    /// The target in config.toml to forward to.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// The project directory sent as Mcp-Project-Path (default: $CLAUDE_PROJECT_DIR, else the
    /// current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Also write the log to this file (stderr gets it either way; level from RUST_LOG).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// `--project`, else `CLAUDE_PROJECT_DIR`, else the current directory; always absolute.
pub fn project_dir(explicit: Option<PathBuf>) -> std::io::Result<PathBuf> {
    let chosen = explicit
        .or_else(|| {
            std::env::var_os("CLAUDE_PROJECT_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map_or_else(std::env::current_dir, Ok)?;
    std::path::absolute(chosen)
}
