//! Which file each MCP client reads its servers from, and under which key, for every OS. The
//! directories come in through `ClientDirs` so that each OS's answer is testable anywhere.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ConfigWriteError;
use crate::document::Dialect;

/// An MCP client whose config file we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// Claude Code, user scope (`~/.claude.json`) or local scope (its project entry).
    #[default]
    ClaudeCode,
    /// Claude Code's project file `./.mcp.json`, meant to be checked in.
    ClaudeCodeProject,
    /// `~/.claude/mcp.json`, read only through `claude --mcp-config FILE`.
    McpJson,
    ClaudeDesktop,
    Cursor,
}

impl ClientKind {
    pub const ALL: [ClientKind; 5] = [
        ClientKind::ClaudeCode,
        ClientKind::ClaudeCodeProject,
        ClientKind::McpJson,
        ClientKind::ClaudeDesktop,
        ClientKind::Cursor,
    ];

    /// The name used on the command line and in the manager API.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode => "claude-code",
            ClientKind::ClaudeCodeProject => "claude-code-project",
            ClientKind::McpJson => "mcp-json",
            ClientKind::ClaudeDesktop => "claude-desktop",
            ClientKind::Cursor => "cursor",
        }
    }

    /// A human name for messages.
    pub fn display_name(self) -> &'static str {
        match self {
            ClientKind::ClaudeCode | ClientKind::ClaudeCodeProject | ClientKind::McpJson => {
                "Claude Code"
            }
            ClientKind::ClaudeDesktop => "Claude Desktop",
            ClientKind::Cursor => "Cursor",
        }
    }

    /// Cursor is a VS Code fork and its JSON files are edited by hand with comments; the
    /// Claude clients parse strict JSON, so a comment there would break them and is refused.
    pub fn dialect(self) -> Dialect {
        match self {
            ClientKind::Cursor => Dialect::Jsonc,
            _ => Dialect::Json,
        }
    }

    /// `~/.claude.json` holds Claude Code's whole state (account, history): private when we
    /// create it. The others hold only server lists.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn new_file_mode(self) -> u32 {
        match self {
            ClientKind::ClaudeCode => 0o600,
            _ => 0o644,
        }
    }
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientKind {
    type Err = ConfigWriteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ClientKind::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ConfigWriteError::UnknownClient { name: s.to_owned() })
    }
}

/// Claude Code's scopes that live in `~/.claude.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Top-level `mcpServers`: every project sees the servers.
    #[default]
    User,
    /// `projects[<cwd>].mcpServers`: only this directory's sessions see them.
    Local,
}

impl FromStr for Scope {
    type Err = ConfigWriteError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Scope::User),
            "local" => Ok(Scope::Local),
            _ => Err(ConfigWriteError::UnknownScope { name: s.to_owned() }),
        }
    }
}

/// The operating systems whose path conventions we know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
}

impl Os {
    /// The OS this binary was built for (other Unixes follow Linux's layout).
    pub fn current() -> Os {
        if cfg!(target_os = "macos") {
            Os::MacOs
        } else if cfg!(windows) {
            Os::Windows
        } else {
            Os::Linux
        }
    }
}

/// The directories the file locations depend on: from the environment in production,
/// injected in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDirs {
    pub os: Os,
    pub home: PathBuf,
    /// The directory the command runs in: `.mcp.json` and local scope belong to it.
    pub cwd: PathBuf,
    /// `%APPDATA%` (Windows).
    pub appdata: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME` (Linux).
    pub xdg_config_home: Option<PathBuf>,
}

impl ClientDirs {
    /// The current OS, `$HOME` (then the platform's home), the process's cwd, `%APPDATA%`
    /// and `$XDG_CONFIG_HOME`.
    pub fn from_env() -> Result<ClientDirs, ConfigWriteError> {
        let home = home_dir().ok_or(ConfigWriteError::NoHomeDir)?;
        let cwd = std::env::current_dir().map_err(|source| ConfigWriteError::Io {
            action: "find the current directory",
            path: PathBuf::from("."),
            source,
        })?;
        let absolute = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        Ok(ClientDirs {
            os: Os::current(),
            home,
            cwd,
            appdata: absolute("APPDATA"),
            xdg_config_home: absolute("XDG_CONFIG_HOME"),
        })
    }

    /// The file `client` reads its servers from.
    pub fn config_file(&self, client: ClientKind) -> PathBuf {
        match client {
            ClientKind::ClaudeCode => self.home.join(".claude.json"),
            ClientKind::ClaudeCodeProject => self.cwd.join(".mcp.json"),
            ClientKind::McpJson => self.home.join(".claude").join("mcp.json"),
            ClientKind::Cursor => self.home.join(".cursor").join("mcp.json"),
            ClientKind::ClaudeDesktop => {
                let dir = match self.os {
                    Os::MacOs => self.home.join("Library").join("Application Support"),
                    Os::Windows => self
                        .appdata
                        .clone()
                        .unwrap_or_else(|| self.home.join("AppData").join("Roaming")),
                    Os::Linux => self
                        .xdg_config_home
                        .clone()
                        .unwrap_or_else(|| self.home.join(".config")),
                };
                dir.join("Claude").join("claude_desktop_config.json")
            }
        }
    }

    /// The project key Claude Code uses for `cwd` in `~/.claude.json`'s `projects`.
    pub fn project_key(&self) -> String {
        let key = self.cwd.to_string_lossy().into_owned();
        match self.os {
            // Claude Code keys Windows projects with forward slashes.
            Os::Windows => key.replace('\\', "/"),
            _ => key,
        }
    }
}

/// The keys from the top of the file down to the servers object.
pub(crate) fn servers_key_path(
    client: ClientKind,
    scope: Scope,
    project_key: impl FnOnce() -> String,
) -> Result<Vec<String>, ConfigWriteError> {
    match (client, scope) {
        (_, Scope::User) => Ok(vec!["mcpServers".into()]),
        (ClientKind::ClaudeCode, Scope::Local) => {
            Ok(vec!["projects".into(), project_key(), "mcpServers".into()])
        }
        (client, Scope::Local) => Err(ConfigWriteError::ScopeNotSupported { client }),
    }
}

/// `$HOME` first (tests set it), then the platform's answer (as msm-core does).
fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("USERPROFILE").map(PathBuf::from))
        .filter(|p| Path::new(p).is_absolute())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(os: Os, home: &str, appdata: Option<&str>, xdg: Option<&str>) -> ClientDirs {
        ClientDirs {
            os,
            home: PathBuf::from(home),
            cwd: PathBuf::from(home).join("project"),
            appdata: appdata.map(PathBuf::from),
            xdg_config_home: xdg.map(PathBuf::from),
        }
    }

    #[test]
    fn config_files_per_client_and_os() {
        let linux = dirs(Os::Linux, "/home/u", None, None);
        let linux_xdg = dirs(Os::Linux, "/home/u", None, Some("/cfg"));
        let mac = dirs(Os::MacOs, "/Users/u", None, None);
        let windows = dirs(
            Os::Windows,
            "/c/Users/u",
            Some("/c/Users/u/AppData/Roaming"),
            None,
        );
        let windows_no_appdata = dirs(Os::Windows, "/c/Users/u", None, None);
        let cases: Vec<(&ClientDirs, ClientKind, PathBuf)> = vec![
            (
                &linux,
                ClientKind::ClaudeCode,
                "/home/u/.claude.json".into(),
            ),
            (&mac, ClientKind::ClaudeCode, "/Users/u/.claude.json".into()),
            (
                &linux,
                ClientKind::ClaudeCodeProject,
                "/home/u/project/.mcp.json".into(),
            ),
            (
                &linux,
                ClientKind::McpJson,
                "/home/u/.claude/mcp.json".into(),
            ),
            (
                &linux,
                ClientKind::Cursor,
                "/home/u/.cursor/mcp.json".into(),
            ),
            (
                &windows,
                ClientKind::Cursor,
                Path::new("/c/Users/u").join(".cursor").join("mcp.json"),
            ),
            (
                &linux,
                ClientKind::ClaudeDesktop,
                "/home/u/.config/Claude/claude_desktop_config.json".into(),
            ),
            (
                &linux_xdg,
                ClientKind::ClaudeDesktop,
                "/cfg/Claude/claude_desktop_config.json".into(),
            ),
            (
                &mac,
                ClientKind::ClaudeDesktop,
                "/Users/u/Library/Application Support/Claude/claude_desktop_config.json".into(),
            ),
            (
                &windows,
                ClientKind::ClaudeDesktop,
                Path::new("/c/Users/u/AppData/Roaming")
                    .join("Claude")
                    .join("claude_desktop_config.json"),
            ),
            (
                &windows_no_appdata,
                ClientKind::ClaudeDesktop,
                Path::new("/c/Users/u")
                    .join("AppData")
                    .join("Roaming")
                    .join("Claude")
                    .join("claude_desktop_config.json"),
            ),
        ];
        for (dirs, client, expected) in cases {
            assert_eq!(
                dirs.config_file(client),
                expected,
                "{client} on {:?}",
                dirs.os
            );
        }
    }

    #[test]
    fn key_paths_per_scope() {
        let key = || "/home/u/p".to_owned();
        assert_eq!(
            servers_key_path(ClientKind::Cursor, Scope::User, key).unwrap(),
            ["mcpServers"]
        );
        assert_eq!(
            servers_key_path(ClientKind::ClaudeCode, Scope::Local, key).unwrap(),
            ["projects", "/home/u/p", "mcpServers"]
        );
        assert!(matches!(
            servers_key_path(ClientKind::ClaudeDesktop, Scope::Local, key),
            Err(ConfigWriteError::ScopeNotSupported { .. })
        ));
        let mut windows = dirs(Os::Windows, "C:\\Users\\u", None, None);
        windows.cwd = PathBuf::from("C:\\Users\\u\\proj");
        assert_eq!(windows.project_key(), "C:/Users/u/proj");
    }

    #[test]
    fn names_round_trip() {
        for client in ClientKind::ALL {
            assert_eq!(client.as_str().parse::<ClientKind>().unwrap(), client);
        }
        assert!("vim".parse::<ClientKind>().is_err());
        assert_eq!("local".parse::<Scope>().unwrap(), Scope::Local);
    }
}
