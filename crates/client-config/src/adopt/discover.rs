//! Finding every MCP server entry in the files Claude Code, Claude Desktop and Cursor read,
//! and reading each into a [`FoundServer`]. Env values are read (adoption moves them) but never
//! serialised: only their names leave this module in a listing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::{ClientDirs, ClientKind};
use crate::document::{self, Dialect};
use crate::merge::is_our_entry;

use super::proposal::{Proposal, propose};

/// Where an entry was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `~/.claude.json` `mcpServers`.
    User,
    /// `~/.claude.json` `projects[DIR].mcpServers`.
    Local,
    /// `DIR/.mcp.json`.
    Project,
    /// `~/.claude/mcp.json` (`claude --mcp-config`).
    McpJson,
    ClaudeDesktop,
    /// `~/.cursor/mcp.json`.
    Cursor,
    /// `DIR/.cursor/mcp.json`.
    CursorProject,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::User => "user",
            Source::Local => "local",
            Source::Project => "project",
            Source::McpJson => "mcp-json",
            Source::ClaudeDesktop => "claude-desktop",
            Source::Cursor => "cursor",
            Source::CursorProject => "cursor-project",
        }
    }

    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Source::Cursor | Source::CursorProject => Dialect::Jsonc,
            _ => Dialect::Json,
        }
    }

    /// The mode a file of this source is created with (only `~/.claude.json` is private).
    pub(crate) fn new_file_mode(self) -> u32 {
        match self {
            Source::User | Source::Local => 0o600,
            _ => 0o644,
        }
    }
}

/// How an entry's server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryTransport {
    Stdio,
    Http,
    Sse,
}

/// One server entry of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FoundServer {
    /// The entry's name in the client (what `mcp__NAME__tool` is built from).
    pub name: String,
    pub file: PathBuf,
    pub scope: Source,
    /// The project directory the entry belongs to (local and project scopes).
    pub project: Option<String>,
    /// Where the servers object sits in the file.
    #[serde(skip)]
    pub key_path: Vec<String>,
    pub transport: EntryTransport,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    /// The names of its env variables; the values are never shown.
    pub env_names: Vec<String>,
    #[serde(skip)]
    pub env: BTreeMap<String, String>,
    pub url: Option<String>,
    /// The names of a remote entry's headers; the values (tokens, often) are never shown.
    pub header_names: Vec<String>,
    #[serde(skip)]
    pub headers: BTreeMap<String, String>,
    /// It already runs `mcp-session-proxy`.
    pub through_proxy: bool,
    /// Ours because of an earlier adoption (the record has its original).
    pub adopted: bool,
    /// The target it runs through, when it is ours.
    pub target: Option<String>,
    pub proposal: Proposal,
    /// Why it cannot be adopted, when it cannot.
    pub problem: Option<String>,
}

/// A file that could not be read; listed so that the user knows it was skipped.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub file: PathBuf,
    pub reason: String,
}

/// Everything found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    pub servers: Vec<FoundServer>,
    pub skipped_files: Vec<SkippedFile>,
}

/// Reads every file of every client (a missing file has no servers). `project` is the
/// directory whose `.mcp.json` and `.cursor/mcp.json` are read.
pub fn discover(dirs: &ClientDirs, project: &Path) -> Discovery {
    let mut found = Discovery::default();
    let project_key = project.to_string_lossy().into_owned();
    let claude = dirs.config_file(ClientKind::ClaudeCode);
    let files: [(Source, PathBuf); 6] = [
        (Source::User, claude.clone()),
        (Source::Project, project.join(".mcp.json")),
        (Source::McpJson, dirs.config_file(ClientKind::McpJson)),
        (
            Source::ClaudeDesktop,
            dirs.config_file(ClientKind::ClaudeDesktop),
        ),
        (Source::Cursor, dirs.config_file(ClientKind::Cursor)),
        (
            Source::CursorProject,
            project.join(".cursor").join("mcp.json"),
        ),
    ];
    for (source, file) in files {
        let text = match std::fs::read(&file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    found.skipped_files.push(SkippedFile {
                        file,
                        reason: "not UTF-8 text".into(),
                    });
                    continue;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                found.skipped_files.push(SkippedFile {
                    file,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let root = match document::parse(&text, source.dialect()) {
            Ok(document::Document { root: Some(root) }) => root.to_value(),
            Ok(_) => continue,
            Err(e) => {
                found.skipped_files.push(SkippedFile {
                    file,
                    reason: format!("{}:{}: {}", e.line, e.column, e.reason),
                });
                continue;
            }
        };
        let project_of_file =
            matches!(source, Source::Project | Source::CursorProject).then(|| project_key.clone());
        read_servers(
            &mut found.servers,
            &root,
            &file,
            source,
            vec!["mcpServers".into()],
            project_of_file,
            project,
        );
        if source == Source::User
            && let Some(projects) = root.get("projects").and_then(Value::as_object)
        {
            for (dir, entry) in projects {
                read_servers(
                    &mut found.servers,
                    entry,
                    &file,
                    Source::Local,
                    vec!["projects".into(), dir.clone(), "mcpServers".into()],
                    Some(dir.clone()),
                    Path::new(dir),
                );
            }
        }
    }
    found
}

fn read_servers(
    out: &mut Vec<FoundServer>,
    root: &Value,
    file: &Path,
    scope: Source,
    key_path: Vec<String>,
    project: Option<String>,
    project_dir: &Path,
) {
    let Some(servers) = root
        .get(key_path.last().map_or("", String::as_str))
        .and_then(Value::as_object)
    else {
        return;
    };
    for (name, entry) in servers {
        out.push(read_entry(
            name,
            entry,
            file,
            scope,
            key_path.clone(),
            project.clone(),
            project_dir,
        ));
    }
}

fn read_entry(
    name: &str,
    entry: &Value,
    file: &Path,
    scope: Source,
    key_path: Vec<String>,
    project: Option<String>,
    project_dir: &Path,
) -> FoundServer {
    let mut problem = None;
    let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
    let url = text("url");
    let transport = match (text("type").as_deref(), &url) {
        (Some("http" | "streamable-http"), _) => EntryTransport::Http,
        (Some("sse"), _) => EntryTransport::Sse,
        (Some("stdio"), _) => EntryTransport::Stdio,
        (Some(other), _) => {
            problem = Some(format!("unknown type `{other}`"));
            EntryTransport::Stdio
        }
        (None, Some(url)) if url.trim_end_matches('/').ends_with("/sse") => EntryTransport::Sse,
        (None, Some(_)) => EntryTransport::Http,
        (None, None) => EntryTransport::Stdio,
    };
    let strings = |key: &str| -> Result<Vec<String>, String> {
        match entry.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("`{key}` holds a value that is not a string"))
                })
                .collect(),
            Some(_) => Err(format!("`{key}` is not a list")),
        }
    };
    let mut args = strings("args").unwrap_or_else(|reason| {
        problem.get_or_insert(reason);
        Vec::new()
    });
    let mut string_map = |key: &str| {
        let mut map = BTreeMap::new();
        match entry.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(object)) => {
                for (name, value) in object {
                    match value {
                        Value::String(s) => {
                            map.insert(name.clone(), s.clone());
                        }
                        _ => {
                            problem.get_or_insert(format!("{key} `{name}` is not a string"));
                        }
                    }
                }
            }
            Some(_) => {
                problem.get_or_insert(format!("`{key}` is not an object"));
            }
        }
        map
    };
    let env = string_map("env");
    let headers = string_map("headers");
    let mut command = text("command");
    if !entry.is_object() {
        problem.get_or_insert("the entry is not an object".into());
    } else if transport == EntryTransport::Stdio {
        match &command {
            Some(c) if !c.trim().is_empty() => {
                (command, args) = unwrap_cmd_c(c, args);
            }
            _ => {
                problem.get_or_insert("no `command`".into());
            }
        }
    } else if url.is_none() {
        problem.get_or_insert("no `url`".into());
    }
    let through_proxy = is_our_entry(entry);
    let target = through_proxy
        .then(|| {
            args.windows(2)
                .find(|pair| pair[0] == "--target")
                .map(|pair| pair[1].clone())
        })
        .flatten();
    let cwd = text("cwd");
    let mut found = FoundServer {
        name: name.to_owned(),
        file: file.to_owned(),
        scope,
        project,
        key_path,
        transport,
        command,
        args,
        cwd,
        env_names: env.keys().cloned().collect(),
        env,
        url,
        header_names: headers.keys().cloned().collect(),
        headers,
        through_proxy,
        adopted: false,
        target,
        proposal: Proposal::default(),
        problem,
    };
    found.proposal = propose(&found, project_dir);
    found
}

/// `cmd /c npx -y pkg` (how Windows entries start `.cmd` shims) is `npx -y pkg`: the host
/// resolves shims itself, and a per-project or shared child should not hide behind `cmd`.
pub(crate) fn unwrap_cmd_c(command: &str, args: Vec<String>) -> (Option<String>, Vec<String>) {
    let file = command.rsplit(['/', '\\']).next().unwrap_or(command);
    let is_cmd = file.eq_ignore_ascii_case("cmd") || file.eq_ignore_ascii_case("cmd.exe");
    match args.split_first() {
        Some((flag, rest)) if is_cmd && flag.eq_ignore_ascii_case("/c") && !rest.is_empty() => {
            // `cmd /c "npx -y pkg"`: one string holding the whole command line.
            let words = if rest.len() == 1 {
                split_command_line(&rest[0])
            } else {
                rest.to_vec()
            };
            match words.split_first() {
                Some((first, tail)) => (Some(first.clone()), tail.to_vec()),
                None => (Some(command.to_owned()), args),
            }
        }
        _ => (Some(command.to_owned()), args),
    }
}

/// Splits a Windows command line into words: spaces separate, double quotes group (the
/// quotes themselves dropped), as `cmd` hands a line to a program.
fn split_command_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            ' ' | '\t' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unwrap(command: &str, args: &[&str]) -> (String, Vec<String>) {
        let (command, args) = unwrap_cmd_c(command, args.iter().map(|a| a.to_string()).collect());
        (command.unwrap(), args)
    }

    #[test]
    fn windows_cmd_wrappers_are_unwrapped() {
        assert_eq!(
            unwrap(
                "cmd",
                &["/c", "npx", "-y", "@modelcontextprotocol/server-everything"]
            ),
            (
                "npx".into(),
                vec![
                    "-y".into(),
                    "@modelcontextprotocol/server-everything".into()
                ]
            )
        );
        assert_eq!(
            unwrap(
                r"C:\Windows\System32\cmd.exe",
                &["/C", "uvx", "mcp-server-fetch"]
            ),
            ("uvx".into(), vec!["mcp-server-fetch".into()])
        );
        // One string holding the whole line, with a quoted path that has spaces.
        assert_eq!(
            unwrap(
                "cmd.exe",
                &[
                    r#"/c"#,
                    r#""C:\Program Files\nodejs\npx.cmd" -y "@scope/pkg" "D:\My Projects\app""#
                ]
            ),
            (
                r"C:\Program Files\nodejs\npx.cmd".into(),
                vec![
                    "-y".into(),
                    "@scope/pkg".into(),
                    r"D:\My Projects\app".into()
                ]
            )
        );
        // Not a wrapper: left as it is.
        assert_eq!(
            unwrap(r"C:\Program Files\nodejs\node.exe", &["server.js"]),
            (
                r"C:\Program Files\nodejs\node.exe".into(),
                vec!["server.js".into()]
            )
        );
        assert_eq!(unwrap("cmd", &["/c"]), ("cmd".into(), vec!["/c".into()]));
    }
}
