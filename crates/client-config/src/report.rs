//! What a run did, for people (`Display`: what changed, what to do next) and for the manager
//! API and the tray app (`Serialize`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::client::{ClientKind, Scope};
use crate::merge::{EntryOutcome, EntryReport};

/// The outcome of one `generate` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerateReport {
    pub client: ClientKind,
    pub scope: Scope,
    /// The file merged into (a symlink's target).
    pub file: PathBuf,
    /// The keys down to the servers object, e.g. `["mcpServers"]`.
    pub key_path: Vec<String>,
    /// The proxy the entries run (absent for `--remove`).
    pub proxy: Option<PathBuf>,
    pub removing: bool,
    /// One per entry asked for (or, for a removal of all, per entry removed).
    pub entries: Vec<EntryReport>,
    pub dry_run: bool,
    /// The merge changes the file (for a dry run: would change it).
    pub changed: bool,
    pub written: bool,
    /// The file did not exist and was created.
    pub created: bool,
    /// Where the previous content was saved.
    pub backup: Option<PathBuf>,
    /// Unified diff of the change; empty when nothing changes.
    pub diff: String,
    /// How many merges it took (more than one when another program wrote the file meanwhile).
    pub attempts: u32,
}

impl GenerateReport {
    /// Entries left alone because a same-named entry is not ours.
    pub fn skipped(&self) -> impl Iterator<Item = &EntryReport> {
        self.entries
            .iter()
            .filter(|e| matches!(e.outcome, EntryOutcome::Skipped { .. }))
    }

    /// The report as the manager API answers it: the fields, plus `message` (the CLI's text
    /// without the diff, which is in `diff`), `path` (the file) and `skipped` (name, reason),
    /// which the web UI and the tray show.
    pub fn to_json(&self) -> serde_json::Value {
        #[expect(clippy::expect_used, reason = "a report is strings, numbers and paths")]
        let mut value = serde_json::to_value(self).expect("a report serialises");
        value["message"] = serde_json::Value::String(self.summary());
        value["path"] = serde_json::Value::String(self.file.display().to_string());
        value["skipped"] = self
            .skipped()
            .map(|e| match &e.outcome {
                EntryOutcome::Skipped { reason } => {
                    serde_json::json!({"name": e.name, "reason": reason})
                }
                _ => unreachable!("filtered"),
            })
            .collect();
        value
    }

    /// What `Display` prints, without the dry run's diff.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        #[expect(clippy::expect_used, reason = "writing to a String cannot fail")]
        self.write_text(&mut text, false)
            .expect("writing to a String");
        text
    }

    fn next_step(&self) -> String {
        let verb = if self.removing { "drops" } else { "loads" };
        match self.client {
            ClientKind::ClaudeCode => format!(
                "Next: restart Claude Code (running sessions keep their old server list) so it {verb} the servers; `claude mcp list` shows each one and whether it connects."
            ),
            ClientKind::ClaudeCodeProject => format!(
                "Next: start Claude Code in {}; it asks once to approve the project's servers. `claude mcp list` there shows them.",
                self.file
                    .parent()
                    .map_or_else(String::new, |p| p.display().to_string())
            ),
            ClientKind::McpJson => format!(
                "Next: start Claude Code with `claude --mcp-config {}`.",
                self.file.display()
            ),
            ClientKind::ClaudeDesktop => {
                format!("Next: quit and restart Claude Desktop so it {verb} the servers.")
            }
            ClientKind::Cursor => {
                format!(
                    "Next: restart Cursor (or reload its MCP settings) so it {verb} the servers."
                )
            }
        }
    }
}

impl fmt::Display for GenerateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f, true)
    }
}

impl GenerateReport {
    fn write_text(&self, f: &mut dyn fmt::Write, with_diff: bool) -> fmt::Result {
        writeln!(
            f,
            "{} config: {} (under {})",
            self.client.display_name(),
            self.file.display(),
            self.key_path.join(" > ")
        )?;
        if let Some(proxy) = &self.proxy {
            writeln!(f, "proxy: {}", proxy.display())?;
        }
        let width = self.entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
        for entry in &self.entries {
            let (mark, text) = match &entry.outcome {
                EntryOutcome::Added => ("+", "added".to_owned()),
                EntryOutcome::Updated => (
                    "~",
                    "updated (it launched the proxy differently)".to_owned(),
                ),
                EntryOutcome::Unchanged => ("=", "already up to date".to_owned()),
                EntryOutcome::Replaced { previous_command } => (
                    "!",
                    match previous_command {
                        Some(c) => {
                            format!("replaced a foreign entry (command `{c}`) because of --force")
                        }
                        None => "replaced a foreign entry because of --force".to_owned(),
                    },
                ),
                EntryOutcome::Skipped { reason } => ("!", format!("skipped: {reason}")),
                EntryOutcome::Removed => ("-", "removed".to_owned()),
                EntryOutcome::NotPresent => (" ", "not present: nothing to remove".to_owned()),
            };
            writeln!(f, "  {mark} {:<width$}  {text}", entry.name)?;
        }
        if self.dry_run {
            if self.changed && with_diff {
                writeln!(f, "Dry run: nothing was written. The change would be:")?;
                f.write_str(&self.diff)?;
                if !self.diff.ends_with('\n') {
                    writeln!(f)?;
                }
            } else if self.changed {
                writeln!(f, "Dry run: nothing was written; `diff` shows the change.")?;
            } else {
                writeln!(f, "Dry run: the file needs no change.")?;
            }
            return Ok(());
        }
        if !self.written {
            return writeln!(f, "Nothing to change: the file was left as it was.");
        }
        if self.created {
            writeln!(f, "Created {}.", self.file.display())?;
        } else {
            writeln!(f, "Wrote {}.", self.file.display())?;
        }
        if let Some(backup) = &self.backup {
            writeln!(f, "The previous version is saved as {}.", backup.display())?;
        }
        writeln!(f, "{}", self.next_step())
    }
}

/// The change as a unified diff with three lines of context.
pub(crate) fn unified_diff(file: &Path, old: &str, new: &str) -> String {
    let name = file.display().to_string();
    similar::TextDiff::configure()
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&name, &name)
        .to_string()
}
