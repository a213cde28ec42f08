//! The tray app shell: wires the host, the tray menu, the window and autostart.

pub fn run() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
