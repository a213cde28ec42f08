//! Runs this user's one host for the tray app (DESIGN.md, "One host per user"): first asks a
//! headless host that a proxy may have started to hand over (`POST /shutdown`) and waits for
//! its ports, then starts the daemons and the manager API, and stops them cleanly on Quit.

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use msm_core::{Config, LockFile, StateDir};

use crate::manager_client::ManagerClient;

/// How long a headless host gets to hand over its ports, and our host to answer /health.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(20);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("the host running as pid {pid} did not hand over port {port} within {}s", HANDOVER_TIMEOUT.as_secs())]
    HandoverTimedOut { pid: u32, port: u16 },
    #[error("could not start the host ({}): {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("the host exited before it was ready ({status}); see manager.log in the state dir")]
    ExitedEarly { status: std::process::ExitStatus },
    #[error("the manager API did not answer on port {port} within {}s", READY_TIMEOUT.as_secs())]
    NotReady { port: u16 },
}

/// The host the tray app owns.
///
/// TODO(msm-host): host the daemons in-process through the msm-host library once its
/// `lib.rs` exposes a start/shutdown API; until then the tray runs its own binary's headless
/// `daemon` subcommand as a child, which serves exactly the same ports and manager API.
pub struct RunningHost {
    child: tokio::process::Child,
}

/// Ports the host will bind: the manager's and every local target's.
pub fn host_ports(config: &Config) -> Vec<u16> {
    std::iter::once(config.manager_port)
        .chain(config.targets.values().filter_map(|t| t.port))
        .collect()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// If another process owns `manager.lock` (a headless host), asks it to hand over and waits
/// until it is gone and `ports` are free. Returns whether there was a host to take over from.
pub async fn take_over_headless_host(
    state: &StateDir,
    client: &ManagerClient,
    ports: &[u16],
) -> Result<bool, HostError> {
    let Some(owner) = LockFile::read_live(&state.lock_path(msm_core::MANAGER_NAME)) else {
        return Ok(false);
    };
    if owner.pid == std::process::id() {
        return Ok(false);
    }
    tracing::info!(
        pid = owner.pid,
        port = owner.port,
        "a headless host is running: asking it to hand over"
    );
    if let Err(err) = client.shutdown().await {
        tracing::warn!(error = %err, "the running host did not accept POST /shutdown; waiting for it anyway");
    }
    let deadline = Instant::now() + HANDOVER_TIMEOUT;
    let lock_path = state.lock_path(msm_core::MANAGER_NAME);
    loop {
        let gone = LockFile::read_live(&lock_path).is_none_or(|info| info.pid != owner.pid);
        let busy_port = ports.iter().copied().find(|&p| !port_is_free(p));
        match (gone, busy_port) {
            (true, None) => {
                tracing::info!(pid = owner.pid, "the headless host handed over");
                return Ok(true);
            }
            (_, Some(port)) if Instant::now() >= deadline => {
                return Err(HostError::HandoverTimedOut {
                    pid: owner.pid,
                    port,
                });
            }
            (false, None) if Instant::now() >= deadline => {
                return Err(HostError::HandoverTimedOut {
                    pid: owner.pid,
                    port: owner.port,
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

impl RunningHost {
    /// Starts the daemons and the manager API, and waits until the manager answers /health.
    pub async fn start(
        client: &ManagerClient,
        manager_port: u16,
    ) -> Result<RunningHost, HostError> {
        let program = std::env::current_exe().map_err(|source| HostError::Spawn {
            program: PathBuf::from("mcp-session-manager"),
            source,
        })?;
        let mut child = tokio::process::Command::new(&program)
            .arg("daemon")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|source| HostError::Spawn {
                program: program.clone(),
                source,
            })?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if client.is_alive().await {
                return Ok(RunningHost { child });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HostError::ExitedEarly { status });
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                return Err(HostError::NotReady { port: manager_port });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the host cleanly (DBs closed, lock files removed): `POST /shutdown`, then a kill
    /// only if it has not exited within the grace period.
    pub async fn shutdown(mut self, client: &ManagerClient) {
        if let Err(err) = client.shutdown().await {
            tracing::warn!(error = %err, "POST /shutdown failed; stopping the host process");
            #[cfg(unix)]
            if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
                // SIGTERM is the host's other clean-stop path.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) => tracing::info!(%status, "host stopped"),
            _ => {
                tracing::warn!(
                    "host did not stop within {}s: killing it",
                    STOP_TIMEOUT.as_secs()
                );
                let _ = self.child.kill().await;
            }
        }
    }
}
