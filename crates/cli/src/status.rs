//! `status`, `start|stop|restart NAME` and `logs NAME`: clients of the manager API.

use std::process::ExitCode;

pub fn status(_args: crate::StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

pub fn daemon_action(_name: &str, _action: &str) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

pub fn logs(_args: crate::LogsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
