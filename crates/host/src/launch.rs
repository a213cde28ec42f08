//! Starting and stopping one target by kind: the in-process memory server on its port, a
//! supervised child (external HTTP server or stdio bridge), or nothing at all for a remote `url`
//! target, which is only probed for reachability.

use std::sync::Arc;
use std::time::Duration;

use msm_core::{LockFile, LockInfo, StateDir, TargetConfig, TargetKind};
use tokio_util::sync::CancellationToken;

use crate::mcp_http::{self, BindError};
use crate::security::Guard;
use crate::sessions::SessionRegistry;

/// Everything a launch needs from the host.
#[derive(Clone)]
pub(crate) struct LaunchContext {
    pub state_dir: StateDir,
    pub guard: Arc<Guard>,
    pub sessions: Arc<SessionRegistry>,
    pub memory: crate::MemoryBackend,
}

/// A started target; dropping it without `stop` leaks nothing but the graceful close.
pub(crate) enum Running {
    /// An axum server of ours on the target's port (the memory target).
    Served {
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        _lock: LockFile,
    },
}

impl Running {
    /// The process that serves the target (ours for in-process servers).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Running::Served { .. } => Some(std::process::id()),
        }
    }

    pub async fn stop(self) {
        match self {
            Running::Served { stop, task, _lock } => {
                stop.cancel();
                mcp_http::join_server(task, Duration::from_secs(3)).await;
                drop(_lock);
            }
        }
    }
}

/// Why a target did not start; the message is shown in `/status` as its last error.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("{0}")]
    Lock(#[from] msm_core::LockError),
    #[error("a `url` target is not started by the host; it is only reached")]
    Remote,
    #[error("target has no port")]
    NoPort,
    #[error("{0}")]
    Unsupported(String),
}

pub(crate) async fn launch(
    ctx: &LaunchContext,
    target: &TargetConfig,
) -> Result<Running, LaunchError> {
    match &target.kind {
        TargetKind::Builtin(msm_core::config::Builtin::Memory) => launch_memory(ctx, target),
        TargetKind::Process { .. } => Err(LaunchError::Unsupported(format!(
            "hosting `{}` targets is not available in this build yet",
            target.transport.as_str()
        ))),
        TargetKind::Remote { .. } => Err(LaunchError::Remote),
    }
}

fn launch_memory(ctx: &LaunchContext, target: &TargetConfig) -> Result<Running, LaunchError> {
    let port = target.port.ok_or(LaunchError::NoPort)?;
    let lock = LockFile::acquire(
        &ctx.state_dir.lock_path(&target.name),
        LockInfo::for_this_process(port, target.transport.as_str()),
    )?;
    let listener = mcp_http::bind_loopback(port)?;
    let stop = CancellationToken::new();
    let built = mcp_http::mcp_router(
        &target.name,
        crate::memory_handler_factory(ctx.memory.clone()),
        ctx.guard.clone(),
        ctx.sessions.clone(),
        stop.child_token(),
    );
    let task = mcp_http::spawn_server(listener, built.router, stop.clone());
    tracing::info!(target_name = %target.name, port, "serving at http://127.0.0.1:{port}/mcp");
    Ok(Running::Served {
        stop,
        task,
        _lock: lock,
    })
}

/// Whether a remote target answers at all (any HTTP status counts: it is there).
pub(crate) async fn probe_remote(url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .map_err(|e| e.to_string())?;
    match client.get(url).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("unreachable: {e}")),
    }
}
