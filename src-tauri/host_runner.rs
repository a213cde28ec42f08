//! This user's one host, in the tray app's process (DESIGN.md, "One host per user"): first a
//! headless host that a proxy may have started is asked to hand over (`POST /shutdown`) and
//! its ports awaited, then the daemons and the manager API start through `msm_host::Host`.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use msm_core::{Config, LockFile, StateDir};
use msm_host::{Host, HostError, HostHandle, HostOptions};

use crate::manager_client::ManagerClient;

/// How long a headless host gets to hand over its ports.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the tray could not take the ports over from a running host.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("the host running as pid {pid} did not hand over port {port} within {}s", HANDOVER_TIMEOUT.as_secs())]
    TimedOut { pid: u32, port: u16 },
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
) -> Result<bool, HandoverError> {
    let lock_path = state.lock_path(msm_core::MANAGER_NAME);
    let Some(owner) = LockFile::read_live(&lock_path) else {
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
    loop {
        let gone = LockFile::read_live(&lock_path).is_none_or(|info| info.pid != owner.pid);
        let busy_port = ports.iter().copied().find(|&p| !port_is_free(p));
        match (gone, busy_port) {
            (true, None) => {
                tracing::info!(pid = owner.pid, "the headless host handed over");
                return Ok(true);
            }
            _ if Instant::now() >= deadline => {
                let port = busy_port.unwrap_or(owner.port);
                return Err(HandoverError::TimedOut {
                    pid: owner.pid,
                    port,
                });
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Starts the daemons and the manager API in this process; returns once the manager answers.
pub async fn start_host(state_dir: &StateDir) -> Result<HostHandle, HostError> {
    Host::start(HostOptions::new(state_dir.clone())).await
}
