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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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
            ready_timeout: Duration::from_secs(60),
        })
    }
}

/// Why the bridge is not ready.
pub type BridgeError = crate::supervisor::SupervisorError;

/// A stdio server served over streamable HTTP. Create with [`StdioBridge::new`], serve with
/// [`router`], stop with [`StdioBridge::stop`].
pub struct StdioBridge {
    spec: BridgeSpec,
    /// Shared mode: the one child.
    shared: Option<Arc<Upstream>>,
    sessions: Mutex<HashMap<SessionId, Arc<Upstream>>>,
    /// Per-session mode: the child of the stateless clients, spawned by the first of them, and
    /// when it last got a request.
    stateless_child: Mutex<Option<(Arc<Upstream>, std::time::Instant)>>,
    /// How long that child may idle before it is stopped, in milliseconds.
    stateless_idle_ms: std::sync::atomic::AtomicU64,
    /// Set by `stop`: no new sessions.
    stopped: AtomicBool,
}

impl StdioBridge {
    /// Starts the bridge. In shared mode the child is spawned now (and initialized by the first
    /// session); in per-session mode children are spawned per session. `events` gets the
    /// shared child's status changes (per-session children are not reported one by one).
    pub fn new(
        spec: BridgeSpec,
        events: Option<broadcast::Sender<ChildEvent>>,
    ) -> Arc<StdioBridge> {
        let shared = match spec.share {
            ShareMode::Shared => Some(spawn_upstream(&spec, events.clone())),
            ShareMode::PerSession => None,
        };
        Arc::new(StdioBridge {
            spec,
            shared,
            sessions: Mutex::new(HashMap::new()),
            stateless_child: Mutex::new(None),
            stateless_idle_ms: std::sync::atomic::AtomicU64::new(
                STATELESS_CHILD_IDLE.as_millis() as u64
            ),
            stopped: AtomicBool::new(false),
        })
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn share_mode(&self) -> ShareMode {
        self.spec.share
    }

    /// Shared mode: waits until the child runs. Per-session mode: ready at once.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), BridgeError> {
        match &self.shared {
            Some(upstream) => upstream.child.wait_ready(timeout).await,
            None => Ok(()),
        }
    }

    /// The status for `/status`: the shared child's, or in per-session mode a summary (state
    /// running, pid of the only child if there is exactly one, restarts summed).
    pub fn snapshot(&self) -> ChildStatus {
        if let Some(upstream) = &self.shared {
            return upstream.child.snapshot();
        }
        let children: Vec<ChildStatus> = self
            .per_session_children()
            .iter()
            .map(|u| u.child.snapshot())
            .collect();
        ChildStatus {
            name: self.spec.name.clone(),
            state: if self.stopped.load(Ordering::Relaxed) {
                TargetState::Stopped
            } else {
                TargetState::Running
            },
            pid: match children.as_slice() {
                [only] => only.pid,
                _ => None,
            },
            restarts: children.iter().map(|c| c.restarts).sum(),
            last_error: children.iter().find_map(|c| c.last_error.clone()),
            log_path: self.spec.child.log_path.clone(),
        }
    }

    /// The pids of the running children (one in shared mode, one per session otherwise).
    pub fn child_pids(&self) -> Vec<u32> {
        match &self.shared {
            Some(upstream) => upstream.child.snapshot().pid.into_iter().collect(),
            None => self
                .per_session_children()
                .iter()
                .filter_map(|u| u.child.snapshot().pid)
                .collect(),
        }
    }

    /// Per-session mode: every session's child, and the stateless clients' child if running.
    fn per_session_children(&self) -> Vec<Arc<Upstream>> {
        let mut children: Vec<Arc<Upstream>> = self.sessions.lock().values().cloned().collect();
        if let Some((child, _)) = &*self.stateless_child.lock() {
            children.push(child.clone());
        }
        children
    }

    /// The child that serves a stateless request: the shared one, or in per-session mode the
    /// one kept for stateless clients (spawned now if needed, stopped once idle).
    fn stateless_upstream(self: &Arc<Self>) -> Result<Arc<Upstream>, UpstreamError> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err(UpstreamError::Stopped {
                name: self.spec.name.clone(),
            });
        }
        if let Some(upstream) = &self.shared {
            return Ok(upstream.clone());
        }
        let mut slot = self.stateless_child.lock();
        if let Some((child, last_used)) = slot.as_mut() {
            *last_used = std::time::Instant::now();
            return Ok(child.clone());
        }
        let child = spawn_upstream(&self.spec, None);
        *slot = Some((child.clone(), std::time::Instant::now()));
        drop(slot);
        tracing::info!(target_name = %self.spec.name, "started the child of stateless clients");
        let bridge = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let idle = match bridge.upgrade() {
                    Some(bridge) => {
                        Duration::from_millis(bridge.stateless_idle_ms.load(Ordering::Relaxed))
                    }
                    None => return,
                };
                let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
                tokio::time::sleep(tick).await;
                let Some(bridge) = bridge.upgrade() else {
                    return;
                };
                let idle_child = {
                    let mut slot = bridge.stateless_child.lock();
                    let expired = slot.as_ref().is_some_and(|(child, last_used)| {
                        last_used.elapsed() >= idle
                            && child.pending_requests() == 0
                            && !child.has_listeners()
                    });
                    match slot.as_ref() {
                        None => return,
                        Some(_) if expired => slot.take().map(|(child, _)| child),
                        Some(_) => None,
                    }
                };
                if let Some(child) = idle_child {
                    tracing::info!(target_name = %bridge.spec.name, "stopping the idle child of stateless clients");
                    child.stop().await;
                    return;
                }
            }
        });
        Ok(child)
    }

    /// Requests in flight to the shared child.
    #[cfg(test)]
    fn pending_requests(&self) -> usize {
        self.shared.as_ref().map_or(0, |u| u.pending_requests())
    }

    /// Per-session mode: the pid of the stateless clients' child, if it runs.
    #[cfg(test)]
    fn stateless_child_pid(&self) -> Option<u32> {
        let slot = self.stateless_child.lock();
        slot.as_ref()
            .and_then(|(child, _)| child.child.snapshot().pid)
    }

    /// Live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Restarts the shared child (sessions re-attach) or every per-session child.
    pub async fn restart(&self) {
        match &self.shared {
            Some(upstream) => upstream.child.restart().await,
            None => {
                for child in self.per_session_children() {
                    child.child.restart().await;
                }
            }
        }
    }

    /// Ends every session and stops every child (SIGTERM, then SIGKILL after the grace).
    pub async fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let per_session: Vec<Arc<Upstream>> = {
            let mut sessions = self.sessions.lock();
            let all = sessions.drain().map(|(_, u)| u).collect::<Vec<_>>();
            if self.shared.is_some() {
                Vec::new()
            } else {
                all
            }
        };
        if let Some(upstream) = &self.shared {
            upstream.stop().await;
        }
        let stateless = self.stateless_child.lock().take().map(|(child, _)| child);
        if let Some(child) = stateless {
            child.stop().await;
        }
        futures::future::join_all(per_session.iter().map(|u| u.stop())).await;
    }

    /// Ends a session (DELETE, or idle expiry through the host's session registry): its
    /// streams close, its subscriptions go, and in per-session mode its child is stopped.
    pub async fn close_session(&self, id: &str) -> bool {
        let Some(upstream) = self.sessions.lock().remove(id) else {
            return false;
        };
        upstream.remove_session(id);
        if self.shared.is_none() {
            upstream.stop().await;
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

    /// Opens a session: initializes the (shared or new) child and answers from its result.
    async fn initialize(&self, request: &Value) -> Result<(SessionId, Value), Value> {
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        if self.stopped.load(Ordering::Relaxed) {
            return Err(error_response(
                &id,
                INTERNAL_ERROR,
                &format!("the server `{}` is stopped", self.spec.name),
            ));
        }
        let params = request.get("params").cloned().unwrap_or(json!({}));
        let upstream = match &self.shared {
            Some(upstream) => upstream.clone(),
            // Per-session children do not report to the host one by one.
            None => spawn_upstream(&self.spec, None),
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
                if self.shared.is_none() {
                    upstream.stop().await;
                }
                Err(error_response(&id, INTERNAL_ERROR, &message.to_string()))
            }
        }
    }
}

fn spawn_upstream(
    spec: &BridgeSpec,
    events: Option<broadcast::Sender<ChildEvent>>,
) -> Arc<Upstream> {
    let (pipes_tx, pipes_rx) = mpsc::unbounded_channel();
    let child = SupervisedChild::spawn(
        spec.child.clone(),
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
        return match bridge.initialize(&messages[0]).await {
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
