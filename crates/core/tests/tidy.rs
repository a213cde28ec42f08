//! Checks that keep the docs honest, in the style of rust-analyzer's tidy tests: every path,
//! type and function that ARCHITECTURE.md names in backticks exists, and every crate's `lib.rs`
//! opens with a doc comment saying what the crate is for.

// Test helpers may unwrap too: a panic there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Our source files (no build output, no installed peers).
fn files(root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            let skipped = matches!(name.as_str(), "target" | "node_modules" | ".git" | "gen")
                || name.starts_with(".venv");
            if !skipped {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

struct Repo {
    root: PathBuf,
    files: Vec<PathBuf>,
    rust: Vec<(PathBuf, String)>,
}

impl Repo {
    fn load() -> Repo {
        let root = repo();
        let mut all = Vec::new();
        files(&root, &mut all);
        let rust = all
            .iter()
            // Not this file: it names missing things on purpose.
            .filter(|p| p.extension().is_some_and(|e| e == "rs") && !p.ends_with("tidy.rs"))
            .map(|p| (p.clone(), std::fs::read_to_string(p).unwrap()))
            .collect();
        Repo {
            root,
            files: all,
            rust,
        }
    }

    fn has_file_named(&self, name: &str) -> bool {
        self.files
            .iter()
            .any(|p| p.file_name().is_some_and(|n| n == name))
    }

    fn has_dir_named(&self, name: &str) -> bool {
        self.files.iter().any(|p| {
            p.strip_prefix(&self.root)
                .unwrap()
                .parent()
                .is_some_and(|dir| dir.components().any(|c| c.as_os_str() == name))
        })
    }

    /// The texts of the files that define `name` as a type, trait, function or module.
    fn definers(&self, name: &str) -> Vec<&str> {
        let patterns = ["struct ", "enum ", "trait ", "type ", "fn ", "mod "]
            .map(|kind| format!("{kind}{name}"));
        self.rust
            .iter()
            .filter(|(_, text)| {
                patterns.iter().any(|pattern| {
                    text.match_indices(pattern.as_str()).any(|(at, _)| {
                        !text[at + pattern.len()..]
                            .starts_with(|c: char| c.is_alphanumeric() || c == '_')
                    })
                })
            })
            .map(|(_, text)| text.as_str())
            .collect()
    }

    fn mentions_word(&self, word: &str) -> bool {
        self.rust.iter().any(|(_, text)| contains_word(text, word))
    }
}

fn contains_word(text: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    text.match_indices(word).any(|(at, _)| {
        !ident(text[..at].chars().next_back()) && !ident(text[at + word.len()..].chars().next())
    })
}

/// Names from other crates or the wire that the document may cite without defining them.
const EXTERNAL: &[&str] = &[
    "File",
    "ServerHandler",
    "StreamableHttpService",
    "Origin",
    "TerminateJobObject",
];

fn is_type_name(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_uppercase())
        && token.chars().any(|c| c.is_ascii_lowercase())
        && token.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_snake_ident(token: &str) -> bool {
    token.contains('_')
        && !token.starts_with('_')
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_dir_name(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// What one backticked token names that does not exist, if anything.
fn check_token(repo: &Repo, token: &str, missing: &mut Vec<String>) {
    let top_level = ["crates/", "src-tauri/", "tests/", "scripts/", "ui/", ".ci/"];
    if top_level.iter().any(|dir| token.starts_with(dir)) {
        if !repo.root.join(token).exists() {
            missing.push(format!("path `{token}`"));
        }
    } else if [".rs", ".py", ".sh"].iter().any(|ext| token.ends_with(ext)) && !token.contains(' ') {
        if !repo.has_file_named(token) {
            missing.push(format!("file `{token}`"));
        }
    } else if let Some(dir) = token.strip_suffix('/').filter(|d| is_dir_name(d)) {
        if !repo.has_dir_named(dir) {
            missing.push(format!("directory `{token}`"));
        }
    } else if token.contains("::") || token.contains('(') || is_type_name(token) {
        // `Type`, `Type::member`, `Type::f(Arg) -> Ret`: each type is defined here, and a
        // member is named in a file that defines its type.
        let words = token
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .filter(|w| !w.is_empty());
        for word in words {
            let mut parts = word.split("::");
            let head = parts.next().unwrap_or_default();
            if !is_type_name(head) || EXTERNAL.contains(&head) {
                continue;
            }
            let definers = repo.definers(head);
            if definers.is_empty() {
                missing.push(format!("type `{head}` (in `{token}`)"));
            }
            for member in parts {
                if !definers.iter().any(|text| contains_word(text, member)) {
                    missing.push(format!("`{head}::{member}`"));
                }
            }
        }
    } else if is_snake_ident(token) && !repo.mentions_word(token) {
        missing.push(format!("name `{token}`"));
    }
}

#[test]
fn architecture_names_only_what_exists() {
    let repo = Repo::load();
    let text = std::fs::read_to_string(repo.root.join("ARCHITECTURE.md")).unwrap();
    // Prose only: the fenced diagrams are drawings, not names.
    let prose: String = text.split("```").step_by(2).collect::<Vec<_>>().join("\n");
    let tokens: BTreeSet<&str> = prose.split('`').skip(1).step_by(2).collect();
    let mut missing = Vec::new();
    for token in tokens {
        check_token(&repo, token, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what the code does not have: {missing:#?}"
    );
}

/// The check itself finds what is missing (a check that passes on everything checks nothing).
#[test]
fn the_check_catches_names_that_do_not_exist() {
    let repo = Repo::load();
    for token in [
        "crates/core/src/nowhere.rs",
        "nowhere.rs",
        "nowhere/",
        "NoSuchType",
        "StateDir::no_such_member",
        "no_such_function",
    ] {
        let mut missing = Vec::new();
        check_token(&repo, token, &mut missing);
        assert_eq!(missing.len(), 1, "{token}: {missing:?}");
    }
    for token in [
        "crates/core",
        "store.rs",
        "memory/",
        "StateDir",
        "check_writable",
    ] {
        let mut missing = Vec::new();
        check_token(&repo, token, &mut missing);
        assert!(missing.is_empty(), "{token}: {missing:?}");
    }
}

#[test]
fn every_lib_rs_opens_with_a_doc_comment() {
    let mut bare = Vec::new();
    for entry in std::fs::read_dir(repo().join("crates")).unwrap().flatten() {
        let lib = entry.path().join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else {
            continue;
        };
        if !text.trim_start().starts_with("//!") {
            bare.push(lib);
        }
    }
    assert!(
        bare.is_empty(),
        "lib.rs without a //! doc comment: {bare:?}"
    );
}

/// The modules of one crate that each module imports (`crate::NAME`, with the names that
/// `lib.rs` re-exports resolved to their module). A module's submodules count as the module;
/// `tests.rs` files and inline `mod tests` are left out (tests may reach anywhere).
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: BTreeSet<String> = lib
        .lines()
        .filter_map(|line| {
            let line = line
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ");
            line.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_owned)
        })
        .collect();
    // `pub use module::{A, B};` in lib.rs: `crate::A` is module's.
    let mut reexports = BTreeMap::new();
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement
            .strip_prefix("pub use ")
            .or_else(|| statement.strip_prefix("pub(crate) use "))
        else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if !name.is_empty() {
                reexports.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    let mut all = Vec::new();
    files(src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in all {
        let relative = file.strip_prefix(src).unwrap();
        if file.extension().is_none_or(|e| e != "rs") || file.ends_with("tests.rs") {
            continue;
        }
        let first = relative.components().next().unwrap().as_os_str();
        let owner = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if !modules.contains(&owner) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        let edges = graph.entry(owner.clone()).or_default();
        // `crate::a::b`, `crate::{a, b::c}`: the first segment of each path.
        for (at, _) in code.match_indices("crate::") {
            let rest = &code[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or_default())
                    .collect(),
                None => vec![
                    rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or_default(),
                ],
            };
            for name in names {
                let target = if modules.contains(name) {
                    Some(name.to_owned())
                } else {
                    reexports.get(name).cloned()
                };
                if let Some(target) = target.filter(|t| *t != owner) {
                    edges.insert(target);
                }
            }
        }
    }
    graph
}

/// A circle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// msm-host is layered: the status vocabulary and the supervisor at the bottom, the bridge and
/// launchers above them, the host above those, the manager API and reload on a narrow handle
/// (`control`). An import that runs back up would make the next change touch everything.
#[test]
fn host_modules_import_one_way() {
    let graph = module_imports(&repo().join("crates/host/src"));
    assert!(
        graph.contains_key("host") && graph["host"].contains("launch"),
        "{graph:?}"
    );
    assert_eq!(
        find_cycle(&graph),
        None,
        "import circle in msm-host: {graph:#?}"
    );
}

#[test]
fn the_cycle_check_finds_a_circle() {
    let edge = |a: &str, b: &str| (a.to_owned(), BTreeSet::from([b.to_owned()]));
    let circle = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a")]);
    assert_eq!(
        find_cycle(&circle),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let line = BTreeMap::from([edge("a", "b"), edge("b", "c")]);
    assert_eq!(find_cycle(&line), None);
}
