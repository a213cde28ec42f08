use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::client::Os;
use msm_core::TargetKind;

/// A home, a project and a state dir in one temp dir, with a proxy file to point at.
struct Fixture {
    _dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
    state: PathBuf,
    proxy: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let project = dir.path().join("work").join("my app");
        let state = home.join(".mcp-session-manager");
        for d in [&home, &project, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        let proxy = dir.path().join("bin").join("mcp-session-proxy");
        std::fs::create_dir_all(proxy.parent().unwrap()).unwrap();
        std::fs::write(&proxy, "").unwrap();
        std::fs::write(
            state.join("config.toml"),
            msm_core::config::DEFAULT_CONFIG_TOML,
        )
        .unwrap();
        Fixture {
            _dir: dir,
            home,
            project,
            state,
            proxy,
        }
    }

    fn dirs(&self) -> ClientDirs {
        ClientDirs {
            os: Os::Linux,
            home: self.home.clone(),
            cwd: self.project.clone(),
            appdata: None,
            xdg_config_home: None,
        }
    }

    fn request(&self, names: &[&str], all: bool) -> AdoptRequest {
        AdoptRequest {
            names: names.iter().map(|n| n.to_string()).collect(),
            all,
            dry_run: false,
            share: BTreeMap::new(),
            project: self.project.clone(),
            dirs: self.dirs(),
            config_path: self.state.join("config.toml"),
            record_path: self.state.join("adoptions.json"),
            proxy: self.proxy.clone(),
            environment: BTreeMap::from([("API_TOKEN".to_owned(), "tok-from-env".to_owned())]),
        }
    }

    fn claude_json(&self) -> PathBuf {
        self.home.join(".claude.json")
    }

    /// Every file adoption may touch, with its bytes (absent files as `None`).
    fn snapshot(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        [
            self.claude_json(),
            self.project.join(".mcp.json"),
            self.home.join(".cursor").join("mcp.json"),
            self.home
                .join(".config")
                .join("Claude")
                .join("claude_desktop_config.json"),
            self.state.join("config.toml"),
            self.state.join("secrets.toml"),
            self.state.join("adoptions.json"),
        ]
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).ok();
            (p, bytes)
        })
        .collect()
    }

    fn write(&self, path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The realistic fleet of the issue, in four clients' files.
    fn fleet(&self) {
        let project = self.project.display().to_string();
        let claude = format!(
            r#"{{
  "numStartups": 42,
  "mcpServers": {{
    "everything": {{
      "type": "stdio",
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-everything"],
      "env": {{}}
    }},
    "filesystem": {{
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-filesystem", "."]
    }},
    "memory": {{
      "command": "npx",
      "args": ["-y", "@modelcontextprotocol/server-memory"],
      "env": {{ "MEMORY_FILE_PATH": "/data/memory.jsonl" }}
    }},
    "notes": {{
      "command": "python3",
      "args": ["notes_server.py"],
      "env": {{ "NOTES_TOKEN": "tok-SECRET-1234" }}
    }},
    "remote": {{ "type": "http", "url": "https://mcp.example.test/mcp" }}
  }},
  "projects": {{
    "{project}": {{
      "allowedTools": ["mcp__filesystem__read_text_file"],
      "mcpServers": {{
        "indexer": {{ "command": "code-index-mcp", "args": ["--project-path", "{project}"] }}
      }}
    }}
  }}
}}
"#
        );
        self.write(&self.claude_json(), &claude);
        self.write(
            &self.project.join(".mcp.json"),
            "{\n    \"mcpServers\": {\n        \"playwright\": {\"command\": \"npx\", \"args\": [\"@playwright/mcp@latest\"]}\n    }\n}\n",
        );
        self.write(
            &self.home.join(".cursor").join("mcp.json"),
            "{\n\t// my servers\n\t\"mcpServers\": {\n\t\t\"time\": { \"command\": \"uvx\", \"args\": [\"mcp-server-time\"], },\n\t},\n}\n",
        );
    }
}

fn no_host(_: &[String]) -> Result<(), String> {
    Ok(())
}

fn server<'a>(found: &'a Discovery, name: &str) -> &'a FoundServer {
    found
        .servers
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} was not found"))
}

#[test]
fn every_client_file_is_listed_with_a_reasoned_proposal_and_no_env_value() {
    let f = Fixture::new();
    f.fleet();
    let found = list(&f.dirs(), &f.project, &f.state.join("adoptions.json")).unwrap();
    let share = |name: &str| server(&found, name).proposal.share;
    assert_eq!(share("everything"), Hosting::Shared);
    assert_eq!(share("filesystem"), Hosting::PerProject);
    assert_eq!(share("memory"), Hosting::Shared);
    assert!(
        server(&found, "memory")
            .proposal
            .reason
            .contains("MEMORY_FILE_PATH")
    );
    assert_eq!(share("notes"), Hosting::PerSession);
    assert_eq!(share("remote"), Hosting::Leave);
    assert_eq!(server(&found, "remote").transport, EntryTransport::Http);
    assert_eq!(
        share("indexer"),
        Hosting::PerProject,
        "its arg is the local scope's dir"
    );
    assert_eq!(server(&found, "indexer").scope, Source::Local);
    assert_eq!(share("playwright"), Hosting::PerSession);
    assert_eq!(server(&found, "playwright").scope, Source::Project);
    assert_eq!(share("time"), Hosting::Shared);
    assert_eq!(server(&found, "time").scope, Source::Cursor);
    assert_eq!(server(&found, "notes").env_names, vec!["NOTES_TOKEN"]);
    let json = serde_json::to_string(&found).unwrap();
    assert!(!json.contains("tok-SECRET-1234"), "{json}");
}

#[test]
fn adopt_all_then_undo_gives_back_every_byte() {
    let f = Fixture::new();
    f.fleet();
    let before = f.snapshot();
    let mut host_saw = Vec::new();
    let report = adopt(&f.request(&[], true), &mut |targets: &[String]| {
        host_saw = targets.to_vec();
        Ok(())
    })
    .unwrap();
    let adopted: Vec<&str> = report.adopted.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        adopted.len(),
        7,
        "everything, filesystem, memory, notes, indexer, playwright, time: {adopted:?}"
    );
    assert!(report.skipped.iter().any(|s| s.name == "remote"));
    assert_eq!(host_saw.len(), report.targets.len());

    // config.toml has the targets, each on its own port of the range, started on demand.
    let config = Config::load(&f.state.join("config.toml")).unwrap();
    let fs = &config.targets["filesystem"];
    assert_eq!(fs.share, msm_core::ShareMode::PerProject);
    assert!(fs.kind.uses_project_placeholder());
    assert!(fs.starts_on_demand());
    assert!(config.adopt_ports.contains(&fs.port.unwrap()));
    // The builtin `memory` keeps its name: the reference server is `memory-2`.
    let memory_target = &report
        .adopted
        .iter()
        .find(|a| a.name == "memory")
        .unwrap()
        .target;
    assert_eq!(memory_target, "memory-2");
    let TargetKind::Process { env, .. } = &config.targets["notes"].kind else {
        panic!()
    };
    assert_eq!(
        env["NOTES_TOKEN"], "tok-SECRET-1234",
        "the host has the secret"
    );
    let config_text = std::fs::read_to_string(f.state.join("config.toml")).unwrap();
    assert!(
        !config_text.contains("tok-SECRET-1234"),
        "secrets stay out of config.toml"
    );
    #[cfg(unix)]
    for file in ["secrets.toml", "adoptions.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.state.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    // The client entries run the proxy under the same names; the rest of the file is kept.
    let claude: Value =
        serde_json::from_str(&std::fs::read_to_string(f.claude_json()).unwrap()).unwrap();
    assert_eq!(
        claude["mcpServers"]["notes"],
        json!({"type": "stdio", "command": f.proxy.display().to_string(), "args": ["--target", "notes"]})
    );
    assert_eq!(
        claude["mcpServers"]["remote"]["url"],
        "https://mcp.example.test/mcp"
    );
    assert_eq!(claude["numStartups"], 42);
    let cursor = std::fs::read_to_string(f.home.join(".cursor").join("mcp.json")).unwrap();
    assert!(
        cursor.contains("// my servers") && cursor.contains("mcp-session-proxy"),
        "{cursor}"
    );
    assert!(
        !std::fs::read_to_string(f.claude_json())
            .unwrap()
            .contains("tok-SECRET")
    );

    // Again: nothing changes.
    let adopted_state = f.snapshot();
    let again = adopt(&f.request(&[], true), &mut no_host).unwrap();
    assert!(again.adopted.is_empty(), "{:?}", again.adopted);
    assert_eq!(f.snapshot(), adopted_state);
    let listed = list(&f.dirs(), &f.project, &f.state.join("adoptions.json")).unwrap();
    assert!(server(&listed, "notes").adopted && server(&listed, "notes").through_proxy);

    let undone = undo(&f.request(&[], true)).unwrap();
    assert_eq!(undone.undone.len(), 7, "{undone:?}");
    assert_eq!(
        f.snapshot(),
        before,
        "undo gives back every file byte for byte"
    );
}

#[test]
fn undo_after_the_user_edited_the_files_changes_only_our_entries() {
    let f = Fixture::new();
    f.fleet();
    adopt(&f.request(&["notes", "time"], false), &mut no_host).unwrap();
    // The user edits elsewhere in both files meanwhile.
    let claude = std::fs::read_to_string(f.claude_json())
        .unwrap()
        .replace("\"numStartups\": 42", "\"numStartups\": 43");
    std::fs::write(f.claude_json(), &claude).unwrap();
    let config = f.state.join("config.toml");
    let edited = std::fs::read_to_string(&config)
        .unwrap()
        .replace("port = 3199", "port = 3198");
    std::fs::write(&config, &edited).unwrap();

    let report = undo(&f.request(&["notes"], false)).unwrap();
    assert_eq!(report.undone, vec!["notes"]);
    let after = std::fs::read_to_string(f.claude_json()).unwrap();
    assert!(after.contains("\"numStartups\": 43"));
    assert!(
        after.contains("tok-SECRET-1234"),
        "the original entry is back"
    );
    let config_after = Config::load(&config).unwrap();
    assert_eq!(config_after.manager_port, 3198, "the user's edit stays");
    assert!(!config_after.targets.contains_key("notes"));
    assert!(config_after.targets.contains_key("time"), "still adopted");
    assert!(
        !f.state.join("secrets.toml").exists(),
        "no secret left to keep"
    );
    // An adopted entry the user replaced is left alone.
    let cursor = f.home.join(".cursor").join("mcp.json");
    std::fs::write(
        &cursor,
        "{\"mcpServers\": {\"time\": {\"command\": \"mine\"}}}",
    )
    .unwrap();
    let report = undo(&f.request(&[], true)).unwrap();
    assert!(report.undone.is_empty());
    assert_eq!(report.skipped[0].name, "time");
    assert_eq!(
        std::fs::read_to_string(&cursor).unwrap(),
        "{\"mcpServers\": {\"time\": {\"command\": \"mine\"}}}"
    );
    assert!(!f.state.join("adoptions.json").exists());
}

#[test]
fn a_dry_run_writes_nothing_and_shows_both_diffs_without_secrets() {
    let f = Fixture::new();
    f.fleet();
    let before = f.snapshot();
    let mut request = f.request(&["notes", "filesystem"], false);
    request.dry_run = true;
    request.share.insert("filesystem".into(), Hosting::Shared);
    let report = adopt(&request, &mut |_: &[String]| {
        panic!("no host call in a dry run")
    })
    .unwrap();
    assert_eq!(f.snapshot(), before);
    let all: String = report.diffs.iter().map(|d| d.diff.clone()).collect();
    assert!(
        all.contains("[targets.notes]") && all.contains("--target"),
        "{all}"
    );
    assert!(all.contains("NOTES_TOKEN = <hidden>"), "{all}");
    assert!(!all.contains("tok-SECRET-1234"), "{all}");
    assert!(
        report
            .adopted
            .iter()
            .any(|a| a.name == "filesystem" && a.share == Hosting::Shared)
    );
}

#[test]
fn bad_entries_and_unknown_names_are_skipped_with_their_reason() {
    let f = Fixture::new();
    f.write(
        &f.claude_json(),
        r#"{"mcpServers": {"good": {"command": "uvx", "args": ["mcp-server-fetch"]}, "noargs": {"command": "x", "args": "oops"}, "nocmd": {"args": []}, "weird": {"type": "carrier-pigeon", "command": "x"}}}"#,
    );
    let report = adopt(
        &f.request(&["good", "noargs", "nocmd", "weird", "ghost"], false),
        &mut no_host,
    )
    .unwrap();
    assert_eq!(report.adopted.len(), 1);
    let reason = |name: &str| {
        report
            .skipped
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.reason.clone())
            .unwrap_or_default()
    };
    assert!(
        reason("noargs").contains("`args` is not a list"),
        "{:?}",
        report.skipped
    );
    assert!(reason("nocmd").contains("no `command`"));
    assert!(reason("weird").contains("unknown type"));
    assert!(reason("ghost").contains("no server of this name"));
}

#[test]
fn a_host_that_does_not_take_the_targets_leaves_the_client_files_alone() {
    let f = Fixture::new();
    f.fleet();
    let claude_before = std::fs::read(f.claude_json()).unwrap();
    let err = adopt(&f.request(&["notes"], false), &mut |_: &[String]| {
        Err("the host is down".into())
    })
    .unwrap_err();
    assert!(err.to_string().contains("the host is down"), "{err}");
    assert_eq!(std::fs::read(f.claude_json()).unwrap(), claude_before);
    // The undo of a half-done adoption takes the target back out.
    undo(&f.request(&[], true)).unwrap();
    assert!(
        !Config::load(&f.state.join("config.toml"))
            .unwrap()
            .targets
            .contains_key("notes")
    );
}

#[test]
fn a_half_written_client_file_is_refused_and_kept() {
    let f = Fixture::new();
    f.write(
        &f.claude_json(),
        "{\"mcpServers\": {\"a\": {\"command\": \"x\"",
    );
    let found = list(&f.dirs(), &f.project, &f.state.join("adoptions.json")).unwrap();
    assert_eq!(found.skipped_files.len(), 1);
    assert!(found.servers.is_empty());
}

/// A generated client file: servers with generated names and args, in one of several styles.
fn client_file() -> impl Strategy<Value = (String, Vec<String>)> {
    let name = "[a-z][a-z0-9_. -]{0,10}";
    let arg = prop_oneof![Just(".".to_owned()), "[a-z@/.=-]{0,12}"];
    let server = (name, prop::collection::vec(arg, 0..4), any::<bool>());
    (
        prop::collection::btree_map("[a-z]{1,6}", server, 1..5),
        prop_oneof![Just("  "), Just("    "), Just("\t"), Just("")],
        any::<bool>(),
    )
        .prop_map(|(servers, indent, crlf)| {
            let mut map = serde_json::Map::new();
            let mut names = Vec::new();
            for (_, (name, args, with_env)) in servers {
                let mut entry = json!({"command": "node", "args": args});
                if with_env {
                    entry["env"] = json!({"TOKEN": format!("secret-{name}")});
                }
                names.push(name.clone());
                map.insert(name, entry);
            }
            let value = json!({"other": [1, 2.50, "x"], "mcpServers": map});
            let mut text = if indent.is_empty() {
                serde_json::to_string(&value).unwrap()
            } else {
                let mut out = Vec::new();
                let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
                let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
                serde::Serialize::serialize(&value, &mut ser).unwrap();
                String::from_utf8(out).unwrap()
            };
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            (text, names)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn adopt_then_undo_gives_back_the_original_bytes((text, _names) in client_file(), desktop_too in any::<bool>()) {
        let f = Fixture::new();
        f.write(&f.claude_json(), &text);
        if desktop_too {
            f.write(&f.home.join(".config").join("Claude").join("claude_desktop_config.json"), &text);
        }
        let before = f.snapshot();
        let report = adopt(&f.request(&[], true), &mut no_host).unwrap();
        prop_assert!(!report.adopted.is_empty());
        prop_assert!(Config::load(&f.state.join("config.toml")).is_ok());
        undo(&f.request(&[], true)).unwrap();
        prop_assert_eq!(f.snapshot(), before);
    }
}

#[test]
fn a_remote_entry_is_left_by_default_and_shared_through_the_host_on_request() {
    let f = Fixture::new();
    f.write(
        &f.claude_json(),
        r#"{"mcpServers": {
  "team": {"type": "http", "url": "https://mcp.example.test/mcp", "headers": {"Authorization": "Bearer tok-SECRET-9"}},
  "feed": {"type": "sse", "url": "https://feed.example.test/sse"}
}}
"#,
    );
    let before = f.snapshot();
    let left = adopt(&f.request(&[], true), &mut no_host).unwrap();
    assert!(left.adopted.is_empty(), "{:?}", left.adopted);
    assert!(left.skipped.iter().all(|s| s.reason.contains("remote")));
    assert_eq!(f.snapshot(), before, "nothing written");

    let mut request = f.request(&["team", "feed"], false);
    request.share.insert("team".into(), Hosting::Shared);
    request.share.insert("feed".into(), Hosting::PerSession);
    let report = adopt(&request, &mut no_host).unwrap();
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    let feed = report.skipped.iter().find(|s| s.name == "feed").unwrap();
    assert!(feed.reason.contains("shared"), "{}", feed.reason);

    let config = Config::load(&f.state.join("config.toml")).unwrap();
    let team = &config.targets["team"];
    assert!(team.is_fronted_remote());
    let TargetKind::Remote { url, headers, .. } = &team.kind else {
        panic!("{team:?}")
    };
    assert_eq!(url, "https://mcp.example.test/mcp");
    assert_eq!(
        headers["Authorization"], "Bearer tok-SECRET-9",
        "from secrets.toml"
    );
    let config_text = std::fs::read_to_string(f.state.join("config.toml")).unwrap();
    assert!(!config_text.contains("tok-SECRET-9"), "{config_text}");
    let client: Value = serde_json::from_slice(&std::fs::read(f.claude_json()).unwrap()).unwrap();
    assert_eq!(
        client["mcpServers"]["team"]["args"],
        json!(["--target", "team"])
    );

    undo(&f.request(&[], true)).unwrap();
    assert_eq!(f.snapshot(), before, "undo gives back every byte");
}

#[test]
fn well_known_servers_are_recognised_in_every_spelling_of_their_command() {
    let f = Fixture::new();
    f.write(
        &f.claude_json(),
        r#"{"mcpServers": {
  "module": {"command": "python3", "args": ["-m", "mcp_server_time"]},
  "windows-exe": {"command": "C:\\Users\\me\\.local\\bin\\mcp-server-time.exe"},
  "uvx": {"command": "uvx", "args": ["mcp-server-fetch@2025.4.7"]},
  "scoped": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-sequential-thinking@latest"]},
  "mine": {"command": "python3", "args": ["-m", "my_tools"]}
}}
"#,
    );
    let found = list(&f.dirs(), &f.project, &f.state.join("adoptions.json")).unwrap();
    for name in ["module", "windows-exe", "uvx", "scoped"] {
        assert_eq!(
            server(&found, name).proposal.share,
            Hosting::Shared,
            "{name}"
        );
    }
    assert_eq!(server(&found, "mine").proposal.share, Hosting::PerSession);
}

#[test]
fn variables_in_an_entry_expand_as_claude_code_expands_them_or_the_entry_is_skipped() {
    let f = Fixture::new();
    f.write(
        &f.claude_json(),
        r#"{"mcpServers": {
  "api": {"command": "api-server", "args": ["--root", "${DATA_DIR:-/srv/data}"], "env": {"TOKEN": "Bearer ${API_TOKEN}"}},
  "broken": {"command": "other-server", "env": {"KEY": "${NOT_SET_ANYWHERE}"}}
}}
"#,
    );
    let report = adopt(&f.request(&[], true), &mut no_host).unwrap();
    assert_eq!(report.adopted.len(), 1, "{report:?}");
    let broken = report.skipped.iter().find(|s| s.name == "broken").unwrap();
    assert!(
        broken.reason.contains("${NOT_SET_ANYWHERE}"),
        "{}",
        broken.reason
    );
    let config = Config::load(&f.state.join("config.toml")).unwrap();
    let TargetKind::Process { args, env, .. } = &config.targets["api"].kind else {
        panic!()
    };
    assert_eq!(args, &["--root", "/srv/data"]);
    assert_eq!(env["TOKEN"], "Bearer tok-from-env");
    let client = std::fs::read_to_string(f.claude_json()).unwrap();
    assert!(
        client.contains("${NOT_SET_ANYWHERE}"),
        "the skipped entry is untouched"
    );
}
