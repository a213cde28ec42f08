//! The merge itself, on text: finds the servers object (`mcpServers`, or a project's) and
//! splices our entries in or out. Every byte outside the spliced spans stays as it was; the
//! inserted text follows the file's own indentation, line endings and spacing.

use std::ops::Range;

use serde::Serialize;
use serde_json::Value;

use crate::document::{self, Dialect, Member, Node, NodeKind, Object, SyntaxError};

/// The file name every command of ours starts with: what makes an entry "ours".
pub const PROXY_FILE_PREFIX: &str = "mcp-session-proxy";

/// What the merge should do with the servers object.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeAction {
    /// Add or update these entries (name, value); a foreign entry of the same name is replaced
    /// only with `force`.
    Write {
        entries: Vec<(String, Value)>,
        force: bool,
    },
    /// Take out our entries: all of them, or only those named.
    Remove { only: Option<Vec<String>> },
}

/// What happened to one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum EntryOutcome {
    Added,
    /// Ours, but different (another proxy path, say): rewritten.
    Updated,
    Unchanged,
    /// A foreign entry overwritten because of `--force`.
    Replaced {
        previous_command: Option<String>,
    },
    /// A foreign entry of the same name, left alone.
    Skipped {
        reason: String,
    },
    Removed,
    /// `--remove` of a name with no entry of ours.
    NotPresent,
}

/// One entry's name and outcome, in the order they were asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryReport {
    pub name: String,
    #[serde(flatten)]
    pub outcome: EntryOutcome,
}

/// Why a file cannot be merged into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeError {
    Syntax(SyntaxError),
    /// The top level, or a value on the way to the servers object, is not an object.
    NotAnObject {
        what: String,
    },
}

/// The merged text and what happened to each entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub text: String,
    pub entries: Vec<EntryReport>,
}

/// True when `entry` is one of ours: its `command`'s file name starts with `mcp-session-proxy`.
pub fn is_our_entry(entry: &Value) -> bool {
    entry
        .get("command")
        .and_then(Value::as_str)
        .is_some_and(|command| command_file_name(command).starts_with(PROXY_FILE_PREFIX))
}

/// The last path component of a command, for either separator (a Windows path read on Unix too).
fn command_file_name(command: &str) -> &str {
    command.rsplit(['/', '\\']).next().unwrap_or(command)
}

/// Merges `action` into `text` under `key_path` (e.g. `["mcpServers"]`).
pub fn merge(
    text: &str,
    dialect: Dialect,
    key_path: &[String],
    action: &MergeAction,
) -> Result<Merged, MergeError> {
    let parsed = document::parse(text, dialect).map_err(MergeError::Syntax)?;
    let style = Style::detect(text);
    let Some(root) = parsed.root else {
        return Ok(merge_into_empty_file(text, &style, key_path, action));
    };
    let mut object = root.as_object().ok_or_else(|| MergeError::NotAnObject {
        what: "the top level".into(),
    })?;
    for (depth, key) in key_path.iter().enumerate() {
        match object.get(key) {
            Some(Member {
                value:
                    Node {
                        kind: NodeKind::Object(inner),
                        ..
                    },
                ..
            }) => object = inner,
            Some(_) => {
                return Err(MergeError::NotAnObject {
                    what: format!("`{}`", key_path[..=depth].join(".")),
                });
            }
            None => {
                return Ok(create_missing_level(
                    text, &style, object, key_path, depth, action,
                ));
            }
        }
    }
    Ok(merge_into_servers(text, &style, object, action))
}

/// An empty file is `{}`: written from scratch in the default style.
fn merge_into_empty_file(
    text: &str,
    style: &Style,
    key_path: &[String],
    action: &MergeAction,
) -> Merged {
    let MergeAction::Write { entries, .. } = action else {
        return unchanged_removal(text, action);
    };
    let value = nest(key_path, servers_value(entries));
    Merged {
        text: format!("{}{}", style.render(&value, ""), style.newline),
        entries: all_added(entries),
    }
}

/// The servers object (or a level above it) does not exist: insert it whole.
fn create_missing_level(
    text: &str,
    style: &Style,
    object: &Object,
    key_path: &[String],
    depth: usize,
    action: &MergeAction,
) -> Merged {
    let MergeAction::Write { entries, .. } = action else {
        return unchanged_removal(text, action);
    };
    let value = nest(&key_path[depth + 1..], servers_value(entries));
    let edit = insert_members(text, style, object, &[(key_path[depth].clone(), value)]);
    Merged {
        text: apply_edits(text, vec![edit]),
        entries: all_added(entries),
    }
}

fn merge_into_servers(text: &str, style: &Style, servers: &Object, action: &MergeAction) -> Merged {
    let mut edits = Vec::new();
    let mut reports = Vec::new();
    match action {
        MergeAction::Write { entries, force } => {
            let mut inserts = Vec::new();
            for (name, wanted) in entries {
                let outcome = match servers.get(name) {
                    None => {
                        inserts.push((name.clone(), wanted.clone()));
                        EntryOutcome::Added
                    }
                    Some(member) => {
                        let existing = member.value.to_value();
                        let ours = is_our_entry(&existing);
                        if ours && same_launch(&existing, wanted) {
                            EntryOutcome::Unchanged
                        } else if ours || *force {
                            // Ours keeps the keys the user added (`env`, say); a foreign entry
                            // is replaced whole.
                            let value = if ours {
                                with_launch_of(&existing, wanted)
                            } else {
                                wanted.clone()
                            };
                            let indent = line_indent(text, member.key_span.start);
                            let rendered = if style.is_compact(text, servers) {
                                compact(&value)
                            } else {
                                style.render(&value, indent)
                            };
                            edits.push((member.value.span.clone(), rendered));
                            if ours {
                                EntryOutcome::Updated
                            } else {
                                EntryOutcome::Replaced {
                                    previous_command: command_of(&existing),
                                }
                            }
                        } else {
                            EntryOutcome::Skipped {
                                reason: match command_of(&existing) {
                                    Some(command) => format!(
                                        "an entry of this name that is not ours (command `{command}`) is kept; --force replaces it"
                                    ),
                                    None => "an entry of this name that is not ours is kept; --force replaces it".into(),
                                },
                            }
                        }
                    }
                };
                reports.push(EntryReport {
                    name: name.clone(),
                    outcome,
                });
            }
            if !inserts.is_empty() {
                edits.push(insert_members(text, style, servers, &inserts));
            }
        }
        MergeAction::Remove { only } => {
            let wanted = |key: &str| {
                only.as_ref()
                    .is_none_or(|names| names.iter().any(|n| n == key))
            };
            let removed: Vec<bool> = servers
                .members
                .iter()
                .map(|m| wanted(&m.key) && is_our_entry(&m.value.to_value()))
                .collect();
            edits.extend(removal_edits(servers, &removed));
            let mut names: Vec<String> = Vec::new();
            for (member, gone) in servers.members.iter().zip(&removed) {
                if *gone && !names.contains(&member.key) {
                    names.push(member.key.clone());
                }
            }
            reports.extend(names.iter().map(|name| EntryReport {
                name: name.clone(),
                outcome: EntryOutcome::Removed,
            }));
            for name in only.iter().flatten() {
                if names.contains(name) {
                    continue;
                }
                let outcome = match servers.get(name) {
                    Some(member) => EntryOutcome::Skipped {
                        reason: match command_of(&member.value.to_value()) {
                            Some(command) => {
                                format!("not ours (command `{command}`): left in place")
                            }
                            None => "not ours: left in place".into(),
                        },
                    },
                    None => EntryOutcome::NotPresent,
                };
                reports.push(EntryReport {
                    name: name.clone(),
                    outcome,
                });
            }
        }
    }
    Merged {
        text: apply_edits(text, edits),
        entries: reports,
    }
}

fn unchanged_removal(text: &str, action: &MergeAction) -> Merged {
    let only = match action {
        MergeAction::Remove { only } => only.clone().unwrap_or_default(),
        MergeAction::Write { .. } => Vec::new(),
    };
    Merged {
        text: text.to_owned(),
        entries: only
            .into_iter()
            .map(|name| EntryReport {
                name,
                outcome: EntryOutcome::NotPresent,
            })
            .collect(),
    }
}

fn all_added(entries: &[(String, Value)]) -> Vec<EntryReport> {
    entries
        .iter()
        .map(|(name, _)| EntryReport {
            name: name.clone(),
            outcome: EntryOutcome::Added,
        })
        .collect()
}

/// The keys that say how a client launches an entry; the others (`env`, ...) are the user's.
const LAUNCH_KEYS: [&str; 3] = ["type", "command", "args"];

fn same_launch(existing: &Value, wanted: &Value) -> bool {
    LAUNCH_KEYS.iter().all(|k| existing.get(k) == wanted.get(k))
}

/// `existing` with the launch keys of `wanted`, in place, other keys kept in their order.
fn with_launch_of(existing: &Value, wanted: &Value) -> Value {
    let mut merged = existing.as_object().cloned().unwrap_or_default();
    for key in LAUNCH_KEYS {
        match wanted.get(key) {
            Some(value) => merged.insert(key.to_owned(), value.clone()),
            None => merged.remove(key),
        };
    }
    Value::Object(merged)
}

fn command_of(entry: &Value) -> Option<String> {
    entry
        .get("command")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| entry.get("url").and_then(Value::as_str).map(str::to_owned))
}

fn servers_value(entries: &[(String, Value)]) -> Value {
    Value::Object(entries.iter().cloned().collect())
}

/// Wraps `value` in one object per key, innermost last: `["a","b"]` gives `{"a":{"b":value}}`.
fn nest(keys: &[String], value: Value) -> Value {
    keys.iter().rev().fold(value, |inner, key| {
        let mut map = serde_json::Map::new();
        map.insert(key.clone(), inner);
        Value::Object(map)
    })
}

/// The text edit that appends `members` to `object`, in the file's style.
fn insert_members(
    text: &str,
    style: &Style,
    object: &Object,
    members: &[(String, Value)],
) -> (Range<usize>, String) {
    #[expect(clippy::expect_used, reason = "a string always serialises")]
    let key = |name: &str| serde_json::to_string(name).expect("a string serialises");
    if style.is_compact(text, object) {
        let separator = style.compact_member_separator(text, object);
        let colon = style.colon(text, object);
        let rendered: Vec<String> = members
            .iter()
            .map(|(name, value)| format!("{}{colon}{}", key(name), compact(value)))
            .collect();
        let joined = rendered.join(&separator);
        return match (object.members.last(), object.trailing_comma) {
            (None, _) => (object.inner_end..object.inner_end, joined),
            (Some(_), Some(comma)) => (comma + 1..comma + 1, format!("{joined}{separator}")),
            (Some(last), None) => (
                last.value.span.end..last.value.span.end,
                format!("{separator}{joined}"),
            ),
        };
    }
    let newline = style.newline;
    let colon = style.colon(text, object);
    match object.members.last() {
        None => {
            let outer = line_indent(text, object.inner_start - 1);
            let inner = format!("{outer}{}", style.unit);
            let rendered: Vec<String> = members
                .iter()
                .map(|(name, value)| {
                    format!("{inner}{}{colon}{}", key(name), style.render(value, &inner))
                })
                .collect();
            let interior = &text[object.inner_start..object.inner_end];
            let body = format!(
                "{newline}{}{newline}{outer}",
                rendered.join(&format!(",{newline}"))
            );
            if interior.trim().is_empty() {
                (object.inner_start..object.inner_end, body)
            } else {
                // Only comments inside (JSONC): keep them, add after.
                (object.inner_end..object.inner_end, body)
            }
        }
        Some(last) => {
            let indent = line_indent(text, last.key_span.start);
            let rendered: Vec<String> = members
                .iter()
                .map(|(name, value)| {
                    format!(
                        "{indent}{}{colon}{}",
                        key(name),
                        style.render(value, indent)
                    )
                })
                .collect();
            let joined = rendered.join(&format!(",{newline}"));
            match object.trailing_comma {
                Some(comma) => {
                    // After the comma's line when only a comment follows it there, so that
                    // the comment stays with the member it was written for.
                    let line_end = text[comma + 1..]
                        .find('\n')
                        .map_or(text.len(), |i| comma + 1 + i);
                    let line_end = if text[..line_end].ends_with('\r') {
                        line_end - 1
                    } else {
                        line_end
                    };
                    let rest = text[comma + 1..line_end].trim();
                    let at = if rest.is_empty() || (rest.starts_with("//") && !rest.contains('\n'))
                    {
                        line_end
                    } else {
                        comma + 1
                    };
                    (at..at, format!("{newline}{joined},"))
                }
                None => {
                    let end = last.value.span.end;
                    let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i);
                    let line_end = if text[..line_end].ends_with('\r') {
                        line_end - 1
                    } else {
                        line_end
                    };
                    let rest = &text[end..line_end];
                    if rest.trim_start().starts_with("//") {
                        // `"a": 1 // note`: the comma goes after the value, we go after the note.
                        (end..line_end, format!(",{rest}{newline}{joined}"))
                    } else {
                        (end..end, format!(",{newline}{joined}"))
                    }
                }
            }
        }
    }
}

/// Edits removing the flagged members, with their commas, as maximal runs so edits never overlap.
fn removal_edits(object: &Object, removed: &[bool]) -> Vec<(Range<usize>, String)> {
    let members = &object.members;
    if removed.iter().all(|r| *r) && !members.is_empty() {
        return vec![(object.inner_start..object.inner_end, String::new())];
    }
    let mut edits = Vec::new();
    let mut index = 0;
    while index < members.len() {
        if !removed[index] {
            index += 1;
            continue;
        }
        let first = index;
        while index + 1 < members.len() && removed[index + 1] {
            index += 1;
        }
        let last = index;
        let range = if first > 0 {
            members[first - 1].value.span.end..members[last].value.span.end
        } else {
            members[0].key_span.start..members[last + 1].key_span.start
        };
        edits.push((range, String::new()));
        index += 1;
    }
    edits
}

/// What an existing entry's value becomes in [`replace_entries`].
#[derive(Debug, Clone, PartialEq)]
pub enum Replacement {
    /// A new value, rendered in the file's style (adopting an entry).
    Value(Value),
    /// These exact bytes (undoing an adoption: the entry's original text).
    Text(String),
}

/// One entry to rewrite in place: the object at `key_path`, its member `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryEdit {
    pub key_path: Vec<String>,
    pub name: String,
    pub replacement: Replacement,
}

/// An entry as it stands in a file: its value and the exact bytes of that value.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryText {
    pub value: Value,
    pub text: String,
}

/// The entry `name` of the object at `key_path` (the last member of that name, as JSON readers
/// resolve duplicates), with its exact text; `None` when there is none.
pub fn find_entry(
    text: &str,
    dialect: Dialect,
    key_path: &[String],
    name: &str,
) -> Result<Option<EntryText>, MergeError> {
    let parsed = document::parse(text, dialect).map_err(MergeError::Syntax)?;
    Ok(parsed
        .root
        .as_ref()
        .and_then(|root| object_at(root, key_path))
        .and_then(|object| object.get(name))
        .map(|member| EntryText {
            value: member.value.to_value(),
            text: text[member.value.span.clone()].to_owned(),
        }))
}

fn object_at<'a>(root: &'a Node, key_path: &[String]) -> Option<&'a Object> {
    let mut object = root.as_object()?;
    for key in key_path {
        object = object.get(key)?.value.as_object()?;
    }
    Some(object)
}

/// Rewrites the values of existing entries and nothing else: every byte outside those values
/// stays. An edit whose entry is missing is left out and named in the second result.
pub fn replace_entries(
    text: &str,
    dialect: Dialect,
    edits: &[EntryEdit],
) -> Result<(String, Vec<String>), MergeError> {
    let parsed = document::parse(text, dialect).map_err(MergeError::Syntax)?;
    let style = Style::detect(text);
    let mut spliced = Vec::new();
    let mut missing = Vec::new();
    for edit in edits {
        let found = parsed
            .root
            .as_ref()
            .and_then(|root| object_at(root, &edit.key_path))
            .and_then(|object| Some((object, object.get(&edit.name)?)));
        let Some((object, member)) = found else {
            missing.push(edit.name.clone());
            continue;
        };
        let rendered = match &edit.replacement {
            Replacement::Text(original) => original.clone(),
            Replacement::Value(value) if style.is_compact(text, object) => compact(value),
            Replacement::Value(value) => {
                style.render(value, line_indent(text, member.key_span.start))
            }
        };
        spliced.push((member.value.span.clone(), rendered));
    }
    Ok((apply_edits(text, spliced), missing))
}

fn apply_edits(text: &str, mut edits: Vec<(Range<usize>, String)>) -> String {
    edits.sort_by_key(|(range, _)| range.start);
    let mut out =
        String::with_capacity(text.len() + edits.iter().map(|e| e.1.len()).sum::<usize>());
    let mut at = 0;
    for (range, replacement) in edits {
        assert!(range.start >= at, "merge edits overlap");
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out
}

#[expect(
    clippy::expect_used,
    reason = "a Value has string keys only, so it always serialises"
)]
fn compact(value: &Value) -> String {
    serde_json::to_string(value).expect("a JSON value serialises")
}

/// The whitespace that starts the line holding `offset`.
fn line_indent(text: &str, offset: usize) -> &str {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..];
    let line = line.strip_prefix('\u{feff}').unwrap_or(line);
    let end = line
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(line.len());
    &line[..end]
}

/// The file's formatting habits, so that inserted text looks like the rest.
#[derive(Debug, Clone)]
struct Style {
    /// One level of indentation (two spaces, four, a tab).
    unit: String,
    newline: &'static str,
    /// The whole document is on one line (minified).
    single_line: bool,
}

impl Style {
    fn detect(text: &str) -> Style {
        let unit = text
            .lines()
            .skip(1)
            .map(|line| {
                let end = line
                    .find(|c: char| c != ' ' && c != '\t')
                    .unwrap_or(line.len());
                (&line[..end], end < line.len())
            })
            .find(|(indent, has_content)| !indent.is_empty() && *has_content)
            .map(|(indent, _)| {
                if indent.starts_with('\t') {
                    "\t".to_owned()
                } else {
                    indent.chars().take_while(|c| *c == ' ').collect()
                }
            })
            .unwrap_or_else(|| "  ".to_owned());
        Style {
            unit,
            newline: if text.contains("\r\n") { "\r\n" } else { "\n" },
            // `{}` alone is not a style; a one-line file with members is minified.
            single_line: !text.trim_end().contains('\n') && text.contains(':'),
        }
    }

    /// An object written on one line (`{"a": 1}`) gets compact members.
    fn is_compact(&self, text: &str, object: &Object) -> bool {
        if object.members.is_empty() {
            self.single_line
        } else {
            !text[object.inner_start..object.inner_end].contains('\n')
        }
    }

    /// `": "` or `":"`, as the object's first member (or else the file's first colon) spells it.
    fn colon(&self, text: &str, object: &Object) -> &'static str {
        let tight = match object.members.first() {
            Some(member) => &text[member.key_span.end..member.value.span.start] == ":",
            None => text
                .find(':')
                .is_some_and(|i| !text[i + 1..].starts_with([' ', '\t', '\n', '\r'])),
        };
        if tight { ":" } else { ": " }
    }

    fn compact_member_separator(&self, text: &str, object: &Object) -> String {
        match object.members.as_slice() {
            [first, second, ..] => {
                let between = &text[first.value.span.end..second.key_span.start];
                if between.contains(' ') { ", " } else { "," }.to_owned()
            }
            _ => if self.colon(text, object) == ":" {
                ","
            } else {
                ", "
            }
            .to_owned(),
        }
    }

    /// `value` pretty-printed with this file's indent unit, continuation lines under `indent`.
    fn render(&self, value: &Value, indent: &str) -> String {
        use serde::Serialize as _;
        if self.single_line {
            return compact(value);
        }
        let mut out = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(self.unit.as_bytes());
        let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
        #[expect(clippy::expect_used, reason = "a Value always serialises into a Vec")]
        value
            .serialize(&mut serializer)
            .expect("a JSON value serialises");
        #[expect(clippy::expect_used, reason = "serde_json writes UTF-8")]
        let pretty = String::from_utf8(out).expect("serde_json writes UTF-8");
        pretty.replace('\n', &format!("{}{indent}", self.newline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(name: &str) -> (String, Value) {
        (
            name.to_owned(),
            json!({"type": "stdio", "command": "/opt/msm/mcp-session-proxy", "args": ["--target", name]}),
        )
    }

    fn write(names: &[&str], force: bool) -> MergeAction {
        MergeAction::Write {
            entries: names.iter().map(|n| entry(n)).collect(),
            force,
        }
    }

    fn servers() -> Vec<String> {
        vec!["mcpServers".to_owned()]
    }

    fn run(text: &str, action: &MergeAction) -> Merged {
        merge(text, Dialect::Json, &servers(), action).unwrap()
    }

    /// Data-driven: input text, action, exact expected text.
    #[test]
    fn merges_produce_exactly_the_expected_text() {
        let cases: Vec<(&str, MergeAction, &str)> = vec![
            (
                "",
                write(&["memory"], false),
                "{\n  \"mcpServers\": {\n    \"memory\": {\n      \"type\": \"stdio\",\n      \"command\": \"/opt/msm/mcp-session-proxy\",\n      \"args\": [\n        \"--target\",\n        \"memory\"\n      ]\n    }\n  }\n}\n",
            ),
            (
                "{\n    \"a\": 1.50\n}",
                write(&["m"], false),
                "{\n    \"a\": 1.50,\n    \"mcpServers\": {\n        \"m\": {\n            \"type\": \"stdio\",\n            \"command\": \"/opt/msm/mcp-session-proxy\",\n            \"args\": [\n                \"--target\",\n                \"m\"\n            ]\n        }\n    }\n}",
            ),
            (
                "{\r\n\t\"mcpServers\": {}\r\n}\r\n",
                write(&["m"], false),
                "{\r\n\t\"mcpServers\": {\r\n\t\t\"m\": {\r\n\t\t\t\"type\": \"stdio\",\r\n\t\t\t\"command\": \"/opt/msm/mcp-session-proxy\",\r\n\t\t\t\"args\": [\r\n\t\t\t\t\"--target\",\r\n\t\t\t\t\"m\"\r\n\t\t\t]\r\n\t\t}\r\n\t}\r\n}\r\n",
            ),
            (
                "{\"x\":\"\\u00e9\",\"mcpServers\":{\"o\":{\"url\":\"http://h\"}}}",
                write(&["m"], false),
                "{\"x\":\"\\u00e9\",\"mcpServers\":{\"o\":{\"url\":\"http://h\"},\"m\":{\"type\":\"stdio\",\"command\":\"/opt/msm/mcp-session-proxy\",\"args\":[\"--target\",\"m\"]}}}",
            ),
            (
                "{}",
                write(&["m"], false),
                "{\n  \"mcpServers\": {\n    \"m\": {\n      \"type\": \"stdio\",\n      \"command\": \"/opt/msm/mcp-session-proxy\",\n      \"args\": [\n        \"--target\",\n        \"m\"\n      ]\n    }\n  }\n}",
            ),
        ];
        for (input, action, expected) in cases {
            let merged = run(input, &action);
            assert_eq!(merged.text, expected, "input {input:?}");
            let again = run(&merged.text, &action);
            assert_eq!(again.text, merged.text, "idempotent for {input:?}");
            assert!(
                again
                    .entries
                    .iter()
                    .all(|e| e.outcome == EntryOutcome::Unchanged)
            );
        }
    }

    #[test]
    fn write_then_remove_gives_back_the_original() {
        for original in [
            "{\n  \"mcpServers\": {\n    \"other\": {\"command\": \"npx\"}\n  },\n  \"n\": 1e3\n}\n",
            "{\n  \"mcpServers\": {\n    \"first\": {\"command\": \"npx\"},\n    \"last\": {\"command\": \"uvx\"}\n  }\n}",
            "{\"mcpServers\":{\"other\":{\"command\":\"npx\"}}}",
            "{\"mcpServers\": {}}",
        ] {
            let written = run(original, &write(&["a", "b"], false));
            assert_ne!(written.text, original);
            let removed = run(&written.text, &MergeAction::Remove { only: None });
            assert_eq!(removed.text, original);
            assert_eq!(removed.entries.len(), 2);
        }
    }

    #[test]
    fn removal_of_runs_at_the_start_middle_and_end() {
        let ours = |n: &str| {
            format!("\"{n}\": {{\"command\": \"/x/mcp-session-proxy-x86_64-unknown-linux-gnu\"}}")
        };
        let foreign = |n: &str| format!("\"{n}\": {{\"command\": \"node\"}}");
        let text = format!(
            "{{\"mcpServers\": {{\n  {},\n  {},\n  {},\n  {},\n  {}\n}}}}",
            ours("a"),
            ours("b"),
            foreign("c"),
            ours("d"),
            ours("e")
        );
        let removed = run(&text, &MergeAction::Remove { only: None });
        assert_eq!(
            removed.text,
            format!("{{\"mcpServers\": {{\n  {}\n}}}}", foreign("c"))
        );
        let only_d = run(
            &text,
            &MergeAction::Remove {
                only: Some(vec!["d".into(), "c".into(), "zz".into()]),
            },
        );
        assert!(!only_d.text.contains("\"d\"") && only_d.text.contains("\"e\""));
        assert_eq!(
            only_d
                .entries
                .iter()
                .map(|e| &e.outcome)
                .collect::<Vec<_>>(),
            vec![
                &EntryOutcome::Removed,
                &EntryOutcome::Skipped {
                    reason: "not ours (command `node`): left in place".into()
                },
                &EntryOutcome::NotPresent
            ]
        );
    }

    #[test]
    fn foreign_entries_are_skipped_unless_forced_and_ours_are_updated() {
        let text = "{\n  \"mcpServers\": {\n    \"memory\": {\n      \"command\": \"npx\",\n      \"args\": [\"-y\", \"@modelcontextprotocol/server-memory\"]\n    },\n    \"old\": {\"type\": \"stdio\", \"command\": \"/old/mcp-session-proxy\", \"args\": [\"--target\", \"old\"]}\n  }\n}\n";
        let skipped = run(text, &write(&["memory", "old"], false));
        assert_eq!(
            skipped.entries[0].outcome,
            EntryOutcome::Skipped {
                reason: "an entry of this name that is not ours (command `npx`) is kept; --force replaces it".into()
            }
        );
        assert_eq!(skipped.entries[1].outcome, EntryOutcome::Updated);
        assert!(skipped.text.contains("server-memory"));
        assert!(!skipped.text.contains("/old/"));
        let forced = run(text, &write(&["memory"], true));
        assert_eq!(
            forced.entries[0].outcome,
            EntryOutcome::Replaced {
                previous_command: Some("npx".into())
            }
        );
        assert!(!forced.text.contains("server-memory") && forced.text.contains("/old/"));
    }

    #[test]
    fn our_entries_keep_the_keys_the_user_added() {
        let text = "{\"mcpServers\": {\n  \"m\": {\"command\": \"/old/mcp-session-proxy\", \"env\": {\"RUST_LOG\": \"debug\"}, \"args\": []}\n}}";
        let merged = run(text, &write(&["m"], false));
        assert_eq!(merged.entries[0].outcome, EntryOutcome::Updated);
        let value: Value = serde_json::from_str(&merged.text).unwrap();
        assert_eq!(
            value["mcpServers"]["m"],
            json!({"command": "/opt/msm/mcp-session-proxy", "env": {"RUST_LOG": "debug"}, "args": ["--target", "m"], "type": "stdio"})
        );
        let keys: Vec<&String> = value["mcpServers"]["m"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(
            keys,
            ["command", "env", "args", "type"],
            "order kept, new keys last"
        );
        let again = run(&merged.text, &write(&["m"], false));
        assert_eq!(again.entries[0].outcome, EntryOutcome::Unchanged);
        assert_eq!(again.text, merged.text);
    }

    #[test]
    fn local_scope_creates_the_project_levels() {
        let path = vec![
            "projects".to_owned(),
            "/home/u/p".to_owned(),
            "mcpServers".to_owned(),
        ];
        let text =
            "{\n  \"projects\": {\n    \"/home/u/p\": {\n      \"allowedTools\": []\n    }\n  }\n}";
        let merged = merge(text, Dialect::Json, &path, &write(&["m"], false)).unwrap();
        let value: Value = serde_json::from_str(&merged.text).unwrap();
        assert_eq!(value["projects"]["/home/u/p"]["allowedTools"], json!([]));
        assert_eq!(
            value["projects"]["/home/u/p"]["mcpServers"]["m"]["args"][1],
            "m"
        );
        assert!(merged.text.starts_with("{\n  \"projects\": {\n    \"/home/u/p\": {\n      \"allowedTools\": [],\n      \"mcpServers\": {\n        \"m\": {\n"));
        let no_projects = merge("{\"a\": 1}", Dialect::Json, &path, &write(&["m"], false)).unwrap();
        let value: Value = serde_json::from_str(&no_projects.text).unwrap();
        assert_eq!(
            value["projects"]["/home/u/p"]["mcpServers"]["m"]["type"],
            "stdio"
        );
    }

    #[test]
    fn jsonc_keeps_comments_and_trailing_commas() {
        let text = "{\n  // servers\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}, // keep\n  },\n}\n";
        let merged = merge(text, Dialect::Jsonc, &servers(), &write(&["m"], false)).unwrap();
        assert!(merged.text.contains("// servers") && merged.text.contains("// keep"));
        let reparsed = document::parse(&merged.text, Dialect::Jsonc)
            .unwrap()
            .root
            .unwrap();
        assert_eq!(reparsed.to_value()["mcpServers"]["m"]["args"][1], "m");
        assert!(merge(text, Dialect::Json, &servers(), &write(&["m"], false)).is_err());
    }

    #[test]
    fn jsonc_line_comments_stay_with_their_member() {
        let cases = [
            (
                "{\"mcpServers\": {\n  \"a\": 1, // note\n},\n}",
                "{\"mcpServers\": {\n  \"a\": 1, // note\n  \"m\": 2,\n},\n}",
            ),
            (
                "{\"mcpServers\": {\n  \"a\": 1 // note\n}}",
                "{\"mcpServers\": {\n  \"a\": 1, // note\n  \"m\": 2\n}}",
            ),
            (
                "{\"mcpServers\": {\r\n  \"a\": 1 // note\r\n}}",
                "{\"mcpServers\": {\r\n  \"a\": 1, // note\r\n  \"m\": 2\r\n}}",
            ),
        ];
        for (input, expected) in cases {
            let action = MergeAction::Write {
                entries: vec![("m".into(), json!(2))],
                force: false,
            };
            let merged = merge(input, Dialect::Jsonc, &servers(), &action).unwrap();
            assert_eq!(merged.text, expected);
        }
    }

    #[test]
    fn refuses_non_objects() {
        for (text, what) in [
            ("[1]", "the top level"),
            ("{\"mcpServers\": null}", "`mcpServers`"),
            ("{\"mcpServers\": []}", "`mcpServers`"),
        ] {
            assert_eq!(
                merge(text, Dialect::Json, &servers(), &write(&["m"], false)),
                Err(MergeError::NotAnObject { what: what.into() })
            );
        }
    }

    #[test]
    fn recognises_our_commands() {
        for (command, ours) in [
            ("/usr/bin/mcp-session-proxy", true),
            ("C:\\Program Files\\MSM\\mcp-session-proxy.exe", true),
            ("/a/mcp-session-proxy-aarch64-apple-darwin", true),
            ("mcp-session-proxy", true),
            ("/mcp-session-proxy/bin/node", false),
            ("npx", false),
        ] {
            assert_eq!(
                is_our_entry(&json!({ "command": command })),
                ours,
                "{command}"
            );
        }
        assert!(!is_our_entry(&json!({"url": "http://x/mcp-session-proxy"})));
    }
}

#[cfg(test)]
mod property_tests {
    //! Random documents in random styles: the merge always yields valid JSON with exactly our
    //! entries added, and removing them gives back the original bytes.
    use super::*;
    use serde_json::json;

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Random(u64);
    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_value(random: &mut Random, depth: u32) -> Value {
        match random.below(if depth > 3 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => json!(random.below(2) == 0),
            2 => json!(random.below(1_000_000) as f64 / 7.0),
            3 => json!(["é", "😀", "a\"b\\c\n", "plain"][random.below(4) as usize]),
            4 => Value::Array(
                (0..random.below(4))
                    .map(|_| random_value(random, depth + 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..random.below(5))
                    .map(|i| {
                        (
                            format!("k{i}-{}", random.below(100)),
                            random_value(random, depth + 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn styled(value: &Value, random: &mut Random) -> String {
        let text = match random.below(4) {
            0 => serde_json::to_string(value).unwrap(),
            n => {
                let unit: &[u8] = [b"  ".as_slice(), b"    ", b"\t"][n as usize - 1];
                let mut out = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(unit);
                let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
                serde::Serialize::serialize(value, &mut serializer).unwrap();
                String::from_utf8(out).unwrap()
            }
        };
        let text = if random.below(3) == 0 {
            text.replace('\n', "\r\n")
        } else {
            text
        };
        if random.below(2) == 0 {
            format!("{text}\n")
        } else {
            text
        }
    }

    #[test]
    fn random_documents_merge_and_unmerge_exactly() {
        let mut random = Random(0x9E37_79B9_7F4A_7C15);
        let key_path = vec!["mcpServers".to_owned()];
        for round in 0..400 {
            let mut document = match random_value(&mut random, 0) {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            if random.below(3) != 0 {
                let servers: serde_json::Map<String, Value> = (0..random.below(4))
                    .map(|i| {
                        (
                            format!("foreign{i}"),
                            json!({"command": "npx", "args": ["-y", "x"]}),
                        )
                    })
                    .collect();
                document.insert("mcpServers".into(), Value::Object(servers));
            }
            let original_value = Value::Object(document);
            let original = styled(&original_value, &mut random);
            let names: Vec<String> = (0..1 + random.below(3)).map(|i| format!("t{i}")).collect();
            let entries: Vec<(String, Value)> = names
                .iter()
                .map(|n| (n.clone(), json!({"type": "stdio", "command": "/p/mcp-session-proxy", "args": ["--target", n]})))
                .collect();
            let action = MergeAction::Write {
                entries: entries.clone(),
                force: false,
            };
            let merged = merge(&original, Dialect::Json, &key_path, &action).unwrap();
            let result: Value = serde_json::from_str(&merged.text)
                .unwrap_or_else(|e| panic!("round {round}: invalid JSON {e}:\n{}", merged.text));
            // Parsed from the text, as `result` is (serde_json's float parsing is not exact).
            let original_value: Value = serde_json::from_str(&original).unwrap();
            let mut expected = original_value.clone();
            let servers = expected
                .as_object_mut()
                .unwrap()
                .entry("mcpServers")
                .or_insert_with(|| json!({}));
            for (name, value) in &entries {
                servers
                    .as_object_mut()
                    .unwrap()
                    .insert(name.clone(), value.clone());
            }
            assert_eq!(
                result, expected,
                "round {round}:\n{original}\n->\n{}",
                merged.text
            );
            let removed = merge(
                &merged.text,
                Dialect::Json,
                &key_path,
                &MergeAction::Remove { only: None },
            )
            .unwrap();
            if original_value.get("mcpServers").is_some() {
                assert_eq!(removed.text, original, "round {round}");
            } else {
                let value: Value = serde_json::from_str(&removed.text).unwrap();
                let mut without = value.as_object().unwrap().clone();
                assert_eq!(
                    without.remove("mcpServers"),
                    Some(json!({})),
                    "round {round}"
                );
                assert_eq!(Value::Object(without), original_value, "round {round}");
            }
        }
    }
}
