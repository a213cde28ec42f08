//! `mcp-session-manager daemon`: the headless host in the foreground.

use std::process::ExitCode;

pub fn run(_args: crate::DaemonArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
