//! Adopting the servers a user already has: every stdio entry of their client files becomes a
//! hosted target in config.toml, and the entry itself runs our proxy under the same name, so
//! that tool names (`mcp__NAME__tool`) and permission lists keep working. Undo puts each
//! entry's original bytes back.
//!
//! Order of writes, so that a crash at any point loses nothing: the record (each entry's
//! original text, mode 0600) first, then `secrets.toml` (env values, 0600), then config.toml,
//! then the caller's hook (the running host loads the targets), and only then the client files,
//! from which the env values leave. Every file is written atomically with a backup.
//!
//! Exactness: adoption appends one block per target to config.toml (and secrets.toml) and
//! replaces only the value of each adopted entry. Undo removes exactly those blocks and writes
//! back exactly those values, so files nobody else touched come back byte for byte; in a file
//! the user edited meanwhile only our entries and blocks change.

mod discover;
mod proposal;
mod record;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use msm_core::Config;
use msm_core::config::{DEFAULT_CONFIG_TOML, PROJECT_PLACEHOLDER};

use crate::merge::{self, EntryEdit, Replacement};
use crate::writer;
use crate::{ClientDirs, ConfigWriteError, MAX_ATTEMPTS, proxy_entry, report};

pub use discover::{Discovery, EntryTransport, FoundServer, SkippedFile, Source, discover};
pub use proposal::{Hosting, Proposal};
use record::{Record, RecordEntry, RecordTarget};

/// What to adopt or undo, and where our own files are.
#[derive(Debug, Clone)]
pub struct AdoptRequest {
    /// Server names (every entry of that name in any file); empty with `all`.
    pub names: Vec<String>,
    pub all: bool,
    pub dry_run: bool,
    /// Hosting chosen per server name, instead of the proposal.
    pub share: BTreeMap<String, Hosting>,
    /// The project whose `.mcp.json` is read, and whose directory an argument may name.
    pub project: PathBuf,
    pub dirs: ClientDirs,
    /// config.toml; `secrets.toml` sits beside it.
    pub config_path: PathBuf,
    pub record_path: PathBuf,
    /// The proxy the rewritten entries run (absolute, existing).
    pub proxy: PathBuf,
    /// The variables `${VAR}` in an entry expand from, as Claude Code expands them from its own
    /// environment: the adopting user's (`std::env::vars()`).
    pub environment: BTreeMap<String, String>,
}

/// One server entry adopted (or, in a dry run, to be adopted).
#[derive(Debug, Clone, Serialize)]
pub struct AdoptedEntry {
    pub name: String,
    pub file: PathBuf,
    pub scope: Source,
    pub target: String,
    pub share: Hosting,
    pub port: u16,
}

/// An entry not adopted (or not undone), and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedEntry {
    pub name: String,
    pub file: Option<PathBuf>,
    pub reason: String,
}

/// The unified diff of one file (secret values masked).
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    pub file: PathBuf,
    pub diff: String,
}

/// What `adopt` or `adopt --undo` did, or would do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdoptReport {
    pub dry_run: bool,
    pub adopted: Vec<AdoptedEntry>,
    pub undone: Vec<String>,
    pub skipped: Vec<SkippedEntry>,
    /// Targets added to (or removed from) config.toml.
    pub targets: Vec<String>,
    pub diffs: Vec<FileDiff>,
}

impl AdoptReport {
    /// A few lines for a terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run {
            "would adopt"
        } else {
            "adopted"
        };
        for entry in &self.adopted {
            out.push_str(&format!(
                "{verb} {} ({}, {}) as target `{}` ({}, port {})\n",
                entry.name,
                entry.scope.as_str(),
                entry.file.display(),
                entry.target,
                entry.share.as_str(),
                entry.port
            ));
        }
        let verb = if self.dry_run { "would undo" } else { "undid" };
        for name in &self.undone {
            out.push_str(&format!("{verb} {name}\n"));
        }
        for skip in &self.skipped {
            out.push_str(&format!("skipped {}: {}\n", skip.name, skip.reason));
        }
        if self.adopted.is_empty() && self.undone.is_empty() {
            out.push_str("nothing changed\n");
        }
        out
    }
}

/// Why adoption stopped. Files written before the error are consistent (see the module docs).
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error(transparent)]
    Write(#[from] ConfigWriteError),
    #[error("{0}")]
    Config(#[from] msm_core::ConfigError),
    #[error("the adoption record {} is not readable: {reason}; nothing was changed", path.display())]
    Record { path: PathBuf, reason: String },
    #[error(
        "no free port left in [manager] adopt_ports ({low}-{high}); widen the range in config.toml"
    )]
    NoPort { low: u16, high: u16 },
    #[error("the host did not take the new targets: {0}; the client files were left as they were")]
    HostNotReady(String),
}

/// Lists every server entry, marking those adopted earlier.
pub fn list(
    dirs: &ClientDirs,
    project: &Path,
    record_path: &Path,
) -> Result<Discovery, AdoptError> {
    let record = Record::load(record_path)?;
    let mut found = discover(dirs, project);
    for server in &mut found.servers {
        server.adopted = record
            .entry(&server.file, &server.key_path, &server.name)
            .is_some();
    }
    Ok(found)
}

/// A target to add: its block in config.toml and in secrets.toml.
#[derive(Clone, PartialEq)]
struct NewTarget {
    name: String,
    port: u16,
    share: Hosting,
    command: String,
    args: Vec<String>,
    cwd: Option<String>,
    env: BTreeMap<String, String>,
    /// A remote entry adopted as a `url` target that the host fronts.
    url: Option<String>,
    transport: EntryTransport,
    headers: BTreeMap<String, String>,
}

impl NewTarget {
    /// Whether both run the same thing (then one target serves both entries).
    fn same_launch(&self, other: &NewTarget) -> bool {
        let renamed = NewTarget {
            name: other.name.clone(),
            port: other.port,
            ..self.clone()
        };
        renamed == *other
    }

    /// This launch with every `${VAR}` and `${VAR:-default}` expanded, as Claude Code does in
    /// command, args, env, url and headers; `Err(VAR)` names a variable that is not set.
    fn expanded(mut self, environment: &BTreeMap<String, String>) -> Result<NewTarget, String> {
        let expand = |value: &mut String| -> Result<(), String> {
            *value = expand_variables(value, environment)?;
            Ok(())
        };
        expand(&mut self.command)?;
        self.args.iter_mut().try_for_each(expand)?;
        self.cwd.iter_mut().try_for_each(expand)?;
        self.env.values_mut().try_for_each(expand)?;
        self.url.iter_mut().try_for_each(expand)?;
        self.headers.values_mut().try_for_each(expand)?;
        Ok(self)
    }

    /// The tables of secrets.toml this target gets: values that must not sit in config.toml.
    fn secret_tables(&self) -> impl Iterator<Item = (&'static str, &BTreeMap<String, String>)> {
        [("env", &self.env), ("headers", &self.headers)]
            .into_iter()
            .filter(|(_, values)| !values.is_empty())
    }

    fn config_block(&self, server: &FoundServer) -> String {
        let mut doc = toml_edit::DocumentMut::new();
        let mut table = toml_edit::Table::new();
        if let Some(url) = &self.url {
            table["url"] = toml_edit::value(url.as_str());
            table["transport"] = toml_edit::value(match self.transport {
                EntryTransport::Sse => "sse",
                _ => "streamable-http",
            });
            table["port"] = toml_edit::value(i64::from(self.port));
        } else {
            table["command"] = toml_edit::value(self.command.as_str());
            let mut args = toml_edit::Array::new();
            args.extend(self.args.iter().map(String::as_str));
            table["args"] = toml_edit::value(args);
            if let Some(cwd) = &self.cwd {
                table["cwd"] = toml_edit::value(cwd.as_str());
            }
            table["transport"] = toml_edit::value("stdio");
            table["port"] = toml_edit::value(i64::from(self.port));
            table["share"] = toml_edit::value(match self.share {
                Hosting::Shared => "shared",
                Hosting::PerProject => "per-project",
                _ => "per-session",
            });
            table["start"] = toml_edit::value("on-demand");
        }
        let secrets: Vec<String> = self
            .secret_tables()
            .map(|(table, values)| {
                let names: Vec<&str> = values.keys().map(String::as_str).collect();
                format!(
                    " Its {table} values ({}) are in secrets.toml.",
                    names.join(", ")
                )
            })
            .collect();
        table.decor_mut().set_prefix(format!(
            "\n# Adopted from {} ({}, `{}`) by `mcp-session-manager adopt`; `adopt --undo {}` puts it back.{}\n",
            server.file.display(),
            server.scope.as_str(),
            server.name,
            server.name,
            secrets.concat(),
        ));
        let mut targets = toml_edit::Table::new();
        targets.set_implicit(true);
        targets.insert(&self.name, toml_edit::Item::Table(table));
        doc.insert("targets", toml_edit::Item::Table(targets));
        doc.to_string()
    }

    fn secrets_block(&self) -> Option<String> {
        self.secret_tables().next()?;
        let mut doc = toml_edit::DocumentMut::new();
        let mut target = toml_edit::Table::new();
        target.set_implicit(true);
        for (name, values) in self.secret_tables() {
            let mut table = toml_edit::Table::new();
            for (key, value) in values {
                table.insert(key, toml_edit::value(value.as_str()));
            }
            target.insert(name, toml_edit::Item::Table(table));
        }
        let mut targets = toml_edit::Table::new();
        targets.set_implicit(true);
        targets.insert(&self.name, toml_edit::Item::Table(target));
        doc.insert("targets", toml_edit::Item::Table(targets));
        Some(doc.to_string())
    }
}

/// Adopts the servers `request` names. `host_has` is called once config.toml and secrets.toml
/// hold the new targets, before any client file changes: the running host loads them there.
pub fn adopt(
    request: &AdoptRequest,
    host_has: &mut dyn FnMut(&[String]) -> Result<(), String>,
) -> Result<AdoptReport, AdoptError> {
    let mut record = Record::load(&request.record_path)?;
    let discovery = discover(&request.dirs, &request.project);
    let mut report = AdoptReport {
        dry_run: request.dry_run,
        ..AdoptReport::default()
    };
    for name in &request.names {
        if !discovery.servers.iter().any(|s| &s.name == name) {
            report.skipped.push(SkippedEntry {
                name: name.clone(),
                file: None,
                reason: "no server of this name in any client file".into(),
            });
        }
    }
    let secrets_path = request
        .config_path
        .with_file_name(msm_core::config::SECRETS_FILE);
    let config_before = read_text(&request.config_path)?;
    let config_text = config_before
        .clone()
        .unwrap_or_else(|| DEFAULT_CONFIG_TOML.to_owned());
    let config = Config::parse(&request.config_path, &config_text)?;

    // Which entries, hosted how, as which target.
    let mut targets: Vec<NewTarget> = Vec::new();
    let mut chosen: Vec<(&FoundServer, usize)> = Vec::new();
    let mut ports = PortPicker::new(&config);
    for server in &discovery.servers {
        let wanted = request.all || request.names.contains(&server.name);
        if !wanted {
            continue;
        }
        let share = request
            .share
            .get(&server.name)
            .copied()
            .unwrap_or(server.proposal.share);
        let refusal = if let Some(problem) = &server.problem {
            Some(format!("cannot be adopted: {problem}"))
        } else if server.through_proxy {
            Some(
                if record
                    .entry(&server.file, &server.key_path, &server.name)
                    .is_some()
                {
                    "already adopted".to_owned()
                } else {
                    "already runs through mcp-session-proxy".to_owned()
                },
            )
        } else if server.transport != EntryTransport::Stdio && share != Hosting::Shared {
            Some(if share == Hosting::Leave {
                server.proposal.reason.clone()
            } else {
                format!(
                    "a remote server is either shared (one connection for every window) or left, not {}",
                    share.as_str()
                )
            })
        } else if share == Hosting::Leave {
            Some(server.proposal.reason.clone())
        } else {
            None
        };
        if let Some(reason) = refusal {
            report.skipped.push(SkippedEntry {
                name: server.name.clone(),
                file: Some(server.file.clone()),
                reason,
            });
            continue;
        }
        let launch = match launch_of(server, share).expanded(&request.environment) {
            Ok(launch) => launch,
            Err(variable) => {
                report.skipped.push(SkippedEntry {
                    name: server.name.clone(),
                    file: Some(server.file.clone()),
                    reason: format!(
                        "it uses ${{{variable}}}, which is not set here (Claude Code would expand it); set it and adopt again"
                    ),
                });
                continue;
            }
        };
        let index = match targets.iter().position(|t| t.same_launch(&launch)) {
            Some(index) => index,
            None => {
                let name = unique_target_name(&server.name, &config, &targets);
                let port = ports.next()?;
                targets.push(NewTarget {
                    name,
                    port,
                    ..launch
                });
                targets.len() - 1
            }
        };
        chosen.push((server, index));
    }
    if chosen.is_empty() {
        return Ok(report);
    }

    // config.toml and secrets.toml: one appended block per target.
    let mut config_new = config_text.clone();
    let mut secrets_new = read_text(&secrets_path)?.unwrap_or_default();
    let secrets_created = !secrets_path.exists();
    let mut record_targets = Vec::new();
    for target in &targets {
        let first = chosen
            .iter()
            .find(|(_, i)| targets[*i].name == target.name)
            .map(|(s, _)| *s);
        let Some(server) = first else { continue };
        let config_block = separated(&config_new, &target.config_block(server));
        config_new.push_str(&config_block);
        let secrets_block = target.secrets_block().map(|block| {
            let block = separated(&secrets_new, &block);
            secrets_new.push_str(&block);
            block
        });
        record_targets.push(RecordTarget {
            name: target.name.clone(),
            config_block,
            secrets_block,
        });
        report.targets.push(target.name.clone());
    }
    // Refuse now what the host would refuse later.
    Config::parse(&request.config_path, &config_new)?;

    // The client files, grouped, each entry's value replaced by our proxy entry.
    let mut by_file: BTreeMap<(PathBuf, Source), Vec<(&FoundServer, &NewTarget)>> = BTreeMap::new();
    for (server, index) in &chosen {
        by_file
            .entry((server.file.clone(), server.scope.file_source()))
            .or_default()
            .push((server, &targets[*index]));
        report.adopted.push(AdoptedEntry {
            name: server.name.clone(),
            file: server.file.clone(),
            scope: server.scope,
            target: targets[*index].name.clone(),
            share: targets[*index].share,
            port: targets[*index].port,
        });
    }

    if request.dry_run {
        report.diffs.push(diff(
            &request.config_path,
            config_before.as_deref().unwrap_or(""),
            &config_new,
        ));
        if secrets_new != read_text(&secrets_path)?.unwrap_or_default() {
            report.diffs.push(FileDiff {
                file: secrets_path.clone(),
                diff: masked_secrets_diff(&targets),
            });
        }
        for ((file, source), entries) in &by_file {
            let text = read_text(file)?.unwrap_or_default();
            let edits = adopt_edits(entries, &request.proxy);
            let (new_text, _) = merge::replace_entries(&text, source.dialect(), &edits)
                .map_err(|e| ConfigWriteError::from_merge(file, e))?;
            let secrets = entries
                .iter()
                .flat_map(|(server, _)| server.env.values().chain(server.headers.values()));
            report
                .diffs
                .push(masked(diff(file, &text, &new_text), secrets));
        }
        return Ok(report);
    }

    record.targets.extend(record_targets);
    record.secrets_created |= secrets_created && !secrets_new.is_empty();
    record.config_created |= config_before.is_none();
    record.save(&request.record_path)?;
    if !secrets_new.is_empty() {
        write_file(&secrets_path, 0o600, |_| Ok(Some(secrets_new.clone())))?;
    }
    write_file(&request.config_path, 0o644, |_| {
        Ok(Some(config_new.clone()))
    })?;
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    host_has(&names).map_err(AdoptError::HostNotReady)?;

    for ((file, source), entries) in &by_file {
        let edits = adopt_edits(entries, &request.proxy);
        let mut originals = Vec::new();
        write_file(file, source.new_file_mode(), |text| {
            let text = text.unwrap_or("");
            originals.clear();
            for (server, target) in entries {
                if let Some(found) =
                    merge::find_entry(text, source.dialect(), &server.key_path, &server.name)
                        .map_err(|e| ConfigWriteError::from_merge(file, e))?
                {
                    originals.push(RecordEntry {
                        server: server.name.clone(),
                        file: file.clone(),
                        scope: server.scope,
                        key_path: server.key_path.clone(),
                        target: target.name.clone(),
                        original: found.text,
                        adopted_at: now_rfc3339(),
                    });
                }
            }
            // The originals are on disk before the entries change.
            let mut saved = record.clone();
            saved.entries.extend(originals.iter().cloned());
            saved
                .save(&request.record_path)
                .map_err(|e| ConfigWriteError::Io {
                    action: "write the adoption record",
                    path: request.record_path.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let (new_text, _) = merge::replace_entries(text, source.dialect(), &edits)
                .map_err(|e| ConfigWriteError::from_merge(file, e))?;
            Ok(Some(new_text))
        })?;
        record.entries.extend(originals);
    }
    record.save(&request.record_path)?;
    Ok(report)
}

/// Undoes the adoption of the servers `request` names (or all): each entry gets its original
/// bytes back, and targets no adopted entry uses any more leave config.toml and secrets.toml.
pub fn undo(request: &AdoptRequest) -> Result<AdoptReport, AdoptError> {
    let mut record = Record::load(&request.record_path)?;
    let mut report = AdoptReport {
        dry_run: request.dry_run,
        ..AdoptReport::default()
    };
    for name in &request.names {
        if !record.entries.iter().any(|e| &e.server == name) {
            report.skipped.push(SkippedEntry {
                name: name.clone(),
                file: None,
                reason: "not adopted (the adoption record has no entry of this name)".into(),
            });
        }
    }
    let selected: Vec<RecordEntry> = record
        .entries
        .iter()
        .filter(|e| request.all || request.names.contains(&e.server))
        .cloned()
        .collect();
    let orphans = request.all && !record.targets.is_empty();
    if selected.is_empty() && !orphans {
        return Ok(report);
    }
    let mut by_file: BTreeMap<(PathBuf, Source), Vec<&RecordEntry>> = BTreeMap::new();
    for entry in &selected {
        by_file
            .entry((entry.file.clone(), entry.scope.file_source()))
            .or_default()
            .push(entry);
    }
    for ((file, source), entries) in &by_file {
        let compute = |text: Option<&str>| -> Result<(String, Vec<String>), ConfigWriteError> {
            let text = text.unwrap_or("");
            let mut edits = Vec::new();
            let mut left = Vec::new();
            for entry in entries {
                let now = merge::find_entry(text, source.dialect(), &entry.key_path, &entry.server)
                    .map_err(|e| ConfigWriteError::from_merge(file, e))?;
                let still_ours = now.as_ref().is_some_and(|n| {
                    merge::is_our_entry(&n.value)
                        && n.value["args"]
                            .as_array()
                            .is_some_and(|a| a.iter().any(|v| v == entry.target.as_str()))
                });
                if still_ours {
                    edits.push(EntryEdit {
                        key_path: entry.key_path.clone(),
                        name: entry.server.clone(),
                        replacement: Replacement::Text(entry.original.clone()),
                    });
                } else {
                    left.push(entry.server.clone());
                }
            }
            let (new_text, _) = merge::replace_entries(text, source.dialect(), &edits)
                .map_err(|e| ConfigWriteError::from_merge(file, e))?;
            Ok((new_text, left))
        };
        let mut left = Vec::new();
        if request.dry_run {
            let text = read_text(file)?.unwrap_or_default();
            let (new_text, l) = compute(Some(&text))?;
            left = l;
            let originals: Vec<String> = entries
                .iter()
                .filter_map(|e| serde_json::from_str::<serde_json::Value>(&e.original).ok())
                .flat_map(|v| {
                    v.get("env")
                        .and_then(|env| env.as_object())
                        .map(|env| {
                            env.values()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
                .collect();
            report
                .diffs
                .push(masked(diff(file, &text, &new_text), originals.iter()));
        } else {
            write_file(file, source.new_file_mode(), |text| {
                let (new_text, l) = compute(text)?;
                left = l;
                Ok(Some(new_text))
            })?;
        }
        for entry in entries {
            if left.contains(&entry.server) {
                report.skipped.push(SkippedEntry {
                    name: entry.server.clone(),
                    file: Some(file.clone()),
                    reason: "the entry changed since it was adopted (it no longer runs our proxy for its target): left as it is".into(),
                });
            } else {
                report.undone.push(entry.server.clone());
            }
        }
    }

    // Targets that no remaining adopted entry uses.
    let remaining: Vec<RecordEntry> = record
        .entries
        .iter()
        .filter(|e| !selected.contains(e))
        .cloned()
        .collect();
    let still_used: BTreeSet<&str> = remaining.iter().map(|e| e.target.as_str()).collect();
    let (gone, kept): (Vec<RecordTarget>, Vec<RecordTarget>) = record
        .targets
        .iter()
        .cloned()
        .partition(|t| !still_used.contains(t.name.as_str()));
    let secrets_path = request
        .config_path
        .with_file_name(msm_core::config::SECRETS_FILE);
    let config_text = read_text(&request.config_path)?.unwrap_or_default();
    let config_new = remove_blocks(
        &config_text,
        gone.iter()
            .map(|t| (t.name.as_str(), Some(t.config_block.as_str()))),
    );
    let secrets_text = read_text(&secrets_path)?;
    let secrets_new = secrets_text.as_deref().map(|text| {
        remove_blocks(
            text,
            gone.iter()
                .map(|t| (t.name.as_str(), t.secrets_block.as_deref())),
        )
    });
    report.targets = gone.iter().map(|t| t.name.clone()).collect();
    if request.dry_run {
        report
            .diffs
            .push(diff(&request.config_path, &config_text, &config_new));
        return Ok(report);
    }
    let config_back_to_nothing =
        record.config_created && config_new == DEFAULT_CONFIG_TOML && remaining.is_empty();
    if config_new != config_text {
        write_file(&request.config_path, 0o644, |_| {
            Ok(Some(config_new.clone()))
        })?;
    }
    if config_back_to_nothing {
        let _ = std::fs::remove_file(&request.config_path);
    }
    if let (Some(before), Some(after)) = (&secrets_text, &secrets_new) {
        if record.secrets_created
            && after.trim().is_empty()
            && kept.iter().all(|t| t.secrets_block.is_none())
        {
            std::fs::remove_file(&secrets_path).map_err(|source| ConfigWriteError::Io {
                action: "remove",
                path: secrets_path.clone(),
                source,
            })?;
        } else if after != before {
            write_file(&secrets_path, 0o600, |_| Ok(Some(after.clone())))?;
        }
    }
    record.entries = remaining;
    record.targets = kept;
    if record.entries.is_empty() && record.targets.is_empty() {
        record.secrets_created = false;
        record.config_created = false;
    }
    record.save(&request.record_path)?;
    Ok(report)
}

impl Source {
    /// Local entries live in the user file: they share its dialect and mode.
    fn file_source(self) -> Source {
        match self {
            Source::Local => Source::User,
            other => other,
        }
    }
}

/// How `server` is launched when hosted as `share` (name and port still to pick).
fn launch_of(server: &FoundServer, share: Hosting) -> NewTarget {
    let project = std::path::PathBuf::from(server.project.clone().unwrap_or_default());
    let is_project = |value: &str| proposal::names_project(value, &project);
    let per_project = share == Hosting::PerProject;
    let args = server
        .args
        .iter()
        .map(|a| {
            if per_project && is_project(a) {
                PROJECT_PLACEHOLDER.to_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    let cwd = match (&server.cwd, share) {
        (Some(cwd), Hosting::PerProject | Hosting::PerSession) if is_project(cwd) => {
            Some(PROJECT_PLACEHOLDER.to_owned())
        }
        (Some(cwd), _) => Some(cwd.clone()),
        // Claude Code starts a stdio server in the project: so does the host, per window or
        // per project.
        (None, Hosting::PerProject | Hosting::PerSession) => Some(PROJECT_PLACEHOLDER.to_owned()),
        (None, _) => None,
    };
    NewTarget {
        name: String::new(),
        port: 0,
        share,
        command: server.command.clone().unwrap_or_default(),
        args,
        cwd,
        env: server.env.clone(),
        url: server
            .url
            .clone()
            .filter(|_| server.transport != EntryTransport::Stdio),
        transport: server.transport,
        headers: server.headers.clone(),
    }
}

/// `text` with `${VAR}` and `${VAR:-default}` replaced from `environment`; `Err(VAR)` for a
/// variable that is neither set nor defaulted. A `${` without its `}` is kept as it is.
fn expand_variables(text: &str, environment: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start + 2..].find('}') else {
            break;
        };
        let inner = &rest[start + 2..start + 2 + length];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        out.push_str(&rest[..start]);
        match (environment.get(name), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(name.to_owned()),
        }
        rest = &rest[start + 2 + length + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The server's name as a target name (letters, digits, `-`, `_`), made unique.
fn unique_target_name(server: &str, config: &Config, planned: &[NewTarget]) -> String {
    let mut base: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(56)
        .collect();
    if base.trim_matches('-').is_empty() {
        base = "server".into();
    }
    let taken = |name: &str| {
        name == msm_core::MANAGER_NAME
            || config.targets.contains_key(name)
            || planned.iter().any(|t| t.name == name)
    };
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

/// Free ports of `[manager] adopt_ports`: not in config.toml, not bound by anyone now.
struct PortPicker {
    range: std::ops::RangeInclusive<u16>,
    used: BTreeSet<u16>,
}

impl PortPicker {
    fn new(config: &Config) -> PortPicker {
        let mut used: BTreeSet<u16> = config.targets.values().filter_map(|t| t.port).collect();
        used.insert(config.manager_port);
        PortPicker {
            range: config.adopt_ports.clone(),
            used,
        }
    }

    fn next(&mut self) -> Result<u16, AdoptError> {
        let port = self
            .range
            .clone()
            .find(|p| {
                !self.used.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok()
            })
            .ok_or(AdoptError::NoPort {
                low: *self.range.start(),
                high: *self.range.end(),
            })?;
        self.used.insert(port);
        Ok(port)
    }
}

fn adopt_edits(entries: &[(&FoundServer, &NewTarget)], proxy: &Path) -> Vec<EntryEdit> {
    let mut seen = BTreeSet::new();
    entries
        .iter()
        .filter(|(server, _)| seen.insert((server.key_path.clone(), server.name.clone())))
        .map(|(server, target)| EntryEdit {
            key_path: server.key_path.clone(),
            name: server.name.clone(),
            replacement: Replacement::Value(proxy_entry(proxy, &target.name)),
        })
        .collect()
}

/// `block` as appended to `text`: after a newline if the text does not end with one.
fn separated(text: &str, block: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        block.to_owned()
    } else {
        format!("\n{block}")
    }
}

/// `text` without the blocks we appended: the exact text when it is still there, else the
/// target's table (the user edited it) through toml_edit, keeping everything else.
fn remove_blocks<'a>(
    text: &str,
    blocks: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> String {
    let mut text = text.to_owned();
    let mut edited = Vec::new();
    for (name, block) in blocks {
        match block {
            Some(block) if text.contains(block) => {
                // The last copy: blocks are appended.
                if let Some(at) = text.rfind(block) {
                    text.replace_range(at..at + block.len(), "");
                }
            }
            Some(_) => edited.push(name),
            None => {}
        }
    }
    if edited.is_empty() {
        return text;
    }
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return text;
    };
    if let Some(targets) = doc.get_mut("targets").and_then(|t| t.as_table_mut()) {
        for name in edited {
            targets.remove(name);
        }
    }
    doc.to_string()
}

fn read_text(path: &Path) -> Result<Option<String>, ConfigWriteError> {
    match writer::read_snapshot(path)? {
        None => Ok(None),
        Some(snapshot) => {
            String::from_utf8(snapshot.bytes)
                .map(Some)
                .map_err(|_| ConfigWriteError::NotUtf8 {
                    path: path.to_owned(),
                })
        }
    }
}

/// Writes `path` atomically with a backup: `edit` gets the current text and returns the new
/// one; redone if another program changed the file meanwhile.
fn write_file(
    path: &Path,
    new_file_mode: u32,
    mut edit: impl FnMut(Option<&str>) -> Result<Option<String>, ConfigWriteError>,
) -> Result<(), ConfigWriteError> {
    writer::remove_stale_temp_files(path);
    for _ in 0..MAX_ATTEMPTS {
        let snapshot = writer::read_snapshot(path)?;
        let text = match &snapshot {
            None => None,
            Some(s) => {
                Some(
                    std::str::from_utf8(&s.bytes).map_err(|_| ConfigWriteError::NotUtf8 {
                        path: path.to_owned(),
                    })?,
                )
            }
        };
        let Some(new_text) = edit(text)? else {
            return Ok(());
        };
        if Some(new_text.as_str()) == text {
            return Ok(());
        }
        match writer::commit(
            path,
            snapshot.as_ref(),
            new_text.as_bytes(),
            new_file_mode,
            &mut writer::pause_if_asked,
        )? {
            writer::Commit::Written { .. } => return Ok(()),
            writer::Commit::ChangedUnderUs => continue,
        }
    }
    Err(ConfigWriteError::ConcurrentWriter {
        path: path.to_owned(),
        attempts: MAX_ATTEMPTS,
    })
}

fn diff(file: &Path, before: &str, after: &str) -> FileDiff {
    FileDiff {
        file: file.to_owned(),
        diff: if before == after {
            String::new()
        } else {
            report::unified_diff(file, before, after)
        },
    }
}

/// `diff` with every env value of the entries it shows replaced by `<hidden>`: a diff is
/// printed and sent to the UI, where no secret may go.
fn masked<'a>(mut diff: FileDiff, values: impl Iterator<Item = &'a String>) -> FileDiff {
    for value in values.filter(|v| !v.is_empty()) {
        if let Ok(quoted) = serde_json::to_string(value) {
            diff.diff = diff.diff.replace(&quoted, "\"<hidden>\"");
        }
    }
    diff
}

/// What secrets.toml gains, with every value hidden.
fn masked_secrets_diff(targets: &[NewTarget]) -> String {
    let mut out = String::new();
    for target in targets {
        for (table, values) in target.secret_tables() {
            out.push_str(&format!("+[targets.{}.{table}]\n", target.name));
            for key in values.keys() {
                out.push_str(&format!("+{key} = <hidden>\n"));
            }
        }
    }
    out
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<record::RecordError> for AdoptError {
    fn from(e: record::RecordError) -> Self {
        AdoptError::Record {
            path: e.path,
            reason: e.reason,
        }
    }
}

#[cfg(test)]
mod tests;
