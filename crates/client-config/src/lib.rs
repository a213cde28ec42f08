//! Points MCP clients (Claude Code, Claude Desktop, Cursor) at `mcp-session-proxy` by merging
//! one stdio entry per target into the client's config file. The user's file is precious
//! (`~/.claude.json` is all of Claude Code's state): our entries are spliced into the text and
//! every other byte stays as it was; the write is backed up, atomic, and retried if another
//! program changed the file meanwhile. Used by the CLI (`generate-config`), the manager API
//! (`POST /config/generate`) and the tray app.

pub mod adopt;
mod client;
pub mod document;
mod merge;
mod proxy_path;
mod report;
mod writer;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub use client::{ClientDirs, ClientKind, Os, Scope};
pub use merge::{
    EntryEdit, EntryOutcome, EntryReport, EntryText, PROXY_FILE_PREFIX, Replacement, find_entry,
    is_our_entry, replace_entries,
};
pub use proxy_path::{ExeDir, find_proxy, find_proxy_for_current_exe, proxy_file_name};
pub use report::GenerateReport;
pub use writer::{BACKUPS_KEPT, PAUSE_BEFORE_RENAME_ENV};

use document::Dialect;
use merge::{MergeAction, MergeError};

/// How many times a merge is redone when the file keeps changing under us.
pub const MAX_ATTEMPTS: u32 = 5;

/// What to do, to which client's file, with every OS-dependent input injected.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    pub client: ClientKind,
    pub scope: Scope,
    pub dirs: ClientDirs,
    pub action: Action,
    /// Compute and report (with a diff), write nothing.
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write an entry per target, each running `proxy --target NAME`.
    Write {
        /// The absolute path of `mcp-session-proxy` (see `find_proxy`).
        proxy: PathBuf,
        /// Target names, usually from `select_targets`.
        targets: Vec<String>,
        /// Replace same-named entries that are not ours.
        force: bool,
    },
    /// Take our entries out: all of them (`None`) or those named.
    Remove { targets: Option<Vec<String>> },
}

/// The options of `generate-config`: the CLI's flags and the body of `POST /config/generate`
/// (`{"client": "claude-code", "dry_run": true, ...}`, every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateOptions {
    pub client: ClientKind,
    pub scope: Scope,
    /// Only these targets; empty: every enabled one (or, with `remove`, every entry of ours).
    pub targets: Vec<String>,
    pub dry_run: bool,
    pub force: bool,
    pub remove: bool,
    /// The project directory for `claude-code-project` and `--scope local` (absolute); the
    /// process's cwd when absent. The manager API passes the caller's, as its own is no project.
    pub cwd: Option<PathBuf>,
}

impl GenerateOptions {
    /// Checks the options against config.toml and builds the request. `find_proxy` is called
    /// only when entries are written (removing needs no proxy, even a missing one).
    pub fn into_request(
        self,
        config: &msm_core::Config,
        mut dirs: ClientDirs,
        find_proxy: impl FnOnce() -> Result<PathBuf, ConfigWriteError>,
    ) -> Result<GenerateRequest, ConfigWriteError> {
        if let Some(cwd) = self.cwd {
            if !cwd.is_absolute() {
                return Err(ConfigWriteError::CwdNotAbsolute { path: cwd });
            }
            dirs.cwd = cwd;
        }
        let action = if self.remove {
            Action::Remove {
                targets: (!self.targets.is_empty()).then_some(self.targets),
            }
        } else {
            let targets = select_targets(config, &self.targets)?;
            Action::Write {
                proxy: find_proxy()?,
                targets,
                force: self.force,
            }
        };
        Ok(GenerateRequest {
            client: self.client,
            scope: self.scope,
            dirs,
            action,
            dry_run: self.dry_run,
        })
    }
}

/// Why nothing was written. Every variant leaves the user's file as it was.
#[derive(Debug, thiserror::Error)]
pub enum ConfigWriteError {
    #[error(
        "unknown client `{name}`; known clients: claude-code, claude-code-project, mcp-json, claude-desktop, cursor"
    )]
    UnknownClient { name: String },
    #[error("unknown scope `{name}`; use `user` or `local`")]
    UnknownScope { name: String },
    #[error("--scope local applies to --client claude-code only, not {client}")]
    ScopeNotSupported { client: ClientKind },
    #[error("unknown target `{name}`; configured targets: {}", known.join(", "))]
    UnknownTarget { name: String, known: Vec<String> },
    #[error("target `{name}` is disabled in config.toml; set `enabled = true` there first")]
    DisabledTarget { name: String },
    #[error("no targets to write: every target in config.toml is disabled")]
    NoTargets,
    #[error(
        "mcp-session-proxy was not found (looked for {}); install it beside mcp-session-manager or on PATH; no config was written",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    ProxyNotFound { searched: Vec<PathBuf> },
    #[error(
        "the proxy beside this binary ({}) is inside an AppImage, whose mount at {} is gone once the app exits, and none is on PATH; install the .deb (or put mcp-session-proxy on PATH); no config was written",
        path.display(), mount.display()
    )]
    ProxyOnlyInAppImage { path: PathBuf, mount: PathBuf },
    #[error("the proxy path `{}` is not valid UTF-8, which a JSON config cannot hold", path.display())]
    ProxyNotUtf8 { path: PathBuf },
    #[error("the project directory `{}` is not absolute", path.display())]
    CwdNotAbsolute { path: PathBuf },
    #[error("the proxy path `{}` is not absolute; a client launches it from any directory", path.display())]
    ProxyNotAbsolute { path: PathBuf },
    #[error("{}:{line}:{column}: not valid JSON ({reason}); the file was left unchanged", path.display())]
    InvalidJson {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{} is not UTF-8 text; the file was left unchanged", path.display())]
    NotUtf8 { path: PathBuf },
    #[error("{}: {what} is not a JSON object; the file was left unchanged", path.display())]
    NotAnObject { path: PathBuf, what: String },
    #[error("{} is read-only; it was left unchanged (make it writable, then run again)", path.display())]
    ReadOnly { path: PathBuf },
    #[error("cannot {action} {}: {source}; the file was left unchanged", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} changed every time we tried to write it ({attempts} attempts); nothing was written: try again when the program writing it is idle", path.display())]
    ConcurrentWriter { path: PathBuf, attempts: u32 },
    #[error("no home directory: set HOME")]
    NoHomeDir,
}

impl ConfigWriteError {
    /// Why `file` cannot be merged into, as the error the user sees.
    pub(crate) fn from_merge(file: &Path, error: MergeError) -> ConfigWriteError {
        match error {
            MergeError::Syntax(s) => ConfigWriteError::InvalidJson {
                path: file.to_owned(),
                line: s.line,
                column: s.column,
                reason: s.reason,
            },
            MergeError::NotAnObject { what } => ConfigWriteError::NotAnObject {
                path: file.to_owned(),
                what,
            },
        }
    }

    /// True when the request itself is wrong (a 400 for the manager API), false when the
    /// file system or the file is (a 409/500).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            ConfigWriteError::UnknownClient { .. }
                | ConfigWriteError::UnknownScope { .. }
                | ConfigWriteError::ScopeNotSupported { .. }
                | ConfigWriteError::UnknownTarget { .. }
                | ConfigWriteError::DisabledTarget { .. }
                | ConfigWriteError::NoTargets
                | ConfigWriteError::ProxyNotAbsolute { .. }
                | ConfigWriteError::ProxyNotUtf8 { .. }
                | ConfigWriteError::CwdNotAbsolute { .. }
        )
    }
}

/// The targets to write: every enabled one, or the `wanted` ones (each must exist and be
/// enabled), in config order.
pub fn select_targets(
    config: &msm_core::Config,
    wanted: &[String],
) -> Result<Vec<String>, ConfigWriteError> {
    if wanted.is_empty() {
        let enabled: Vec<String> = config
            .targets
            .values()
            .filter(|t| t.enabled)
            .map(|t| t.name.clone())
            .collect();
        if enabled.is_empty() {
            return Err(ConfigWriteError::NoTargets);
        }
        return Ok(enabled);
    }
    let mut selected = Vec::new();
    for name in wanted {
        let target = config
            .target(name)
            .map_err(|unknown| ConfigWriteError::UnknownTarget {
                name: unknown.name,
                known: unknown.known,
            })?;
        if !target.enabled {
            return Err(ConfigWriteError::DisabledTarget { name: name.clone() });
        }
        if !selected.contains(name) {
            selected.push(name.clone());
        }
    }
    Ok(selected)
}

/// The entry a client launches for `target`.
pub fn proxy_entry(proxy: &Path, target: &str) -> Value {
    json!({
        "type": "stdio",
        "command": proxy.to_string_lossy(),
        "args": ["--target", target],
    })
}

/// Merges (or, for a dry run, only computes) the request into the client's file. The proxy of
/// `Action::Write` must be an existing file.
pub fn generate(request: &GenerateRequest) -> Result<GenerateReport, ConfigWriteError> {
    generate_with_hook(request, &mut writer::pause_if_asked)
}

/// `generate`, calling `before_rename` between writing the temp file and the final check
/// (tests change the file there to play a concurrent writer).
#[doc(hidden)]
pub fn generate_with_hook(
    request: &GenerateRequest,
    before_rename: &mut dyn FnMut(&Path),
) -> Result<GenerateReport, ConfigWriteError> {
    let client = request.client;
    let dialect = client.dialect();
    let merge_action = match &request.action {
        Action::Write {
            proxy,
            targets,
            force,
        } => {
            if !proxy.is_absolute() {
                return Err(ConfigWriteError::ProxyNotAbsolute {
                    path: proxy.clone(),
                });
            }
            if proxy.to_str().is_none() {
                return Err(ConfigWriteError::ProxyNotUtf8 {
                    path: proxy.clone(),
                });
            }
            // Never a config that points at nothing.
            if !proxy.is_file() {
                return Err(ConfigWriteError::ProxyNotFound {
                    searched: vec![proxy.clone()],
                });
            }
            if targets.is_empty() {
                return Err(ConfigWriteError::NoTargets);
            }
            MergeAction::Write {
                entries: targets
                    .iter()
                    .map(|t| (t.clone(), proxy_entry(proxy, t)))
                    .collect(),
                force: *force,
            }
        }
        Action::Remove { targets } => MergeAction::Remove {
            only: targets.clone(),
        },
    };
    // Fail on a wrong scope before touching anything.
    client::servers_key_path(client, request.scope, String::new)?;
    let file = follow_symlink(request.dirs.config_file(client));
    writer::remove_stale_temp_files(&file);

    for attempt in 1..=MAX_ATTEMPTS {
        let snapshot = writer::read_snapshot(&file)?;
        let text = match &snapshot {
            None => "",
            Some(s) => std::str::from_utf8(&s.bytes)
                .map_err(|_| ConfigWriteError::NotUtf8 { path: file.clone() })?,
        };
        let key_path = client::servers_key_path(client, request.scope, || {
            existing_project_key(text, dialect, &request.dirs)
        })?;
        let merged = merge::merge(text, dialect, &key_path, &merge_action)
            .map_err(|e| ConfigWriteError::from_merge(&file, e))?;
        let changed = merged.text != text;
        let mut report = GenerateReport {
            client,
            scope: request.scope,
            file: file.clone(),
            key_path,
            proxy: match &request.action {
                Action::Write { proxy, .. } => Some(proxy.clone()),
                Action::Remove { .. } => None,
            },
            removing: matches!(request.action, Action::Remove { .. }),
            entries: merged.entries,
            dry_run: request.dry_run,
            changed,
            written: false,
            created: false,
            backup: None,
            diff: if changed {
                report::unified_diff(&file, text, &merged.text)
            } else {
                String::new()
            },
            attempts: attempt,
        };
        if !changed || request.dry_run {
            return Ok(report);
        }
        match writer::commit(
            &file,
            snapshot.as_ref(),
            merged.text.as_bytes(),
            client.new_file_mode(),
            before_rename,
        )? {
            writer::Commit::Written { backup } => {
                report.written = true;
                report.created = snapshot.is_none();
                report.backup = backup;
                return Ok(report);
            }
            writer::Commit::ChangedUnderUs => {
                tracing::info!(
                    "{} changed while we merged into it; merging again",
                    file.display()
                );
            }
        }
    }
    Err(ConfigWriteError::ConcurrentWriter {
        path: file,
        attempts: MAX_ATTEMPTS,
    })
}

/// A symlinked config (dotfile managers do this) is edited where it points, keeping the link.
fn follow_symlink(path: PathBuf) -> PathBuf {
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(&path).unwrap_or(path),
        _ => path,
    }
}

/// The `projects` key naming the cwd: an existing one spelled with the other separator (or,
/// on Windows, another case) is reused, so that we never add a second entry for one project.
fn existing_project_key(text: &str, dialect: Dialect, dirs: &ClientDirs) -> String {
    let wanted = dirs.project_key();
    let normalise = |key: &str| {
        let key = key.replace('\\', "/");
        let key = key.trim_end_matches('/').to_owned();
        if dirs.os == Os::Windows {
            key.to_lowercase()
        } else {
            key
        }
    };
    let Ok(document::Document { root: Some(root) }) = document::parse(text, dialect) else {
        return wanted;
    };
    let projects = root
        .as_object()
        .and_then(|o| o.get("projects"))
        .and_then(|m| m.value.as_object());
    projects
        .and_then(|p| {
            p.members
                .iter()
                .rev()
                .find(|m| normalise(&m.key) == normalise(&wanted))
        })
        .map_or(wanted, |m| m.key.clone())
}
