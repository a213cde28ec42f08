//! `mcp-session-proxy`: wires the library together. SIGINT is ignored before anything else.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First thing, before the runtime or a single thread exists: Ctrl-C must never end us.
    msm_proxy::signals::ignore_interrupt();
    match try_main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mcp-session-proxy: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn try_main() -> anyhow::Result<u8> {
    let args = msm_proxy::Args::parse();
    let _logs = msm_core::logging::init_stderr(args.log_file.as_deref())?;
    let state = msm_core::StateDir::from_env()?;
    let project = msm_proxy::project_dir(args.project)?;
    let options = msm_proxy::ProxyOptions {
        state,
        target: args.target,
        project,
        instance: uuid::Uuid::new_v4(),
    };
    tracing::debug!(?options, "starting");
    // One thread: the proxy is I/O bound and small is the point.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(msm_proxy::run(options));
    // Blocking helpers (the stdin thread) must not keep us alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(u8::try_from(code).unwrap_or(1))
}
