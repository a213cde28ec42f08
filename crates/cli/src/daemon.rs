//! `mcp-session-manager daemon`: the headless host in the foreground. SIGINT/SIGTERM (or
//! `POST /shutdown`) stop it cleanly: targets stopped, DBs closed, lock files removed, exit 0.
//! A second host finds the first, says so, asks it to start the `--only` targets, and exits 0.

use std::process::ExitCode;

use anyhow::Context;
use msm_core::StateDir;
use msm_host::{Host, HostError, HostOptions};

pub fn run(args: crate::DaemonArgs) -> anyhow::Result<ExitCode> {
    let state_dir = StateDir::from_env()?;
    state_dir
        .ensure()
        .with_context(|| format!("cannot create the state dir {}", state_dir.root().display()))?;
    let _log_guards = msm_core::logging::init_host(state_dir.root(), true)
        .with_context(|| format!("cannot open the logs in {}", state_dir.root().display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(state_dir, args.only))
}

async fn serve(state_dir: StateDir, only: Vec<String>) -> anyhow::Result<ExitCode> {
    // Before anything else: a SIGTERM that arrives while the host starts must stop it cleanly,
    // not kill the process with its default action.
    let mut signals = StopSignals::install();
    let options = HostOptions {
        only: only.clone(),
        ..HostOptions::new(state_dir.clone())
    };
    let host = match Host::start(options).await {
        Ok(host) => host,
        Err(HostError::AlreadyRunning { pid, port }) => {
            eprintln!(
                "mcp-session-manager: a host is already running (pid {pid}, manager on http://127.0.0.1:{port}); not starting another"
            );
            ensure_on_running_host(&state_dir, port, &only).await;
            return Ok(ExitCode::SUCCESS);
        }
        Err(error @ HostError::AlreadyRunningUnknown(_)) => {
            eprintln!("mcp-session-manager: {error}; not starting another");
            return Ok(ExitCode::SUCCESS);
        }
        Err(error) => return Err(error.into()),
    };
    eprintln!(
        "mcp-session-manager: host running (pid {}), manager API at {}",
        std::process::id(),
        host.manager_url()
    );
    let reason = tokio::select! {
        reason = signals.recv() => reason,
        _ = host.shutdown_requested() => "shutdown requested",
    };
    tracing::info!("stopping: {reason}");
    host.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Asks the running host to start the targets this invocation was asked for.
async fn ensure_on_running_host(state_dir: &StateDir, port: u16, only: &[String]) {
    if only.is_empty() {
        return;
    }
    let Ok(token) = msm_core::Token::load(state_dir) else {
        return;
    };
    let client = reqwest::Client::new();
    for name in only {
        let url = format!("http://127.0.0.1:{port}/daemons/{name}/ensure");
        match client.post(&url).bearer_auth(token.as_str()).send().await {
            Ok(response) if response.status().is_success() => {
                eprintln!("mcp-session-manager: `{name}` is running on the existing host");
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                eprintln!(
                    "mcp-session-manager: the existing host could not start `{name}` ({status}): {body}"
                );
            }
            Err(error) => eprintln!("mcp-session-manager: cannot reach the existing host: {error}"),
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, registered as soon as `install` returns.
struct StopSignals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hangup: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn install() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                terminate: signal(SignalKind::terminate()).ok(),
                hangup: signal(SignalKind::hangup()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.interrupt) => "SIGINT",
                _ = next(&mut self.terminate) => "SIGTERM",
                _ = next(&mut self.hangup) => "SIGHUP",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
