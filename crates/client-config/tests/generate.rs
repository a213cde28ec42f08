//! `generate` against realistic client files (tests/e2e/fixtures/client-config): the result,
//! the backup, and that every byte outside our entries is unchanged; the failure cases leave
//! the file alone; a concurrent writer's change survives.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use msm_client_config::document::{self, Dialect};
use msm_client_config::{
    Action, BACKUPS_KEPT, ClientDirs, ClientKind, ConfigWriteError, EntryOutcome, GenerateRequest,
    Os, Scope, generate, generate_with_hook, is_our_entry,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/fixtures/client-config")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A temp home with a project dir and a (dummy) proxy file.
struct Sandbox {
    _root: tempfile::TempDir,
    dirs: ClientDirs,
    proxy: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("home");
        let cwd = home.join("src").join("project");
        std::fs::create_dir_all(&cwd).unwrap();
        let proxy = root.path().join("bin").join("mcp-session-proxy");
        std::fs::create_dir_all(proxy.parent().unwrap()).unwrap();
        std::fs::write(&proxy, "").unwrap();
        Sandbox {
            dirs: ClientDirs {
                os: Os::Linux,
                home,
                cwd,
                appdata: None,
                xdg_config_home: None,
            },
            proxy,
            _root: root,
        }
    }

    fn file(&self, client: ClientKind) -> PathBuf {
        self.dirs.config_file(client)
    }

    fn put(&self, client: ClientKind, bytes: &[u8]) -> PathBuf {
        let file = self.file(client);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
        file
    }

    fn request(&self, client: ClientKind, action: Action) -> GenerateRequest {
        GenerateRequest {
            client,
            scope: Scope::User,
            dirs: self.dirs.clone(),
            action,
            dry_run: false,
        }
    }

    fn write(&self, targets: &[&str], force: bool) -> Action {
        Action::Write {
            proxy: self.proxy.clone(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            force,
        }
    }

    fn entry(&self, target: &str) -> Value {
        json!({"type": "stdio", "command": self.proxy.to_str().unwrap(), "args": ["--target", target]})
    }
}

fn backups_of(file: &Path) -> Vec<PathBuf> {
    let prefix = format!("{}.bak.", file.file_name().unwrap().to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    found.sort();
    found
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The text with every member of ours cut out of each `mcpServers` object on `key_path`
/// (a member, its comma and the whitespace before it): what must equal the original.
fn strip_our_entries(text: &str, dialect: Dialect, key_path: &[&str]) -> String {
    let root = document::parse(text, dialect).unwrap().root.unwrap();
    let mut object = root.as_object().unwrap();
    for key in key_path {
        match object.get(key) {
            Some(member) => object = member.value.as_object().unwrap(),
            None => return text.to_owned(),
        }
    }
    let members = &object.members;
    let ours: Vec<bool> = members
        .iter()
        .map(|m| is_our_entry(&m.value.to_value()))
        .collect();
    let mut cuts = Vec::new();
    for (i, member) in members.iter().enumerate() {
        if !ours[i] {
            continue;
        }
        // Cut from the end of the previous kept-or-not member, or up to the next key if first.
        let cut = if i > 0 {
            members[i - 1].value.span.end..member.value.span.end
        } else if members.len() > 1 {
            member.key_span.start..members[1].key_span.start
        } else {
            object.inner_start..object.inner_end
        };
        cuts.push(cut);
    }
    // Apply from the end so earlier offsets stay valid; cuts of adjacent members nest or touch.
    let mut out = text.to_owned();
    let mut last_start = usize::MAX;
    for cut in cuts.into_iter().rev() {
        let end = cut.end.min(last_start);
        if cut.start < end {
            out.replace_range(cut.start..end, "");
        }
        last_start = cut.start;
    }
    out
}

fn as_json(text: &str, dialect: Dialect) -> Value {
    document::parse(text, dialect)
        .unwrap()
        .root
        .map_or(json!({}), |r| r.to_value())
}

/// Data-driven: fixture, client, targets, expected outcome per target.
#[test]
fn fixtures_merge_keeping_every_other_byte() {
    let cases: Vec<(&str, ClientKind, Vec<&str>, Vec<EntryOutcome>)> = vec![
        (
            "claude.json",
            ClientKind::ClaudeCode,
            vec!["memory", "code-index"],
            vec![EntryOutcome::Added, EntryOutcome::Added],
        ),
        (
            "claude-same-name.json",
            ClientKind::ClaudeCode,
            vec!["memory", "everything"],
            vec![
                EntryOutcome::Skipped {
                    reason: "an entry of this name that is not ours (command `npx`) is kept; --force replaces it".into(),
                },
                EntryOutcome::Updated,
            ],
        ),
        (
            "desktop-tabs-crlf.json",
            ClientKind::ClaudeDesktop,
            vec!["memory"],
            vec![EntryOutcome::Added],
        ),
        (
            "minified.json",
            ClientKind::McpJson,
            vec!["memory"],
            vec![EntryOutcome::Added],
        ),
    ];
    for (name, client, targets, expected) in cases {
        let sandbox = Sandbox::new();
        let original_bytes = fixture(name);
        let original = String::from_utf8(original_bytes.clone()).unwrap();
        let file = sandbox.put(client, &original_bytes);

        let report = generate(&sandbox.request(client, sandbox.write(&targets, false))).unwrap();
        let outcomes: Vec<EntryOutcome> =
            report.entries.iter().map(|e| e.outcome.clone()).collect();
        assert_eq!(outcomes, expected, "{name}");
        assert!(report.written && !report.created, "{name}");
        assert_eq!(report.file, file);

        let result = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            strip_our_entries(&result, Dialect::Json, &["mcpServers"]),
            strip_our_entries(&original, Dialect::Json, &["mcpServers"]),
            "{name}: bytes outside our entries changed"
        );
        let value = as_json(&result, Dialect::Json);
        for (target, outcome) in targets.iter().zip(&expected) {
            if !matches!(outcome, EntryOutcome::Skipped { .. }) {
                assert_eq!(value["mcpServers"][target], sandbox.entry(target), "{name}");
            }
        }
        if name == "desktop-tabs-crlf.json" {
            assert!(result.contains("\r\n\t\t\"memory\": {\r\n\t\t\t\"type\": \"stdio\""));
            assert!(!result.replace("\r\n", "").contains('\n'), "only CRLF");
        }

        let backups = backups_of(&file);
        assert_eq!(backups, vec![report.backup.clone().unwrap()], "{name}");
        assert_eq!(
            std::fs::read(&backups[0]).unwrap(),
            original_bytes,
            "{name}: backup"
        );

        let again = generate(&sandbox.request(client, sandbox.write(&targets, false))).unwrap();
        assert!(
            !again.written && !again.changed,
            "{name}: second run writes nothing"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), result);
        assert_eq!(backups_of(&file).len(), 1, "{name}: no backup for a no-op");

        let removed = generate(&sandbox.request(client, Action::Remove { targets: None })).unwrap();
        assert!(removed.written);
        let after_removal = std::fs::read_to_string(&file).unwrap();
        if name == "claude-same-name.json" {
            // The old entry of ours for `everything` goes too; the foreign one stays.
            assert_eq!(
                after_removal,
                strip_our_entries(&original, Dialect::Json, &["mcpServers"])
            );
            assert!(after_removal.contains("server-memory"));
        } else {
            assert_eq!(
                after_removal, original,
                "{name}: write then remove is the identity"
            );
        }
    }
}

#[test]
fn the_large_fixture_keeps_what_serde_would_rewrite() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude.json"));
    generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false))).unwrap();
    let result = std::fs::read_to_string(&file).unwrap();
    for kept in [
        "\"caf\\u00e9 \\ud83d\\ude00 \\/ slash\"",
        "[1.0, 1e3, -0, 0.50, 12345678901234567890123, 1E-7]",
        "проект-00 ünï",
        "😀",
    ] {
        assert!(result.contains(kept), "{kept} kept verbatim");
    }
    // Our entry sits at the end of the top-level mcpServers, indented as the file is.
    assert!(result.contains(
        "\"env\": {\n        \"DEBUG\": \"pw:*\"\n      }\n    },\n    \"memory\": {\n      \"type\": \"stdio\",\n"
    ));
}

#[test]
fn force_replaces_a_foreign_entry_and_remove_leaves_foreign_ones() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude-same-name.json"));
    let report =
        generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], true)))
            .unwrap();
    assert_eq!(
        report.entries[0].outcome,
        EntryOutcome::Replaced {
            previous_command: Some("npx".into())
        }
    );
    let value = as_json(&std::fs::read_to_string(&file).unwrap(), Dialect::Json);
    assert_eq!(value["mcpServers"]["memory"], sandbox.entry("memory"));
    assert_eq!(value["numStartups"], 2);
    let shown = report.to_string();
    assert!(
        shown.contains("replaced a foreign entry (command `npx`)"),
        "{shown}"
    );
    assert!(shown.contains("claude mcp list"), "{shown}");
}

#[test]
fn local_scope_writes_under_the_project_of_the_cwd() {
    let mut sandbox = Sandbox::new();
    sandbox.dirs.cwd = PathBuf::from("/home/dev/src/project-01");
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude.json"));
    let original = String::from_utf8(fixture("claude.json")).unwrap();
    let mut request = sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false));
    request.scope = Scope::Local;
    let report = generate(&request).unwrap();
    assert_eq!(
        report.key_path,
        ["projects", "/home/dev/src/project-01", "mcpServers"]
    );
    let result = std::fs::read_to_string(&file).unwrap();
    let path = ["projects", "/home/dev/src/project-01", "mcpServers"];
    assert_eq!(strip_our_entries(&result, Dialect::Json, &path), original);
    let value = as_json(&result, Dialect::Json);
    assert_eq!(
        value["projects"]["/home/dev/src/project-01"]["mcpServers"]["memory"],
        sandbox.entry("memory")
    );
    assert!(
        value["mcpServers"].get("memory").is_none(),
        "user scope untouched"
    );
    // Another spelling of the same directory reuses the project's key.
    sandbox.dirs.cwd = PathBuf::from("/home/dev/src/project-01/");
    let mut request = sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false));
    request.scope = Scope::Local;
    assert!(!generate(&request).unwrap().changed);
}

#[test]
fn cursor_jsonc_keeps_comments() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::Cursor, &fixture("cursor-mcp.jsonc"));
    generate(&sandbox.request(ClientKind::Cursor, sandbox.write(&["memory"], false))).unwrap();
    let proxy = sandbox.proxy.to_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!(
            "// Cursor MCP servers (hand-edited)\n{{\n  \"mcpServers\": {{\n    /* the docs server */\n    \"docs\": {{ \"url\": \"http://localhost:7777/sse\" }}, // keep me\n    \"memory\": {{\n      \"type\": \"stdio\",\n      \"command\": \"{proxy}\",\n      \"args\": [\n        \"--target\",\n        \"memory\"\n      ]\n    }},\n  }},\n}}\n"
        )
    );
    // The same comments in a Claude Code file are refused: Claude Code could not read it.
    let claude = sandbox.put(ClientKind::ClaudeCode, &fixture("cursor-mcp.jsonc"));
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(".claude.json:1:1: not valid JSON (comments are not allowed"),
        "{err}"
    );
    assert_eq!(std::fs::read(&claude).unwrap(), fixture("cursor-mcp.jsonc"));
}

#[test]
fn invalid_file_is_left_alone_with_line_and_column() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("invalid.json"));
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false)))
        .unwrap_err();
    assert!(matches!(
        err,
        ConfigWriteError::InvalidJson {
            line: 5,
            column: 5,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains(":5:5: not valid JSON (expected `,` or `}`)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), fixture("invalid.json"));
    assert_eq!(dir_listing(file.parent().unwrap()), [".claude.json", "src"]);
}

#[test]
fn empty_and_missing_files() {
    let sandbox = Sandbox::new();
    let expected = format!(
        "{{\n  \"mcpServers\": {{\n    \"memory\": {{\n      \"type\": \"stdio\",\n      \"command\": \"{}\",\n      \"args\": [\n        \"--target\",\n        \"memory\"\n      ]\n    }}\n  }}\n}}\n",
        sandbox.proxy.display()
    );
    // Empty: treated as `{}`, backed up.
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("empty.json"));
    let report =
        generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false)))
            .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), expected);
    assert_eq!(std::fs::read(report.backup.unwrap()).unwrap(), b"");
    // Missing, with its directory: created, no backup.
    let cursor = sandbox.file(ClientKind::Cursor);
    assert!(!cursor.parent().unwrap().exists());
    let report =
        generate(&sandbox.request(ClientKind::Cursor, sandbox.write(&["memory"], false))).unwrap();
    assert!(report.created && report.backup.is_none());
    assert_eq!(std::fs::read_to_string(&cursor).unwrap(), expected);
    assert_eq!(dir_listing(cursor.parent().unwrap()), ["mcp.json"]);
    // Removing from a missing file changes nothing and creates nothing.
    let desktop = sandbox.file(ClientKind::ClaudeDesktop);
    let report = generate(&sandbox.request(
        ClientKind::ClaudeDesktop,
        Action::Remove {
            targets: Some(vec!["memory".into()]),
        },
    ))
    .unwrap();
    assert_eq!(report.entries[0].outcome, EntryOutcome::NotPresent);
    assert!(!desktop.exists() && !desktop.parent().unwrap().exists());
}

#[cfg(unix)]
#[test]
fn permissions_are_kept_and_a_read_only_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude-same-name.json"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let report =
        generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["a"], false))).unwrap();
    assert_eq!(mode(&file), 0o640);
    assert_eq!(mode(&report.backup.unwrap()), 0o640);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let listing = dir_listing(file.parent().unwrap());
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["b"], false)))
        .unwrap_err();
    assert!(matches!(err, ConfigWriteError::ReadOnly { .. }), "{err}");
    assert!(err.to_string().contains("is read-only"));
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(
        dir_listing(file.parent().unwrap()),
        listing,
        "no temp file, no backup"
    );

    // A new ~/.claude.json is private (it will hold Claude Code's state); a new .mcp.json not.
    let fresh = Sandbox::new();
    generate(&fresh.request(ClientKind::ClaudeCode, fresh.write(&["m"], false))).unwrap();
    assert_eq!(mode(&fresh.file(ClientKind::ClaudeCode)), 0o600);
    generate(&fresh.request(ClientKind::ClaudeCodeProject, fresh.write(&["m"], false))).unwrap();
    assert_eq!(mode(&fresh.file(ClientKind::ClaudeCodeProject)), 0o644);
}

#[test]
fn an_unwritable_directory_is_a_clear_error() {
    let mut sandbox = Sandbox::new();
    // A file where the directory should be: fails even for root.
    std::fs::write(sandbox.dirs.home.join("blocker"), "x").unwrap();
    sandbox.dirs.home = sandbox.dirs.home.join("blocker");
    let err = generate(&sandbox.request(ClientKind::Cursor, sandbox.write(&["memory"], false)))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot create the directory"), "{err}");
    assert!(
        err.contains(&*Path::new("blocker").join(".cursor").to_string_lossy())
            && err.contains("left unchanged"),
        "{err}"
    );
}

#[test]
fn dry_run_shows_the_diff_and_writes_nothing() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude.json"));
    let mut request = sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false));
    request.dry_run = true;
    let report = generate(&request).unwrap();
    assert!(report.changed && !report.written && report.backup.is_none());
    assert!(report.diff.starts_with(&format!(
        "--- {}\n+++ {}\n@@ ",
        file.display(),
        file.display()
    )));
    assert!(
        report
            .diff
            .contains("\n+    \"memory\": {\n+      \"type\": \"stdio\",\n")
    );
    assert!(report.to_string().contains("Dry run: nothing was written"));
    assert_eq!(std::fs::read(&file).unwrap(), fixture("claude.json"));
    assert_eq!(dir_listing(file.parent().unwrap()), [".claude.json", "src"]);
}

#[test]
fn backups_are_pruned_to_the_last_few() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, b"{}");
    let mut contents = Vec::new();
    for round in 0..BACKUPS_KEPT + 3 {
        contents.push(std::fs::read(&file).unwrap());
        let action = if round % 2 == 0 {
            sandbox.write(&["memory"], false)
        } else {
            Action::Remove { targets: None }
        };
        assert!(
            generate(&sandbox.request(ClientKind::ClaudeCode, action))
                .unwrap()
                .written
        );
    }
    let backups = backups_of(&file);
    assert_eq!(backups.len(), BACKUPS_KEPT);
    let kept: Vec<Vec<u8>> = backups.iter().map(|b| std::fs::read(b).unwrap()).collect();
    assert_eq!(
        kept,
        contents[contents.len() - BACKUPS_KEPT..],
        "the newest, in order"
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_is_edited_through_the_link() {
    let sandbox = Sandbox::new();
    let dotfiles = sandbox.dirs.home.join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("claude.json"), "{}").unwrap();
    let link = sandbox.file(ClientKind::ClaudeCode);
    std::os::unix::fs::symlink(dotfiles.join("claude.json"), &link).unwrap();
    generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false))).unwrap();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let value = as_json(
        &std::fs::read_to_string(dotfiles.join("claude.json")).unwrap(),
        Dialect::Json,
    );
    assert_eq!(value["mcpServers"]["memory"], sandbox.entry("memory"));
}

#[test]
fn a_concurrent_writers_change_survives() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, &fixture("claude.json"));
    let original = String::from_utf8(fixture("claude.json")).unwrap();
    // Between our read and our rename, "Claude Code" rewrites the file (once).
    let mut rewrites = 0;
    let theirs = original.replace("\"numStartups\": 412", "\"numStartups\": 413");
    let report = generate_with_hook(
        &sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false)),
        &mut |path| {
            if rewrites == 0 {
                std::fs::write(path, &theirs).unwrap();
            }
            rewrites += 1;
        },
    )
    .unwrap();
    assert_eq!(report.attempts, 2);
    let result = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        strip_our_entries(&result, Dialect::Json, &["mcpServers"]),
        theirs
    );
    assert!(result.contains("\"numStartups\": 413"));
    // The backup holds what we merged from: their version.
    assert_eq!(
        std::fs::read_to_string(report.backup.unwrap()).unwrap(),
        theirs
    );
    assert_eq!(
        backups_of(&file).len(),
        1,
        "the abandoned attempt's backup is gone"
    );

    // A file that never stops changing: we give up, and their last version stands.
    let mut count = 0;
    let err = generate_with_hook(
        &sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["other"], false)),
        &mut |path| {
            count += 1;
            std::fs::write(path, format!("{{\"numStartups\": {count}}}")).unwrap();
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigWriteError::ConcurrentWriter { attempts: 5, .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "{\"numStartups\": 5}"
    );
    let names = dir_listing(file.parent().unwrap());
    assert!(names.iter().all(|n| !n.contains("msm-tmp")), "{names:?}");
}

#[test]
fn errors_name_the_problem() {
    let sandbox = Sandbox::new();
    let relative = Action::Write {
        proxy: PathBuf::from("mcp-session-proxy"),
        targets: vec!["memory".into()],
        force: false,
    };
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, relative)).unwrap_err();
    assert!(err.is_bad_request() && err.to_string().contains("not absolute"));
    let missing = Action::Write {
        proxy: sandbox.proxy.with_file_name("gone"),
        targets: vec!["memory".into()],
        force: false,
    };
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, missing)).unwrap_err();
    assert!(
        err.to_string()
            .contains("mcp-session-proxy was not found (looked for "),
        "{err}"
    );
    assert!(!sandbox.file(ClientKind::ClaudeCode).exists());
    let mut request = sandbox.request(ClientKind::Cursor, sandbox.write(&["memory"], false));
    request.scope = Scope::Local;
    assert!(generate(&request).unwrap_err().is_bad_request());
    sandbox.put(ClientKind::ClaudeCode, b"[1, 2]");
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["m"], false)))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the top level is not a JSON object"),
        "{err}"
    );
    sandbox.put(ClientKind::ClaudeCode, b"{\"a\": \"\xff\"}");
    let err = generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["m"], false)))
        .unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn select_targets_checks_names_against_config_toml() {
    use msm_client_config::select_targets;
    let config = msm_core::Config::parse(
        Path::new("config.toml"),
        "[targets.everything]\ncommand = \"npx\"\ntransport = \"stdio\"\nport = 4000\n[targets.off]\ncommand = \"x\"\ntransport = \"stdio\"\nport = 4001\nenabled = false\n",
    )
    .unwrap();
    assert_eq!(
        select_targets(&config, &[]).unwrap(),
        ["everything", "memory"]
    );
    assert_eq!(
        select_targets(&config, &["memory".into(), "memory".into()]).unwrap(),
        ["memory"]
    );
    let err = select_targets(&config, &["nope".into()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "unknown target `nope`; configured targets: everything, memory, off"
    );
    let err = select_targets(&config, &["off".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("`off` is disabled"), "{err}");
}

#[test]
fn options_from_the_api_body_become_requests() {
    use msm_client_config::GenerateOptions;
    let config = msm_core::Config::default();
    let sandbox = Sandbox::new();
    let options: GenerateOptions = serde_json::from_value(
        json!({"client": "claude-code-project", "dry_run": true, "cwd": "/home/dev/p"}),
    )
    .unwrap();
    let request = options
        .into_request(&config, sandbox.dirs.clone(), || {
            Ok(PathBuf::from("/opt/mcp-session-proxy"))
        })
        .unwrap();
    assert_eq!(request.client, ClientKind::ClaudeCodeProject);
    assert!(request.dry_run);
    assert_eq!(
        request.dirs.config_file(request.client),
        Path::new("/home/dev/p/.mcp.json")
    );
    assert_eq!(
        request.action,
        Action::Write {
            proxy: PathBuf::from("/opt/mcp-session-proxy"),
            targets: vec!["memory".into()],
            force: false
        }
    );
    // Removing never looks for the proxy.
    let remove: GenerateOptions = serde_json::from_value(json!({"remove": true})).unwrap();
    let request = remove
        .into_request(&config, sandbox.dirs.clone(), || panic!("not needed"))
        .unwrap();
    assert_eq!(request.action, Action::Remove { targets: None });
    let relative: GenerateOptions = serde_json::from_value(json!({"cwd": "p"})).unwrap();
    assert!(
        relative
            .into_request(&config, sandbox.dirs.clone(), || unreachable!())
            .unwrap_err()
            .is_bad_request()
    );
    assert!(serde_json::from_value::<GenerateOptions>(json!({"client": "vim"})).is_err());
    assert!(serde_json::from_value::<GenerateOptions>(json!({"bogus": 1})).is_err());

    // What the API answers: the report's fields plus `message` and `path`.
    sandbox.put(ClientKind::ClaudeCode, b"{}");
    let report =
        generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false)))
            .unwrap();
    let body = report.to_json();
    assert_eq!(
        body["entries"],
        json!([{"name": "memory", "outcome": "added"}])
    );
    assert_eq!(body["client"], "claude-code");
    assert_eq!(body["written"], true);
    assert_eq!(
        body["path"],
        sandbox.file(ClientKind::ClaudeCode).to_str().unwrap()
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("restart Claude Code")
    );
}

#[test]
fn temp_files_of_a_killed_writer_are_cleaned_after_an_hour() {
    let sandbox = Sandbox::new();
    let file = sandbox.put(ClientKind::ClaudeCode, b"{}");
    let dir = file.parent().unwrap();
    let stale = dir.join(".claude.json.msm-tmp-stale1");
    let fresh = dir.join(".claude.json.msm-tmp-fresh1");
    let unrelated = dir.join(".other.json.msm-tmp-stale2");
    for path in [&stale, &fresh, &unrelated] {
        std::fs::write(path, "{}").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for path in [&stale, &unrelated] {
        let handle = std::fs::File::options().write(true).open(path).unwrap();
        handle.set_modified(two_hours_ago).unwrap();
    }
    generate(&sandbox.request(ClientKind::ClaudeCode, sandbox.write(&["memory"], false))).unwrap();
    assert!(!stale.exists(), "stale temp file of ours removed");
    assert!(
        fresh.exists(),
        "a recent one may belong to a running writer"
    );
    assert!(
        unrelated.exists(),
        "another file's temp files are not ours to judge"
    );
}
