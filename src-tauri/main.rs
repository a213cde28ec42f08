//! `mcp-session-manager`: with no arguments the tray app, otherwise the headless CLI.
#![cfg_attr(all(not(debug_assertions), windows), windows_subsystem = "windows")]

#[cfg(feature = "gui")]
mod tray_app;

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
