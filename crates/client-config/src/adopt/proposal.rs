//! How an adopted server should be hosted, with the reason shown to the user. The rules, in
//! order: an entry already ours, or remote, is left; an argument naming the project means a
//! child per project; browser automation means a child per window; a server that owns a file
//! means one shared child (one writer loses no writes); a well-known stateless server is
//! shared; anything else gets a child per window, which never mixes two windows' state.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::discover::{EntryTransport, FoundServer};

/// How a server is hosted after adoption (`leave`: not adopted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hosting {
    Shared,
    PerProject,
    #[default]
    PerSession,
    Leave,
}

impl Hosting {
    pub fn as_str(self) -> &'static str {
        match self {
            Hosting::Shared => "shared",
            Hosting::PerProject => "per-project",
            Hosting::PerSession => "per-session",
            Hosting::Leave => "leave",
        }
    }
}

impl std::str::FromStr for Hosting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Hosting::Shared,
            Hosting::PerProject,
            Hosting::PerSession,
            Hosting::Leave,
        ]
        .into_iter()
        .find(|h| h.as_str() == s)
        .ok_or_else(|| format!("unknown hosting `{s}`; use shared, per-project or per-session"))
    }
}

/// The proposed hosting and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Proposal {
    pub share: Hosting,
    pub reason: String,
}

fn proposal(share: Hosting, reason: impl Into<String>) -> Proposal {
    Proposal {
        share,
        reason: reason.into(),
    }
}

/// Servers that keep no state between calls, by a word of their command line.
const STATELESS: &[&str] = &[
    "server-everything",
    "mcp-server-everything",
    "server-sequential-thinking",
    "mcp-server-sequential-thinking",
    "mcp-server-fetch",
    "server-fetch",
    "mcp-server-time",
    "server-time",
];

/// Words of a command line that mean a browser under automation.
const BROWSERS: &[&str] = &["playwright", "puppeteer", "browser", "chrome-devtools"];

/// Env names and argument endings that name a file the server writes.
const FILE_ENV_WORDS: &[&str] = &["FILE", "PATH", "DB", "DATABASE", "STORE", "STORAGE"];
const FILE_ENDINGS: &[&str] = &[".db", ".sqlite", ".sqlite3", ".jsonl", ".duckdb"];

/// The proposal for `server`; `project` is the directory its sessions run in.
pub fn propose(server: &FoundServer, project: &Path) -> Proposal {
    if let Some(problem) = &server.problem {
        return proposal(Hosting::Leave, format!("cannot be adopted: {problem}"));
    }
    if server.through_proxy {
        return proposal(Hosting::Leave, "already runs through mcp-session-proxy");
    }
    if server.transport != EntryTransport::Stdio {
        return proposal(
            Hosting::Leave,
            "a remote server: Claude Code speaks HTTP to it itself; hosted as shared, every window uses one connection through the host",
        );
    }
    if let Some(arg) = server.args.iter().find(|a| names_project(a, project)) {
        return proposal(
            Hosting::PerProject,
            format!(
                "its argument `{arg}` is the project directory: a child per project, `{{project}}` in its place"
            ),
        );
    }
    let words: Vec<String> = std::iter::once(server.command.clone().unwrap_or_default())
        .chain(server.args.iter().cloned())
        .map(|w| w.to_lowercase())
        .collect();
    if let Some(word) = BROWSERS
        .iter()
        .find(|b| words.iter().any(|w| w.contains(*b)))
    {
        return proposal(
            Hosting::PerSession,
            format!("browser automation (`{word}`): each window keeps its own browser"),
        );
    }
    if let Some(file) = owned_file(server) {
        return proposal(
            Hosting::Shared,
            format!("it owns {file}: one shared child is its only writer, so no write is lost"),
        );
    }
    if words.iter().any(|w| is_memory_server(w)) {
        return proposal(
            Hosting::Shared,
            "the reference memory server writes one file: one shared child is its only writer",
        );
    }
    if let Some(name) = STATELESS
        .iter()
        .find(|s| words.iter().any(|w| package_name(w) == **s))
    {
        return proposal(
            Hosting::Shared,
            format!("`{name}` keeps no state between calls: one child serves every window"),
        );
    }
    proposal(
        Hosting::PerSession,
        "unknown server: a child per window never mixes two windows' state",
    )
}

/// `.`, `./`, or the project directory itself.
pub(super) fn names_project(arg: &str, project: &Path) -> bool {
    let trimmed = arg.trim_end_matches(['/', '\\']);
    let project = project.to_string_lossy();
    trimmed == "." || (!trimmed.is_empty() && trimmed == project.trim_end_matches(['/', '\\']))
}

/// The env variable or argument that names a file the server writes, if any.
fn owned_file(server: &FoundServer) -> Option<String> {
    let env = server.env_names.iter().find(|name| {
        let upper = name.to_uppercase();
        FILE_ENV_WORDS.iter().any(|w| upper.contains(w))
            && server.env.get(*name).is_some_and(|v| looks_like_path(v))
    });
    if let Some(name) = env {
        return Some(format!("the file named by `{name}`"));
    }
    server
        .args
        .iter()
        .find(|a| FILE_ENDINGS.iter().any(|e| a.to_lowercase().ends_with(e)))
        .map(|a| format!("`{a}`"))
}

fn looks_like_path(value: &str) -> bool {
    value.contains('/') || value.contains('\\') || value.contains('.')
}

fn is_memory_server(word: &str) -> bool {
    matches!(
        package_name(word).as_str(),
        "server-memory" | "mcp-server-memory"
    )
}

/// The package a word of a command line names, spelled as on npm and PyPI:
/// `@scope/name@1.2` → `name`, a path → its file name without `.exe`/`.cmd`, and a Python
/// module (`python -m mcp_server_time`) → `mcp-server-time`.
fn package_name(word: &str) -> String {
    let last = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let name = match last.find('@') {
        Some(0) | None => last,
        Some(at) => &last[..at],
    };
    let name = [".exe", ".cmd", ".bat", ".py"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    name.replace('_', "-")
}
