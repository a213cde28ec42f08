//! `generate-config`: points an MCP client at the bundled proxy (logic in msm-client-config).

use std::process::ExitCode;

pub fn run(_args: crate::GenerateConfigArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
