//! The stdio bridge: serves a stdio-only MCP server (a `transport = "stdio"` target) over
//! streamable HTTP at `/mcp`, so that every session reaches it through the host.
//!
//! - `share = "shared"` (default): one child for every session. The child is initialized once
//!   (with the first session's initialize params) and each later session's `initialize` is
//!   answered from the cached result, with a fresh `Mcp-Session-Id`. Request ids and progress
//!   tokens are rewritten per session, so two sessions' ids never collide; answers go back to
//!   the session that asked. Server-to-client requests (sampling, elicitation, roots) go to the
//!   session whose request caused them (by progress token, else the most recent session with a
//!   request in flight) and its answer goes back with the child's own id. Resource updates go
//!   to the sessions that subscribed; other notifications (list_changed, logging) to all.
//! - `share = "per-session"`: a child per session, spawned on its `initialize`, reaped when
//!   the session is DELETEd or expires ([`StdioBridge::close_session`]).
//!
//! A child that dies is restarted by its [`SupervisedChild`]; the bridge initializes the new
//! one from the cached handshake, sessions carry on, and requests that were in flight get a
//! JSON-RPC error saying the server restarted.
//!
//! Stateless clients (revision 2026-07-28: no `initialize`, the client context in each
//! request's `_meta`, `server/discover`) are served too, request by request (module `stateless`
//! has the wire details): by the shared child (initialized with the first client's context if
//! no session came first), each request under an ephemeral routing key, its progress and log
//! messages on its own response, and the child's questions (sampling, elicitation, roots)
//! turned into `input_required` answers that the client retries with its input;
//! `subscriptions/listen` streams get the child's change notifications they asked for. In
//! per-session mode, where a child belongs to a session, stateless requests go to one extra
//! child kept for all stateless clients, stopped after [`STATELESS_CHILD_IDLE`] without
//! requests or listeners (a child per request would start a process for every call). No
//! session is opened for them; the host's session registry counts a stateless client by its
//! `Mcp-Proxy-Instance` (without one: by client and project), as for the memory target.
//!
//! HTTP (streamable HTTP, session revisions 2024-11-05 to 2025-11-25): `POST` answers a request
//! as plain JSON when its answer comes first (within a second) or the client accepts only JSON,
//! else as an SSE stream (related messages such as progress or sampling requests, then the
//! answer); notifications and responses get 202. `GET` opens the session's standalone SSE
//! stream (405 without a session). `DELETE` ends the session. An unknown session is 404, an
//! unsupported `MCP-Protocol-Version` is 400. The host mounts [`router`] behind its security
//! and session-tracking layers (`mcp_http::guarded_target_router`).

mod stateless;
mod upstream;

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::Stream;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use msm_core::config::PROJECT_PLACEHOLDER;
use msm_core::{ShareMode, TargetConfig, headers};

use crate::status::TargetState;
use crate::supervisor::{ChildEvent, ChildIo, ChildSpec, ChildStatus, Readiness, SupervisedChild};
pub use stateless::STATELESS_PROTOCOL_VERSION;
use upstream::{
    INTERNAL_ERROR, INVALID_REQUEST, Outgoing, SessionId, Upstream, UpstreamError, error_response,
};

/// Per-session mode: how long the child kept for stateless clients lives without a request.
pub const STATELESS_CHILD_IDLE: Duration = Duration::from_secs(300);

/// The protocol revisions a session may name in `MCP-Protocol-Version`.
pub const SUPPORTED_PROTOCOL_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// What the bridge runs and how it shares it.
#[derive(Debug, Clone)]
pub struct BridgeSpec {
    pub name: String,
    pub child: ChildSpec,
    pub share: ShareMode,
    /// Children start with their first session, not with the host, and stop when idle
    /// ([`TargetConfig::starts_on_demand`]: on-demand targets, and every per-project one).
    pub on_demand: bool,
    /// How long an on-demand or per-project child may go unused before it is stopped.
    pub idle_stop: Duration,
    /// How long a request (or an initialize) waits for the child to be up and initialized.
    pub ready_timeout: Duration,
}

impl BridgeSpec {
    /// The bridge of a `transport = "stdio"` command target; `None` for other targets.
    pub fn from_target(target: &TargetConfig, log_path: std::path::PathBuf) -> Option<BridgeSpec> {
        if target.transport != msm_core::Transport::Stdio {
            return None;
        }
        Some(BridgeSpec {
            name: target.name.clone(),
            child: ChildSpec::from_target(target, log_path)?,
            share: target.share,
            on_demand: target.starts_on_demand(),
            idle_stop: Duration::from_secs(target.idle_stop_secs),
            ready_timeout: Duration::from_secs(60),
        })
    }
}

/// Why the bridge is not ready.
pub type BridgeError = crate::supervisor::SupervisorError;

/// Which lazily started child a request goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PoolKey {
    /// The one child of an on-demand shared target.
    Shared,
    /// A per-project target's child for this (canonical) project directory.
    Project(PathBuf),
    /// Per-session mode: the child kept for stateless clients.
    Stateless,
}

/// A child started on demand, and when it was last used.
struct PoolSlot {
    upstream: Arc<Upstream>,
    last_used: Instant,
}

/// A stdio server served over streamable HTTP. Create with [`StdioBridge::new`], serve with
/// [`router`], stop with [`StdioBridge::stop`].
pub struct StdioBridge {
    spec: BridgeSpec,
    /// Shared mode started with the host: the one child.
    shared: Option<Arc<Upstream>>,
    sessions: Mutex<HashMap<SessionId, Arc<Upstream>>>,
    /// Children started by the first request that needs them and stopped once unused: an
    /// on-demand shared child, per-project children, per-session mode's stateless child.
    pool: Mutex<HashMap<PoolKey, PoolSlot>>,
    /// Per-session mode: how long the stateless clients' child may idle, in milliseconds.
    stateless_idle_ms: AtomicU64,
    /// How long any other pooled child may idle, in milliseconds.
    idle_stop_ms: AtomicU64,
    /// Set by `stop`: no new sessions.
    stopped: AtomicBool,
}

impl StdioBridge {
    /// Starts the bridge. A shared target started with the host spawns its child now (the
    /// first session initializes it); other children are spawned by the sessions that need
    /// them. `events` gets that eager shared child's status changes (the others are not
    /// reported one by one).
    pub fn new(
        spec: BridgeSpec,
        events: Option<broadcast::Sender<ChildEvent>>,
    ) -> Arc<StdioBridge> {
        let shared = (spec.share == ShareMode::Shared && !spec.on_demand)
            .then(|| spawn_upstream(&spec.child, &spec, events.clone()));
        Arc::new(StdioBridge {
            shared,
            sessions: Mutex::new(HashMap::new()),
            pool: Mutex::new(HashMap::new()),
            stateless_idle_ms: AtomicU64::new(STATELESS_CHILD_IDLE.as_millis() as u64),
            idle_stop_ms: AtomicU64::new(spec.idle_stop.as_millis() as u64),
            stopped: AtomicBool::new(false),
            spec,
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn share_mode(&self) -> ShareMode {
        self.spec.share
    }

    /// Whether children start with sessions (no child started with the host).
    pub fn starts_on_demand(&self) -> bool {
        self.shared.is_none()
    }

    /// A shared child started with the host: waits until it runs. Otherwise ready at once
    /// (children start with their sessions).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), BridgeError> {
        match &self.shared {
            Some(upstream) => upstream.child.wait_ready(timeout).await,
            None => Ok(()),
        }
    }

    /// The status for `/status`: the shared child's, or a summary of the children running now
    /// (pid of the only one if there is exactly one, restarts summed). An on-demand target
    /// with no child running is idle, not stopped: the next session starts it.
    pub fn snapshot(&self) -> ChildStatus {
        if let Some(upstream) = &self.shared {
            return upstream.child.snapshot();
        }
        let children: Vec<ChildStatus> = self
            .lazy_children()
            .iter()
            .map(|u| u.child.snapshot())
            .collect();
        let state = if self.stopped.load(Ordering::Relaxed) {
            TargetState::Stopped
        } else if children.is_empty() && self.spec.on_demand {
            TargetState::Idle
        } else {
            TargetState::Running
        };
        ChildStatus {
            name: self.spec.name.clone(),
            state,
            pid: match children.as_slice() {
                [only] => only.pid,
                _ => None,
            },
            restarts: children.iter().map(|c| c.restarts).sum(),
            last_error: children.iter().find_map(|c| c.last_error.clone()),
            log_path: self.spec.child.log_path.clone(),
        }
    }

    /// The pids of the running children.
    pub fn child_pids(&self) -> Vec<u32> {
        match &self.shared {
            Some(upstream) => upstream.child.snapshot().pid.into_iter().collect(),
            None => self
                .lazy_children()
                .iter()
                .filter_map(|u| u.child.snapshot().pid)
                .collect(),
        }
    }

    /// Every child but an eager shared one: per-session children and the pooled ones.
    fn lazy_children(&self) -> Vec<Arc<Upstream>> {
        let mut children: Vec<Arc<Upstream>> = Vec::new();
        if self.spec.share == ShareMode::PerSession {
            children.extend(self.sessions.lock().values().cloned());
        }
        children.extend(self.pool.lock().values().map(|slot| slot.upstream.clone()));
        children
    }

    /// The child that serves a stateless request of `project`: the shared one, the project's,
    /// or in per-session mode the one kept for stateless clients (spawned now if needed,
    /// stopped once idle).
    fn stateless_upstream(
        self: &Arc<Self>,
        project: Option<&Path>,
    ) -> Result<Arc<Upstream>, UpstreamError> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(UpstreamError::Stopped {
                name: self.spec.name.clone(),
            });
        }
        if let Some(upstream) = &self.shared {
            return Ok(upstream.clone());
        }
        match self.spec.share {
            ShareMode::PerSession => self.pooled(PoolKey::Stateless, project),
            ShareMode::Shared | ShareMode::PerProject => self
                .session_upstream_key(project)
                .and_then(|key| self.pooled(key, project)),
        }
    }

    /// Which pooled child a session of `project` uses (shared or per-project mode).
    fn session_upstream_key(&self, project: Option<&Path>) -> Result<PoolKey, UpstreamError> {
        match self.spec.share {
            ShareMode::PerProject => match project {
                Some(dir) => Ok(PoolKey::Project(dir.to_owned())),
                None => Err(UpstreamError::NoProject {
                    name: self.spec.name.clone(),
                }),
            },
            _ => Ok(PoolKey::Shared),
        }
    }

    /// The pooled child for `key`, spawned now if none runs; marks it used.
    fn pooled(
        self: &Arc<Self>,
        key: PoolKey,
        project: Option<&Path>,
    ) -> Result<Arc<Upstream>, UpstreamError> {
        let mut pool = self.pool.lock();
        if let Some(slot) = pool.get_mut(&key) {
            slot.last_used = Instant::now();
            return Ok(slot.upstream.clone());
        }
        let child = child_spec_for(&self.spec.child, project)?;
        let upstream = spawn_upstream(&child, &self.spec, None);
        pool.insert(
            key.clone(),
            PoolSlot {
                upstream: upstream.clone(),
                last_used: Instant::now(),
            },
        );
        drop(pool);
        tracing::info!(target_name = %self.spec.name, child = ?key, "started a child on demand");
        self.stop_when_idle(key);
        Ok(upstream)
    }

    /// Watches the pooled child `key` and stops it once nothing has used it for the idle time:
    /// no session on it, no request in flight, no listener.
    fn stop_when_idle(self: &Arc<Self>, key: PoolKey) {
        let bridge = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let idle = match bridge.upgrade() {
                    Some(bridge) => bridge.idle_time(&key),
                    None => return,
                };
                let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
                tokio::time::sleep(tick).await;
                let Some(bridge) = bridge.upgrade() else {
                    return;
                };
                let idle_child = {
                    let mut pool = bridge.pool.lock();
                    let Some(slot) = pool.get(&key) else {
                        return;
                    };
                    let in_use = slot.last_used.elapsed() < idle
                        || slot.upstream.pending_requests() > 0
                        || slot.upstream.has_listeners()
                        || bridge
                            .sessions
                            .lock()
                            .values()
                            .any(|u| Arc::ptr_eq(u, &slot.upstream));
                    if in_use {
                        None
                    } else {
                        pool.remove(&key).map(|slot| slot.upstream)
                    }
                };
                if let Some(child) = idle_child {
                    tracing::info!(target_name = %bridge.spec.name, child = ?key, "stopping an idle child; the next session starts it again");
                    child.stop().await;
                    return;
                }
            }
        });
    }

    fn idle_time(&self, key: &PoolKey) -> Duration {
        let ms = match key {
            PoolKey::Stateless => &self.stateless_idle_ms,
            _ => &self.idle_stop_ms,
        };
        Duration::from_millis(ms.load(Ordering::Relaxed))
    }

    /// Requests in flight to the shared child.
    #[cfg(test)]
    fn pending_requests(&self) -> usize {
        self.shared.as_ref().map_or(0, |u| u.pending_requests())
    }

    /// Per-session mode: the pid of the stateless clients' child, if it runs.
    #[cfg(test)]
    fn stateless_child_pid(&self) -> Option<u32> {
        self.pool
            .lock()
            .get(&PoolKey::Stateless)
            .and_then(|slot| slot.upstream.child.snapshot().pid)
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Restarts the shared child (sessions re-attach) or every running child.
    pub async fn restart(&self) {
        match &self.shared {
            Some(upstream) => upstream.child.restart().await,
            None => {
                for child in self.lazy_children() {
                    child.child.restart().await;
                }
            }
        }
    }

    /// Ends every session and stops every child (SIGTERM, then SIGKILL after the grace).
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let mut children: Vec<Arc<Upstream>> = {
            let mut sessions = self.sessions.lock();
            let all = sessions.drain().map(|(_, u)| u).collect::<Vec<_>>();
            if self.spec.share == ShareMode::PerSession {
                all
            } else {
                Vec::new()
            }
        };
        children.extend(self.pool.lock().drain().map(|(_, slot)| slot.upstream));
        if let Some(upstream) = &self.shared {
            children.push(upstream.clone());
        }
        futures::future::join_all(children.iter().map(|u| u.stop())).await;
    }

    /// Ends a session (DELETE, or idle expiry through the host's session registry): its
    /// streams close, its subscriptions go, and in per-session mode its child is stopped.
    /// A pooled child it used counts as used now, so its idle time starts afresh.
    pub async fn close_session(&self, id: &str) -> bool {
        let Some(upstream) = self.sessions.lock().remove(id) else {
            return false;
        };
        upstream.remove_session(id);
        if self.spec.share == ShareMode::PerSession {
            upstream.stop().await;
        } else if let Some(slot) = self
            .pool
            .lock()
            .values_mut()
            .find(|slot| Arc::ptr_eq(&slot.upstream, &upstream))
        {
            slot.last_used = Instant::now();
        }
        true
    }

    /// A closer for `SessionRegistry::set_closer`: closes the session on its own task.
    pub fn session_closer(self: &Arc<Self>) -> crate::sessions::SessionCloser {
        let bridge = Arc::downgrade(self);
        Arc::new(move |id: String| {
            if let Some(bridge) = bridge.upgrade() {
                tokio::spawn(async move {
                    bridge.close_session(&id).await;
                });
            }
        })
    }

    fn session(&self, id: &str) -> Option<(SessionId, Arc<Upstream>)> {
        let sessions = self.sessions.lock();
        sessions
            .get_key_value(id)
            .map(|(k, v)| (k.clone(), v.clone()))
    }

    /// Opens a session of `project`: initializes its (shared, pooled or new) child and answers
    /// from its result.
    async fn initialize(
        self: &Arc<Self>,
        request: &Value,
        project: Option<&Path>,
    ) -> Result<(SessionId, Value), Value> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let failed = |message: &str| error_response(&id, INTERNAL_ERROR, message);
        if self.stopped.load(Ordering::Relaxed) {
            return Err(failed(&format!(
                "the server `{}` is stopped",
                self.spec.name
            )));
        }
        let params = request.get("params").cloned().unwrap_or(json!({}));
        let per_session = self.spec.share == ShareMode::PerSession;
        let upstream = match &self.shared {
            Some(upstream) => upstream.clone(),
            // Per-session children do not report to the host one by one.
            None if per_session => {
                let child = child_spec_for(&self.spec.child, project)
                    .map_err(|e| failed(&e.to_string()))?;
                spawn_upstream(&child, &self.spec, None)
            }
            None => self
                .session_upstream_key(project)
                .and_then(|key| self.pooled(key, project))
                .map_err(|e| failed(&e.to_string()))?,
        };
        let result = upstream.initialize(&params, self.spec.ready_timeout).await;
        match result {
            Ok(result) => {
                let session: SessionId = Arc::from(uuid::Uuid::new_v4().simple().to_string());
                {
                    // `stop` may have drained the map while the child initialized: checked
                    // under the lock `stop` drains with, so no session outlives the bridge.
                    let mut sessions = self.sessions.lock();
                    if !self.stopped.load(Ordering::SeqCst) {
                        upstream.add_session(session.clone());
                        sessions.insert(session.clone(), upstream.clone());
                    } else {
                        drop(sessions);
                        if self.shared.is_none() {
                            upstream.stop().await;
                        }
                        return Err(error_response(
                            &id,
                            INTERNAL_ERROR,
                            &UpstreamError::Stopped {
                                name: self.spec.name.clone(),
                            }
                            .to_string(),
                        ));
                    }
                }
                Ok((
                    session,
                    json!({"jsonrpc": "2.0", "id": id, "result": result}),
                ))
            }
            Err(message) => {
                if per_session {
                    upstream.stop().await;
                }
                Err(failed(&message.to_string()))
            }
        }
    }
}

/// The session's project directory from `Mcp-Project-Path`: absolute, existing, canonical (so
/// that two spellings of one directory share a child, and `..` cannot name another one).
fn session_project(headers: &HeaderMap) -> Result<Option<PathBuf>, String> {
    let Some(value) = headers.get(headers::PROJECT_PATH) else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(value.as_bytes());
    let path = Path::new(text.as_ref());
    if !path.is_absolute() {
        return Err(format!(
            "the project directory `{text}` is not an absolute path"
        ));
    }
    match std::fs::canonicalize(path) {
        Ok(dir) if dir.is_dir() => Ok(Some(dir)),
        Ok(_) => Err(format!("the project path `{text}` is not a directory")),
        Err(e) => Err(format!(
            "the project directory `{text}` cannot be used: {e}"
        )),
    }
}

/// `child` with `{project}` in its args, env values and cwd replaced by `project`; refused
/// when the spec names the project and the session gave none.
fn child_spec_for(child: &ChildSpec, project: Option<&Path>) -> Result<ChildSpec, UpstreamError> {
    let names_project = child
        .args
        .iter()
        .chain(child.env.values())
        .any(|v| v.contains(PROJECT_PLACEHOLDER))
        || child
            .cwd
            .as_ref()
            .is_some_and(|c| c.to_string_lossy().contains(PROJECT_PLACEHOLDER));
    if !names_project {
        return Ok(child.clone());
    }
    let Some(project) = project.and_then(Path::to_str) else {
        return Err(UpstreamError::NoProject {
            name: child.name.clone(),
        });
    };
    let fill = |v: &String| v.replace(PROJECT_PLACEHOLDER, project);
    let mut filled = child.clone();
    filled.args = child.args.iter().map(fill).collect();
    filled.env = child
        .env
        .iter()
        .map(|(k, v)| (k.clone(), fill(v)))
        .collect();
    filled.cwd = child
        .cwd
        .as_ref()
        .map(|c| PathBuf::from(c.to_string_lossy().replace(PROJECT_PLACEHOLDER, project)));
    Ok(filled)
}

fn spawn_upstream(
    child: &ChildSpec,
    spec: &BridgeSpec,
    events: Option<broadcast::Sender<ChildEvent>>,
) -> Arc<Upstream> {
    let (pipes_tx, pipes_rx) = mpsc::unbounded_channel();
    let child = SupervisedChild::spawn(
        child.clone(),
        Readiness::Spawned,
        ChildIo::Piped(pipes_tx),
        events,
    );
    Upstream::new(spec.name.clone(), child, pipes_rx, spec.ready_timeout)
}

/// The bridge's routes: `POST`/`GET`/`DELETE /mcp`. Mount it behind the host's guard.
pub fn router(bridge: Arc<StdioBridge>) -> Router {
    Router::new()
        .route(
            "/mcp",
            post(handle_post).get(handle_get).delete(handle_delete),
        )
        .with_state(bridge)
}

fn accepts(headers: &HeaderMap, what: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(what) || v.contains("*/*"))
}

fn session_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(headers::SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn jsonrpc_error_response(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        error_response(&Value::Null, code, message).to_string(),
    )
        .into_response()
}

fn check_protocol_version(headers: &HeaderMap) -> Result<(), Box<Response>> {
    match headers
        .get(headers::PROTOCOL_VERSION)
        .map(|v| v.to_str().unwrap_or(""))
    {
        None => Ok(()),
        Some(v) if SUPPORTED_PROTOCOL_VERSIONS.contains(&v) => Ok(()),
        Some(v) => Err(Box::new(jsonrpc_error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            &format!(
                "Bad Request: unsupported MCP-Protocol-Version `{v}` (supported: {})",
                SUPPORTED_PROTOCOL_VERSIONS.join(", ")
            ),
        ))),
    }
}

fn unknown_session() -> Response {
    jsonrpc_error_response(
        StatusCode::NOT_FOUND,
        INVALID_REQUEST,
        "Session not found: initialize again",
    )
}

async fn handle_post(
    State(bridge): State<Arc<StdioBridge>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json_ok = accepts(&headers, "application/json");
    let sse_ok = accepts(&headers, "text/event-stream");
    if !json_ok && !sse_ok {
        return jsonrpc_error_response(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: accept application/json or text/event-stream",
        );
    }
    let content_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !content_json {
        return jsonrpc_error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            INVALID_REQUEST,
            "Unsupported Media Type: send application/json",
        );
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return jsonrpc_error_response(
                StatusCode::BAD_REQUEST,
                -32700,
                &format!("Parse error: {e}"),
            );
        }
    };
    let (messages, batch) = match parsed {
        Value::Array(items) if !items.is_empty() => (items, true),
        Value::Array(_) => {
            return jsonrpc_error_response(StatusCode::BAD_REQUEST, INVALID_REQUEST, "empty batch");
        }
        single => (vec![single], false),
    };
    if session_header(&headers).is_none()
        && let Some(response) =
            stateless::handle_post(&bridge, &headers, &messages, batch, json_ok, sse_ok).await
    {
        return response;
    }
    if let Err(response) = check_protocol_version(&headers) {
        return *response;
    }

    let Some(session_id) = session_header(&headers) else {
        let is_initialize = !batch
            && messages[0].get("method").and_then(Value::as_str) == Some("initialize")
            && messages[0].get("id").is_some();
        if !is_initialize {
            // A request of a session revision without its session: the error carries the
            // request's id.
            let id = if batch {
                Value::Null
            } else {
                messages[0].get("id").cloned().unwrap_or(Value::Null)
            };
            return (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "application/json")],
                error_response(
                    &id,
                    INVALID_REQUEST,
                    "Bad Request: Mcp-Session-Id header is required (initialize first, or send the 2026-07-28 client context in _meta)",
                )
                .to_string(),
            )
                .into_response();
        }
        let project = match session_project(&headers) {
            Ok(project) => project,
            Err(reason) => {
                let id = messages[0].get("id").cloned().unwrap_or(Value::Null);
                return (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json")],
                    error_response(&id, INVALID_REQUEST, &format!("Bad Request: {reason}"))
                        .to_string(),
                )
                    .into_response();
            }
        };
        return match bridge.initialize(&messages[0], project.as_deref()).await {
            Ok((session, answer)) => {
                let mut response = single_answer(answer, sse_ok && !json_ok);
                if let Ok(value) = HeaderValue::from_str(&session) {
                    response.headers_mut().insert(headers::SESSION_ID, value);
                }
                response
            }
            Err(answer) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
                .into_response(),
        };
    };
    let Some((session, upstream)) = bridge.session(&session_id) else {
        return unknown_session();
    };

    let (reply_tx, reply_rx) = mpsc::unbounded_channel();
    let mut expected = 0usize;
    for message in messages {
        let is_request =
            message.get("method").is_some() && message.get("id").is_some_and(|id| !id.is_null());
        if !is_request {
            upstream.forward_other(&session, message);
            continue;
        }
        expected += 1;
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        match method {
            "ping" => {
                let _ = reply_tx.send(Outgoing::Final(
                    json!({"jsonrpc": "2.0", "id": id, "result": {}}),
                ));
            }
            "initialize" => {
                let _ = reply_tx.send(Outgoing::Final(error_response(
                    &id,
                    INVALID_REQUEST,
                    "this session is already initialized",
                )));
            }
            _ => {
                let upstream = upstream.clone();
                let session = session.clone();
                let reply = reply_tx.clone();
                tokio::spawn(async move {
                    upstream.forward_request(&session, message, reply).await;
                });
            }
        }
    }
    drop(reply_tx);
    if expected == 0 {
        return StatusCode::ACCEPTED.into_response();
    }
    if sse_ok && json_ok && !batch {
        // The answer usually comes before anything related to it: then one plain JSON
        // response (one write, no stream). Anything else, or a slow answer, gets a stream.
        let mut reply_rx = reply_rx;
        match tokio::time::timeout(JSON_FIRST_WAIT, reply_rx.recv()).await {
            Ok(Some(Outgoing::Final(answer))) => single_answer(answer, false),
            Ok(Some(related)) => sse_response(Some(related), reply_rx, expected),
            Ok(None) => jsonrpc_error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR,
                "the request was dropped",
            ),
            Err(_) => sse_response(None, reply_rx, expected),
        }
    } else if sse_ok {
        sse_response(None, reply_rx, expected)
    } else {
        json_response(reply_rx, expected, batch, upstream, session).await
    }
}

/// One answer, as JSON (or SSE for a client that accepts only that).
fn single_answer(answer: Value, sse: bool) -> Response {
    if sse {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(Outgoing::Final(answer));
        return sse_response(None, rx, 1);
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// How long a request of a client that accepts both waits for its answer to come first (and
/// be sent as plain JSON) before the response turns into an SSE stream.
const JSON_FIRST_WAIT: Duration = Duration::from_secs(1);

/// The SSE stream of a POST: `first` (already received), then messages until `expected`
/// answers went out.
fn sse_response(
    first: Option<Outgoing>,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    expected: usize,
) -> Response {
    let state = (first, rx, expected);
    let stream = futures::stream::unfold(state, |(mut first, mut rx, remaining)| async move {
        if remaining == 0 {
            return None;
        }
        let next = match first.take() {
            Some(message) => message,
            None => rx.recv().await?,
        };
        let (message, remaining) = match next {
            Outgoing::Related(message) => (message, remaining),
            Outgoing::Final(message) => (message, remaining - 1),
        };
        let event = Event::default().event("message").data(message.to_string());
        Some((Ok::<_, Infallible>(event), (None, rx, remaining)))
    });
    sse(stream)
}

fn sse<S>(stream: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies must not hold events back.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Waits for every answer; messages related to them go to the session's GET stream.
async fn json_response(
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    expected: usize,
    batch: bool,
    upstream: Arc<Upstream>,
    session: SessionId,
) -> Response {
    let mut answers = Vec::with_capacity(expected);
    while answers.len() < expected {
        match rx.recv().await {
            Some(Outgoing::Final(answer)) => answers.push(answer),
            Some(Outgoing::Related(message)) => {
                upstream.deliver_related_to_get_stream(&session, message);
            }
            None => break,
        }
    }
    let body = if batch {
        Value::Array(answers)
    } else {
        answers.pop().unwrap_or(Value::Null)
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle_get(State(bridge): State<Arc<StdioBridge>>, headers: HeaderMap) -> Response {
    let Some(session_id) = session_header(&headers) else {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST, DELETE")],
            "Method Not Allowed: GET needs an Mcp-Session-Id",
        )
            .into_response();
    };
    if !accepts(&headers, "text/event-stream") {
        return jsonrpc_error_response(
            StatusCode::NOT_ACCEPTABLE,
            INVALID_REQUEST,
            "Not Acceptable: GET needs Accept: text/event-stream",
        );
    }
    if let Err(response) = check_protocol_version(&headers) {
        return *response;
    }
    let Some((_, upstream)) = bridge.session(&session_id) else {
        return unknown_session();
    };
    let Some(rx) = upstream.open_get_stream(&session_id) else {
        return unknown_session();
    };
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let message = rx.recv().await?;
        let event = Event::default().event("message").data(message.to_string());
        Some((Ok::<_, Infallible>(event), rx))
    });
    sse(stream)
}

async fn handle_delete(State(bridge): State<Arc<StdioBridge>>, headers: HeaderMap) -> Response {
    let Some(session_id) = session_header(&headers) else {
        return jsonrpc_error_response(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "Bad Request: DELETE needs an Mcp-Session-Id",
        );
    };
    if bridge.close_session(&session_id).await {
        StatusCode::OK.into_response()
    } else {
        unknown_session()
    }
}

#[cfg(test)]
mod tests;
