//! `mcp-session-manager`: with no arguments the tray app, otherwise the CLI (`daemon`, `status`, ...).
fn main() {
    std::process::exit(msm_cli::main_with_args(std::env::args_os()));
}
