//! `memory import FILE.jsonl [--project DIR]`: loads a reference memory server's JSONL file
//! into the project's (or the home) memory DB, idempotently, and reports what it did.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use msm_core::StateDir;
use msm_memory::{ImportReport, StoreRegistry, import_jsonl};

/// Exit 0 when the file was read (bad lines are reported, not fatal); an unreadable file, an
/// unusable `--project` or a DB that cannot be opened is an error (exit 1).
pub fn run(file: &Path, project: Option<&Path>) -> anyhow::Result<ExitCode> {
    let input = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let project = match project {
        Some(dir) => {
            let dir = dir
                .canonicalize()
                .with_context(|| format!("--project {}", dir.display()))?;
            anyhow::ensure!(
                dir.is_dir(),
                "--project {} is not a directory",
                dir.display()
            );
            Some(dir.to_string_lossy().into_owned())
        }
        None => None,
    };
    let home = msm_core::state_dir::home_dir().context("cannot find the home directory")?;
    let state = StateDir::from_env().context("cannot find the state directory")?;
    let registry = StoreRegistry::new(home, state.memory_dbs_path());
    let store = registry.store_for_project(project.as_deref())?;
    if let Some(dir) = &project {
        // The registry falls back to the home DB when the project's cannot be written.
        anyhow::ensure!(
            store.path().starts_with(dir),
            "cannot write the memory DB of project {dir}"
        );
    }
    let report = import_jsonl(&store, BufReader::new(input))
        .with_context(|| format!("importing {}", file.display()))?;
    print!("{}", describe(file, store.path(), &report));
    Ok(ExitCode::SUCCESS)
}

fn describe(file: &Path, db: &Path, r: &ImportReport) -> String {
    let mut text = format!(
        "imported {} into {}\n\
         entities: {} created, {} merged, {} unchanged\n\
         observations: {} added\n\
         relations: {} created, {} already present\n\
         bad lines: {}\n",
        file.display(),
        db.display(),
        r.entities_created,
        r.entities_merged,
        r.entities_unchanged,
        r.observations_added,
        r.relations_created,
        r.relations_existing,
        r.bad_lines.len(),
    );
    for bad in &r.bad_lines {
        text.push_str(&format!("  line {}: {}\n", bad.line, bad.reason));
    }
    text
}
