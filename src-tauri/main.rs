//! `mcp-session-manager`: with no arguments the tray app, otherwise the headless CLI.
#![cfg_attr(all(not(debug_assertions), windows), windows_subsystem = "windows")]

#[cfg(feature = "gui")]
mod host_runner;
#[cfg(feature = "gui")]
mod manager_client;
#[cfg(feature = "gui")]
mod status_notifier;
#[cfg(feature = "gui")]
mod tray;
#[cfg(feature = "gui")]
mod tray_app;
// Pure data, so its tests also run in the headless build.
#[cfg(any(feature = "gui", test))]
mod tray_model;

fn main() -> std::process::ExitCode {
    let cli = msm_cli::parse(std::env::args_os());
    match cli.command {
        Some(command) => msm_cli::run(command),
        None => run_gui(),
    }
}

#[cfg(feature = "gui")]
fn run_gui() -> std::process::ExitCode {
    tray_app::run()
}

#[cfg(not(feature = "gui"))]
fn run_gui() -> std::process::ExitCode {
    eprintln!("mcp-session-manager: built without the tray app; use `mcp-session-manager daemon`");
    std::process::ExitCode::from(2)
}
