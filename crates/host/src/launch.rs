//! Starting and stopping one target by kind: the in-process memory server on its port, a
//! supervised child (external HTTP server or stdio bridge), the guarded front of a remote `url`
//! target with a port, or nothing at all for a remote without one, which is only probed for
//! reachability.

use std::sync::Arc;
use std::sync::atomic::AtomicU16;
use std::time::Duration;

use msm_core::{LockFile, LockInfo, StateDir, TargetConfig, TargetKind, Transport};
use tokio_util::sync::CancellationToken;

use crate::http_front::{self, HttpFront};
use crate::mcp_http::{self, BindError};
use crate::security::Guard;
use crate::sessions::SessionRegistry;
use crate::stdio_bridge::{self, BridgeSpec, StdioBridge};
use crate::supervisor::{
    ChildEvent, ChildIo, ChildSpec, ChildStatus, Readiness, SupervisedChild, SupervisorError,
};
use tokio::sync::{broadcast, watch};

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
    /// A stdio child (shared, or one per session) served over streamable HTTP by the bridge on
    /// the target's port.
    Bridged {
        bridge: Arc<StdioBridge>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
        /// The shared child's status changes, until the host takes them (`status_source`).
        events: Option<broadcast::Receiver<ChildEvent>>,
        follower: Option<tokio::task::JoinHandle<()>>,
        _lock: LockFile,
    },
    /// A child process that serves HTTP: on the target's port itself, or (`{port}`) on an
    /// internal port behind our guarded front on the target's port.
    Supervised {
        child: Arc<SupervisedChild>,
        /// The front server (`{port}` targets): its stop token and task.
        front: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
        /// Mirrors the child's status into the target's record (set by the host).
        follower: Option<tokio::task::JoinHandle<()>>,
        _lock: LockFile,
    },
}

impl Running {
    /// The process that serves the target (ours for in-process servers).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Running::Served { .. } => Some(std::process::id()),
            Running::Supervised { child, .. } => child.snapshot().pid,
            Running::Bridged { bridge, .. } => bridge.snapshot().pid,
        }
    }

    /// The bridge of an on-demand stdio target (its children start with sessions).
    pub fn on_demand_bridge(&self) -> Option<Arc<StdioBridge>> {
        match self {
            Running::Bridged { bridge, .. } if bridge.starts_on_demand() => Some(bridge.clone()),
            _ => None,
        }
    }

    /// Where the child's later state changes (crash, restart, crash loop) come from.
    pub fn status_source(&mut self) -> Option<StatusSource> {
        match self {
            Running::Supervised { child, .. } => Some(StatusSource::Watch(child.watch())),
            Running::Bridged { events, .. } => events.take().map(StatusSource::Events),
            Running::Served { .. } => None,
        }
    }

    /// Asks a supervised child to start again (it may have given up in a crash loop).
    pub async fn restart_child(&self) {
        match self {
            Running::Supervised { child, .. } => child.restart().await,
            Running::Bridged { bridge, .. } => bridge.restart().await,
            Running::Served { .. } => {}
        }
    }

    pub fn set_follower(&mut self, task: tokio::task::JoinHandle<()>) {
        match self {
            Running::Supervised { follower, .. } | Running::Bridged { follower, .. } => {
                *follower = Some(task);
            }
            Running::Served { .. } => {}
        }
    }

    pub async fn stop(self) {
        match self {
            Running::Served { stop, task, _lock } => {
                stop.cancel();
                mcp_http::join_server(task, Duration::from_secs(3)).await;
                drop(_lock);
            }
            Running::Supervised {
                child,
                front,
                follower,
                _lock,
            } => {
                if let Some(follower) = follower {
                    follower.abort();
                }
                if let Some((stop, task)) = front {
                    stop.cancel();
                    mcp_http::join_server(task, Duration::from_secs(3)).await;
                }
                child.stop().await;
                drop(_lock);
            }
            Running::Bridged {
                bridge,
                stop,
                task,
                follower,
                _lock,
                ..
            } => {
                if let Some(follower) = follower {
                    follower.abort();
                }
                stop.cancel();
                bridge.stop().await;
                mcp_http::join_server(task, Duration::from_secs(3)).await;
                drop(_lock);
            }
        }
    }
}

/// A supervised child's status changes, from either kind of child.
pub(crate) enum StatusSource {
    Watch(watch::Receiver<ChildStatus>),
    Events(broadcast::Receiver<ChildEvent>),
}

impl StatusSource {
    /// The next status; `None` once the child is gone.
    pub async fn next(&mut self) -> Option<ChildStatus> {
        match self {
            StatusSource::Watch(rx) => {
                rx.changed().await.ok()?;
                Some(rx.borrow_and_update().clone())
            }
            StatusSource::Events(rx) => loop {
                match rx.recv().await {
                    Ok(event) => return Some(event.status),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
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
    #[error("a `url` target without a `port` is not served by the host; clients reach it directly")]
    Remote,
    #[error(transparent)]
    RemoteFront(#[from] http_front::RemoteFrontError),
    #[error("target has no port")]
    NoPort,
    /// The child did not become ready.
    #[error(transparent)]
    Child(#[from] SupervisorError),
}

impl LaunchError {
    /// The child kept dying (the target's state is then crash loop rather than failed).
    pub fn is_crash_loop(&self) -> bool {
        matches!(self, LaunchError::Child(SupervisorError::CrashLoop { .. }))
    }
}

pub(crate) async fn launch(
    ctx: &LaunchContext,
    target: &TargetConfig,
) -> Result<Running, LaunchError> {
    match &target.kind {
        TargetKind::Builtin(msm_core::config::Builtin::Memory) => launch_memory(ctx, target),
        TargetKind::Process { .. } if target.transport == Transport::Stdio => {
            launch_stdio_bridge(ctx, target).await
        }
        TargetKind::Process { .. } => launch_http_child(ctx, target).await,
        TargetKind::Remote { .. } if target.port.is_some() => launch_remote_front(ctx, target),
        TargetKind::Remote { .. } => Err(LaunchError::Remote),
    }
}

fn launch_memory(ctx: &LaunchContext, target: &TargetConfig) -> Result<Running, LaunchError> {
    let (port, lock) = claim_target_lock(ctx, target)?;
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

/// Serves the target's port as the guarded front of its remote URL: every window's requests
/// share one pooled client (and its TLS connections), and the proxy needs no TLS.
fn launch_remote_front(ctx: &LaunchContext, target: &TargetConfig) -> Result<Running, LaunchError> {
    let TargetKind::Remote {
        url,
        headers,
        ca_file,
    } = &target.kind
    else {
        return Err(LaunchError::Remote);
    };
    let front = Arc::new(HttpFront::remote(
        url,
        headers,
        ca_file.as_deref(),
        target.port.unwrap_or_default(),
        target.transport,
    )?);
    let (port, lock) = claim_target_lock(ctx, target)?;
    let listener = mcp_http::bind_loopback(port)?;
    let closer_front = front.clone();
    ctx.sessions.set_closer(
        &target.name,
        Arc::new(move |id: String| closer_front.close_session(id)),
    );
    let (stop, task) = serve_guarded(ctx, &target.name, listener, http_front::router(front));
    tracing::info!(target_name = %target.name, port, "fronting {url} at http://127.0.0.1:{port}");
    Ok(Running::Served {
        stop,
        task,
        _lock: lock,
    })
}

/// Serves `app` on `listener` behind the guard and session tracking every target port gets;
/// the token stops it.
fn serve_guarded(
    ctx: &LaunchContext,
    name: &str,
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let router =
        mcp_http::guarded_target_router(name, app, ctx.guard.clone(), ctx.sessions.clone());
    let stop = CancellationToken::new();
    let task = mcp_http::spawn_server(listener, router, stop.clone());
    (stop, task)
}

/// The target's port and its `NAME.lock`, which this host holds for as long as it serves it.
fn claim_target_lock(
    ctx: &LaunchContext,
    target: &TargetConfig,
) -> Result<(u16, LockFile), LaunchError> {
    let port = target.port.ok_or(LaunchError::NoPort)?;
    let lock = LockFile::acquire(
        &ctx.state_dir.lock_path(&target.name),
        LockInfo::for_this_process(port, target.transport.as_str()),
    )?;
    Ok((port, lock))
}

/// Serves a stdio server over streamable HTTP on the target's port through the stdio bridge,
/// behind the same guard and session tracking as every target; waits for the shared child.
async fn launch_stdio_bridge(
    ctx: &LaunchContext,
    target: &TargetConfig,
) -> Result<Running, LaunchError> {
    let (port, lock) = claim_target_lock(ctx, target)?;
    let listener = mcp_http::bind_loopback(port)?;
    let spec = BridgeSpec::from_target(target, ctx.state_dir.log_path(&target.name))
        .ok_or(LaunchError::NoPort)?;
    let ready_timeout = spec.ready_timeout + Duration::from_secs(5);
    let (events_tx, events) = broadcast::channel(64);
    let bridge = StdioBridge::new(spec, Some(events_tx));
    if let Err(error) = bridge.wait_ready(ready_timeout).await {
        bridge.stop().await;
        return Err(LaunchError::Child(error));
    }
    ctx.sessions
        .set_closer(&target.name, bridge.session_closer());
    let (stop, task) = serve_guarded(
        ctx,
        &target.name,
        listener,
        stdio_bridge::router(bridge.clone()),
    );
    tracing::info!(target_name = %target.name, port, "serving a stdio server at http://127.0.0.1:{port}/mcp");
    Ok(Running::Bridged {
        bridge,
        stop,
        task,
        events: Some(events),
        follower: None,
        _lock: lock,
    })
}

/// Whether the host guards the port a client uses for this target (loopback, Origin, token):
/// always for what it serves itself, for an external HTTP server only with `{port}`; `None`
/// for a remote target, which the host does not serve.
pub(crate) fn is_guarded(target: &TargetConfig) -> Option<bool> {
    match &target.kind {
        TargetKind::Builtin(_) => Some(true),
        TargetKind::Process { .. } if target.transport == Transport::Stdio => Some(true),
        kind @ TargetKind::Process { .. } => Some(kind.uses_port_placeholder()),
        TargetKind::Remote { .. } if target.port.is_some() => Some(true),
        TargetKind::Remote { .. } => None,
    }
}

/// Warns once per target name that an external HTTP server binds its port unguarded.
fn warn_unguarded_once(target: &TargetConfig) {
    static WARNED: std::sync::OnceLock<parking_lot::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let first = WARNED
        .get_or_init(Default::default)
        .lock()
        .insert(target.name.clone());
    if first {
        tracing::warn!(
            target_name = %target.name,
            "`{}` binds its port itself, outside the host's token and Origin checks; put \"{}\" in its args or env (e.g. \"--port\", \"{}\") so the host starts it on an internal port and guards port {}",
            target.name,
            msm_core::config::PORT_PLACEHOLDER,
            msm_core::config::PORT_PLACEHOLDER,
            target.port.unwrap_or_default(),
        );
    }
}

/// Starts an external server that speaks HTTP itself, and waits until it answers MCP. With
/// `{port}` in its args/env it gets an internal port and the target's port is our guarded
/// front; without, it binds the target's port itself, which is checked first: a foreign server
/// already on it would otherwise pass the readiness probe.
async fn launch_http_child(
    ctx: &LaunchContext,
    target: &TargetConfig,
) -> Result<Running, LaunchError> {
    let (port, lock) = claim_target_lock(ctx, target)?;
    let guarded = target.kind.uses_port_placeholder();
    let mut front_listener = Some(mcp_http::bind_loopback(port)?);
    let mut spec = ChildSpec::from_target(target, ctx.state_dir.log_path(&target.name))
        .ok_or(LaunchError::NoPort)?;
    let readiness = if guarded {
        let internal_port = Arc::new(AtomicU16::new(0));
        spec.internal_port = Some(internal_port.clone());
        Readiness::HttpInternal {
            port: internal_port,
            transport: target.transport,
        }
    } else {
        front_listener = None;
        warn_unguarded_once(target);
        Readiness::for_target(target)
    };
    let internal_port = spec.internal_port.clone();
    let ready_timeout = spec.policy.ready_timeout + Duration::from_secs(5);
    let child = Arc::new(SupervisedChild::spawn(
        spec,
        readiness,
        ChildIo::Logged,
        None,
    ));
    if let Err(error) = child.wait_ready(ready_timeout).await {
        child.stop().await;
        return Err(LaunchError::Child(error));
    }
    let front = match internal_port.zip(front_listener) {
        Some((internal_port, front_listener)) => {
            let front = Arc::new(HttpFront::new(internal_port, port, target.transport));
            let closer_front = front.clone();
            ctx.sessions.set_closer(
                &target.name,
                Arc::new(move |id: String| closer_front.close_session(id)),
            );
            let (stop, task) = serve_guarded(
                ctx,
                &target.name,
                front_listener,
                http_front::router(front.clone()),
            );
            tracing::info!(
                target_name = %target.name,
                port,
                internal_port = front.internal_port(),
                "external server ready, guarded at http://127.0.0.1:{port}"
            );
            Some((stop, task))
        }
        None => {
            tracing::info!(target_name = %target.name, port, "external server ready (unguarded)");
            None
        }
    };
    Ok(Running::Supervised {
        child,
        front,
        follower: None,
        _lock: lock,
    })
}

/// Whether a remote target answers at all (any HTTP status counts: it is there).
pub(crate) async fn probe_remote(url: &str) -> Result<(), RemoteError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .map_err(RemoteError::Client)?;
    match client.get(url).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(RemoteError::Unreachable(e)),
    }
}

/// Why a remote (`url`) target does not answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RemoteError {
    #[error("{0}")]
    Client(reqwest::Error),
    #[error("unreachable: {0}")]
    Unreachable(reqwest::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The supervisor's error is kept whole: its text, and whether the child kept crashing.
    #[test]
    fn child_errors_keep_the_supervisor_error() {
        let crash = LaunchError::from(SupervisorError::CrashLoop {
            name: "x".into(),
            last: "exited with code 1".into(),
            log: "x.log".into(),
        });
        assert!(crash.is_crash_loop());
        assert_eq!(
            crash.to_string(),
            "`x` keeps crashing (crash loop): exited with code 1; see x.log"
        );
        let stopped = LaunchError::from(SupervisorError::Stopped { name: "x".into() });
        assert!(!stopped.is_crash_loop());
        assert!(matches!(
            stopped,
            LaunchError::Child(SupervisorError::Stopped { .. })
        ));
    }
}
