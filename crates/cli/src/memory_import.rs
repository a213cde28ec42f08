//! `memory import FILE.jsonl [--project DIR]`.

use std::path::Path;
use std::process::ExitCode;

pub fn run(_file: &Path, _project: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
