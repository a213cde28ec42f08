//! One stdio child and the JSON-RPC routing between it and the sessions that share it: request
//! ids and progress tokens rewritten per session (so they never collide), answers routed back,
//! server-to-client requests sent to the session that caused them, notifications fanned out.
//! The child is initialized once per spawn from a cached handshake; when it dies, in-flight
//! requests get an error and the restarted child is initialized again.
//!
//! Requests of stateless (2026-07-28) clients travel the same way under an ephemeral routing key
//! of their own (one per request, never a session). That revision has no server-to-client
//! requests: when the child asks such a request's client something (sampling, elicitation,
//! roots), the client's POST is answered with an `input_required` result carrying the question
//! and an opaque `requestState`, the child's request is kept waiting, and the client's retry
//! (a new POST with `inputResponses` and that `requestState`) hands the answers to the child and
//! takes over the wait for its result (multi round-trip requests, SEP-2322).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use msm_core::meta_keys;

use crate::status::TargetState;
use crate::supervisor::{ChildPipes, SupervisedChild};

/// A session id as handed out in `Mcp-Session-Id`.
pub(crate) type SessionId = Arc<str>;

/// JSON-RPC "internal error", used for a child that died or is not answering.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// How long the child's question to a stateless client waits for the client's retry before it
/// is refused and the client's request cancelled (a person may be answering an elicitation).
pub(crate) const INPUT_REQUIRED_TIMEOUT: Duration = Duration::from_secs(600);

/// The stateless revision's requests whose results carry caching hints (`ttlMs`, `cacheScope`).
const CACHEABLE_METHODS: &[&str] = &[
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// The requests on which a server may answer `input_required` (SEP-2322).
const INPUT_REQUIRED_METHODS: &[&str] = &["tools/call", "prompts/get", "resources/read"];

/// Why the shared child cannot serve a request now; the text is what the client reads.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum UpstreamError {
    #[error("the server `{name}` is not initialized")]
    NotInitialized { name: String },
    #[error(
        "the server `{name}` is not running ({state}){}",
        with_last(": ", last, "")
    )]
    NotRunning {
        name: String,
        state: &'static str,
        last: Option<String>,
    },
    #[error(
        "the server `{name}` did not start within {secs}s{}",
        with_last(" (last error: ", last, ")")
    )]
    StartTimeout {
        name: String,
        secs: u64,
        last: Option<String>,
    },
    #[error("the server `{name}` is gone")]
    Gone { name: String },
    #[error("the server `{name}` is stopped")]
    Stopped { name: String },
    #[error(
        "the server `{name}` runs in the session's project directory, and this session named none (the proxy sends it as `Mcp-Project-Path`)"
    )]
    NoProject { name: String },
    #[error("no client has initialized yet")]
    NoHandshake,
    #[error("the server `{name}` refused initialize: {message}")]
    InitializeRefused { name: String, message: String },
    #[error("the server `{name}` ended during {method}")]
    Ended { name: String, method: String },
    #[error("the server `{name}` did not answer {method} within {secs}s")]
    NoAnswer {
        name: String,
        method: String,
        secs: u64,
    },
    #[error("the server `{name}` exited")]
    Exited { name: String },
    #[error("the server `{name}` restarted")]
    Restarted { name: String },
    /// The request was refused before it reached the child (the error answer's message).
    #[error("{0}")]
    NotSent(String),
}

fn with_last(before: &str, last: &Option<String>, after: &str) -> String {
    last.as_ref()
        .map(|e| format!("{before}{e}{after}"))
        .unwrap_or_default()
}

/// A message for one POST's response stream.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A request or notification related to the POST's request(s), sent before the answer.
    Related(Value),
    /// The answer to one of the POST's requests.
    Final(Value),
}

/// A request sent to the child whose answer someone awaits.
struct Pending {
    /// `None` for the bridge's own requests (initialize, re-subscribe).
    session: Option<SessionId>,
    original_id: Value,
    reply: mpsc::UnboundedSender<Outgoing>,
    started: Instant,
    generation: u64,
    /// The progress token given to the child in place of the session's own.
    progress_token: Option<String>,
}

/// A stateless client's request in flight (under its ephemeral routing key): what the
/// translation of the child's server-to-client requests into `input_required` results needs.
struct StatelessExchange {
    /// The client's method; a retry must name the same one.
    method: String,
    /// The request's `_meta` client capabilities: only what they declare is asked.
    capabilities: Value,
    /// The child's questions for the client: (input key, the child's request id, the request).
    waiting: Vec<(String, Value, Value)>,
    /// The `requestState` of an `input_required` answer the client has not retried yet.
    parked: Option<String>,
    /// The child's answer, when it came while the exchange was parked: the retry gets it.
    finished: Option<Value>,
    next_input: u64,
    /// The request's `_meta` log level (as a severity): the child's log messages at least that
    /// severe go on the request's stream while it runs. `None`: no log messages.
    log_level: Option<usize>,
}

/// Log levels, least severe first.
const LOG_LEVELS: &[&str] = &[
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn log_severity(level: Option<&Value>) -> Option<usize> {
    let level = level?.as_str()?;
    LOG_LEVELS.iter().position(|l| *l == level)
}

#[derive(Default)]
struct SessionSinks {
    /// The session's standalone `GET` stream, when open (a listener's stream).
    get_stream: Option<mpsc::UnboundedSender<Value>>,
    /// Set for a stateless client's `subscriptions/listen` stream: what it gets.
    listen: Option<ListenFilter>,
}

/// What a `subscriptions/listen` stream opted in to (and the bridge agreed to).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ListenFilter {
    /// The listen request's id: every notification on the stream names it.
    pub(crate) subscription_id: Value,
    pub(crate) tools_list_changed: bool,
    pub(crate) prompts_list_changed: bool,
    pub(crate) resources_list_changed: bool,
}

impl ListenFilter {
    fn wants(&self, method: &str) -> bool {
        match method {
            "notifications/tools/list_changed" => self.tools_list_changed,
            "notifications/prompts/list_changed" => self.prompts_list_changed,
            "notifications/resources/list_changed" => self.resources_list_changed,
            // Only reaches a listener that asked for the URI.
            "notifications/resources/updated" => true,
            _ => false,
        }
    }
}

#[derive(Default)]
struct Routing {
    next_id: u64,
    pending: HashMap<u64, Pending>,
    /// Child-side progress token → (session, the session's own token, child-side request id).
    progress: HashMap<String, (SessionId, Value, u64)>,
    /// Child's request id (as JSON text) → the session it was sent to.
    server_requests: HashMap<String, SessionId>,
    /// Resource URI → sessions subscribed to it.
    subscriptions: HashMap<String, BTreeSet<SessionId>>,
    sessions: HashMap<SessionId, SessionSinks>,
    /// Stateless requests in flight, by routing key.
    stateless: HashMap<SessionId, StatelessExchange>,
    /// `requestState` handed out → the routing key of the request it continues.
    request_states: HashMap<String, SessionId>,
    /// The current spawn's stdin writer.
    writer: Option<(u64, mpsc::UnboundedSender<String>)>,
}

/// The child's handshake: what the bridge sent and what the child answered.
#[derive(Clone)]
struct Handshake {
    params: Value,
    result: Option<Value>,
}

/// Which spawn is connected and whether it has been initialized.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Link {
    generation: u64,
    connected: bool,
    initialized: bool,
}

/// One stdio child shared by one or more sessions.
pub(crate) struct Upstream {
    pub(crate) name: String,
    pub(crate) child: SupervisedChild,
    routing: Mutex<Routing>,
    handshake: Mutex<Option<Handshake>>,
    handshake_lock: tokio::sync::Mutex<()>,
    link: watch::Sender<Link>,
    io_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    request_timeout: Duration,
    /// Itself, for the timers of parked stateless requests.
    me: std::sync::Weak<Upstream>,
    /// [`INPUT_REQUIRED_TIMEOUT`], in milliseconds (shorter in tests).
    input_required_timeout_ms: std::sync::atomic::AtomicU64,
}

impl Upstream {
    /// Takes over a supervised child whose pipes arrive on `pipes`.
    pub(crate) fn new(
        name: String,
        child: SupervisedChild,
        pipes: mpsc::UnboundedReceiver<ChildPipes>,
        request_timeout: Duration,
    ) -> Arc<Upstream> {
        let upstream = Arc::new_cyclic(|me| Upstream {
            name,
            child,
            routing: Mutex::new(Routing {
                next_id: 1,
                ..Routing::default()
            }),
            handshake: Mutex::new(None),
            handshake_lock: tokio::sync::Mutex::new(()),
            link: watch::channel(Link::default()).0,
            io_task: Mutex::new(None),
            request_timeout,
            me: me.clone(),
            input_required_timeout_ms: std::sync::atomic::AtomicU64::new(
                INPUT_REQUIRED_TIMEOUT.as_millis() as u64,
            ),
        });
        let task = tokio::spawn(io_loop(Arc::downgrade(&upstream), pipes));
        *upstream.io_task.lock() = Some(task);
        upstream
    }

    /// Stops the child and fails what is in flight.
    pub(crate) async fn stop(&self) {
        self.child.stop().await;
        if let Some(task) = self.io_task.lock().take() {
            task.abort();
        }
        let failed = {
            let mut routing = self.routing.lock();
            routing.writer = None;
            routing.sessions.clear();
            routing.stateless.clear();
            routing.request_states.clear();
            std::mem::take(&mut routing.pending)
        };
        for pending in failed.into_values() {
            let _ = pending.reply.send(Outgoing::Final(error_response(
                &pending.original_id,
                INTERNAL_ERROR,
                &format!("the server `{}` was stopped", self.name),
            )));
        }
    }

    pub(crate) fn add_session(&self, id: SessionId) {
        self.routing
            .lock()
            .sessions
            .insert(id, SessionSinks::default());
    }

    /// Forgets a session; unsubscribes the child from URIs nobody else follows.
    pub(crate) fn remove_session(&self, id: &str) {
        let orphaned: Vec<String> = {
            let mut routing = self.routing.lock();
            routing.sessions.remove(id);
            routing.server_requests.retain(|_, s| &**s != id);
            routing.progress.retain(|_, (s, _, _)| &**s != id);
            let mut orphaned = Vec::new();
            routing.subscriptions.retain(|uri, sessions| {
                sessions.remove(id);
                if sessions.is_empty() {
                    orphaned.push(uri.clone());
                    false
                } else {
                    true
                }
            });
            orphaned
        };
        for uri in orphaned {
            self.notify_child_request("resources/unsubscribe", json!({ "uri": uri }));
        }
    }

    /// Shortens how long the child's questions wait for a stateless client's retry.
    #[cfg(test)]
    pub(crate) fn set_input_required_timeout(&self, timeout: Duration) {
        self.input_required_timeout_ms.store(
            timeout.as_millis() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Requests sent to the child and not answered yet.
    pub(crate) fn pending_requests(&self) -> usize {
        self.routing.lock().pending.len()
    }

    /// A stateless client's `subscriptions/listen` stream under routing key `key`: the
    /// notifications `filter` and `uris` name, until [`Upstream::remove_session`]. The child is
    /// subscribed to the URIs nobody followed yet.
    pub(crate) fn open_listen(
        &self,
        key: SessionId,
        filter: ListenFilter,
        uris: &[String],
    ) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut new_uris = Vec::new();
        {
            let mut routing = self.routing.lock();
            routing.sessions.insert(
                key.clone(),
                SessionSinks {
                    get_stream: Some(tx),
                    listen: Some(filter),
                },
            );
            for uri in uris {
                let followers = routing.subscriptions.entry(uri.clone()).or_default();
                if followers.is_empty() {
                    new_uris.push(uri.clone());
                }
                followers.insert(key.clone());
            }
        }
        for uri in new_uris {
            self.notify_child_request("resources/subscribe", json!({ "uri": uri }));
        }
        rx
    }

    /// Whether a stateless client's listen stream is open on this child.
    pub(crate) fn has_listeners(&self) -> bool {
        self.routing
            .lock()
            .sessions
            .values()
            .any(|sinks| sinks.listen.is_some())
    }

    /// URIs the child is subscribed to for someone.
    #[cfg(test)]
    pub(crate) fn subscribed_uris(&self) -> Vec<String> {
        self.routing.lock().subscriptions.keys().cloned().collect()
    }

    /// Opens (or replaces) the session's standalone stream.
    pub(crate) fn open_get_stream(&self, id: &str) -> Option<mpsc::UnboundedReceiver<Value>> {
        let mut routing = self.routing.lock();
        let sinks = routing.sessions.get_mut(id)?;
        let (tx, rx) = mpsc::unbounded_channel();
        sinks.get_stream = Some(tx);
        Some(rx)
    }

    /// A message related to a request answered as plain JSON: it goes to the GET stream.
    pub(crate) fn deliver_related_to_get_stream(&self, session: &SessionId, message: Value) {
        let routing = self.routing.lock();
        let stream = routing
            .sessions
            .get(session)
            .and_then(|s| s.get_stream.clone());
        if let Some(stream) = stream {
            let _ = stream.send(message);
        }
    }

    /// The child's initialize result, initializing it first if needed. `params` is the
    /// session's initialize params; the first ones given are the ones the child sees (again
    /// after each restart).
    pub(crate) async fn initialize(
        self: &Arc<Self>,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        {
            let mut handshake = self.handshake.lock();
            if handshake.is_none() {
                *handshake = Some(Handshake {
                    params: params.clone(),
                    result: None,
                });
            }
        }
        self.wait_initialized(timeout).await?;
        self.handshake
            .lock()
            .as_ref()
            .and_then(|h| h.result.clone())
            .ok_or_else(|| UpstreamError::NotInitialized {
                name: self.name.clone(),
            })
    }

    /// Waits until the current spawn is connected and initialized (handshaking if needed).
    /// Waits for the child's handshake; when it does not come, answers `id` with the reason
    /// and says so (`false`).
    async fn ready_or_refuse(
        self: &Arc<Self>,
        id: &Value,
        reply: &mpsc::UnboundedSender<Outgoing>,
    ) -> bool {
        match self.wait_initialized(self.request_timeout).await {
            Ok(()) => true,
            Err(e) => {
                let _ = reply.send(Outgoing::Final(error_response(
                    id,
                    INTERNAL_ERROR,
                    &e.to_string(),
                )));
                false
            }
        }
    }

    async fn wait_initialized(self: &Arc<Self>, timeout: Duration) -> Result<(), UpstreamError> {
        let deadline = Instant::now() + timeout;
        let mut link_rx = self.link.subscribe();
        let mut last_error: Option<UpstreamError> = None;
        loop {
            let link = *link_rx.borrow_and_update();
            if link.initialized {
                return Ok(());
            }
            if link.connected {
                match self.handshake_generation(link.generation, deadline).await {
                    Ok(()) => continue,
                    Err(e) => {
                        let same_spawn_alive = self
                            .routing
                            .lock()
                            .writer
                            .as_ref()
                            .is_some_and(|(g, _)| *g == link.generation);
                        if same_spawn_alive {
                            return Err(e);
                        }
                        // The spawn died meanwhile: wait for the next one (or a crash loop).
                        if Instant::now() >= deadline {
                            return Err(e);
                        }
                        last_error = Some(e);
                        let _ = tokio::time::timeout(Duration::from_millis(250), link_rx.changed())
                            .await;
                        continue;
                    }
                }
            }
            let status = self.child.snapshot();
            if matches!(status.state, TargetState::CrashLoop | TargetState::Stopped) {
                return Err(UpstreamError::NotRunning {
                    name: self.name.clone(),
                    state: status.state.as_str(),
                    last: status.last_error.or(last_error.map(|e| e.to_string())),
                });
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            let changed =
                tokio::time::timeout(wait.min(Duration::from_millis(250)), link_rx.changed()).await;
            if Instant::now() >= deadline {
                return Err(UpstreamError::StartTimeout {
                    name: self.name.clone(),
                    secs: timeout.as_secs(),
                    last: status.last_error.or(last_error.map(|e| e.to_string())),
                });
            }
            if let Ok(Err(_)) = changed {
                return Err(UpstreamError::Gone {
                    name: self.name.clone(),
                });
            }
        }
    }

    /// Sends the cached initialize to spawn `generation` (once), then `initialized` and the
    /// subscriptions sessions hold.
    async fn handshake_generation(
        self: &Arc<Self>,
        generation: u64,
        deadline: Instant,
    ) -> Result<(), UpstreamError> {
        let _guard = self.handshake_lock.lock().await;
        let link = *self.link.borrow();
        if link.generation != generation || link.initialized {
            return Ok(());
        }
        let Some(params) = self.handshake.lock().as_ref().map(|h| h.params.clone()) else {
            return Err(UpstreamError::NoHandshake);
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let answer = self.call("initialize", params, timeout).await?;
        if let Some(error) = answer.get("error") {
            return Err(UpstreamError::InitializeRefused {
                name: self.name.clone(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_owned(),
            });
        }
        let result = answer.get("result").cloned().unwrap_or(json!({}));
        if let Some(handshake) = self.handshake.lock().as_mut() {
            handshake.result = Some(result);
        }
        self.send_line(
            generation,
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )?;
        let uris: Vec<String> = self.routing.lock().subscriptions.keys().cloned().collect();
        for uri in uris {
            self.notify_child_request("resources/subscribe", json!({ "uri": uri }));
        }
        self.link.send_if_modified(|link| {
            if link.generation == generation {
                link.initialized = true;
                true
            } else {
                false
            }
        });
        tracing::info!(target_name = %self.name, generation, "stdio child initialized");
        Ok(())
    }

    /// A request of the bridge's own; answers the child's whole JSON-RPC response.
    async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let message = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        self.send_request(None, message, tx)
            .map_err(|e| UpstreamError::NotSent(error_message(&e)))?;
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(Outgoing::Final(answer))) => Ok(answer),
            Ok(_) => Err(UpstreamError::Ended {
                name: self.name.clone(),
                method: method.to_owned(),
            }),
            Err(_) => Err(UpstreamError::NoAnswer {
                name: self.name.clone(),
                method: method.to_owned(),
                secs: timeout.as_secs(),
            }),
        }
    }

    /// Fire-and-forget request of the bridge's own (its answer is dropped).
    fn notify_child_request(&self, method: &str, params: Value) {
        let (tx, _rx) = mpsc::unbounded_channel();
        let message = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        let _ = self.send_request(None, message, tx);
    }

    /// Forwards a session's request: a fresh id (and progress token) towards the child, the
    /// answer routed back to `reply` with the session's own id. Waits for the child to be
    /// initialized (e.g. while it restarts). On failure, answers `reply` with an error itself.
    pub(crate) async fn forward_request(
        self: &Arc<Self>,
        session: &SessionId,
        message: Value,
        reply: mpsc::UnboundedSender<Outgoing>,
    ) {
        let original_id = message.get("id").cloned().unwrap_or(Value::Null);
        if !self.ready_or_refuse(&original_id, &reply).await {
            return;
        }
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        if method == "resources/subscribe" || method == "resources/unsubscribe" {
            let uri = message
                .pointer("/params/uri")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(uri) = uri {
                let mut routing = self.routing.lock();
                if method == "resources/subscribe" {
                    routing
                        .subscriptions
                        .entry(uri)
                        .or_default()
                        .insert(session.clone());
                } else {
                    let others_remain = match routing.subscriptions.get_mut(&uri) {
                        Some(set) => {
                            set.remove(session);
                            let remain = !set.is_empty();
                            if !remain {
                                routing.subscriptions.remove(&uri);
                            }
                            remain
                        }
                        None => false,
                    };
                    if others_remain {
                        // Another session still follows it: the child stays subscribed.
                        let _ = reply.send(Outgoing::Final(
                            json!({"jsonrpc": "2.0", "id": original_id, "result": {}}),
                        ));
                        return;
                    }
                }
            }
        }
        match self.send_request(Some(session.clone()), message, reply.clone()) {
            Ok(child_id) => {
                // The response (stream) is dropped once answered, or when the client went
                // away: in the second case the child is told to stop working on it.
                reply.closed().await;
                self.cancel_if_pending(child_id, &reply);
            }
            Err(error) => {
                let _ = reply.send(Outgoing::Final(error_response(
                    &original_id,
                    INTERNAL_ERROR,
                    &error_message(&error),
                )));
            }
        }
    }

    /// Forwards a stateless client's request (its `_meta` client context already checked) under
    /// an ephemeral routing key, or continues one (`requestState` of an `input_required`
    /// answer). The answer, in the stateless revision's shape, goes to `reply`.
    pub(crate) async fn forward_stateless(
        self: &Arc<Self>,
        mut message: Value,
        reply: mpsc::UnboundedSender<Outgoing>,
    ) {
        let request_state = message
            .pointer("/params/requestState")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Some(state) = request_state {
            self.resume_stateless(&state, message, reply).await;
            return;
        }
        let original_id = message.get("id").cloned().unwrap_or(Value::Null);
        if !self.ready_or_refuse(&original_id, &reply).await {
            return;
        }
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let meta = message.pointer("/params/_meta");
        let capabilities = meta
            .and_then(|meta| meta.get(meta_keys::CLIENT_CAPABILITIES))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let log_level = log_severity(meta.and_then(|meta| meta.get(meta_keys::LOG_LEVEL)));
        strip_stateless_params(&mut message);
        let key: SessionId = Arc::from(format!("stateless-{}", uuid::Uuid::new_v4().simple()));
        self.routing.lock().stateless.insert(
            key.clone(),
            StatelessExchange {
                method,
                capabilities,
                waiting: Vec::new(),
                parked: None,
                finished: None,
                next_input: 0,
                log_level,
            },
        );
        match self.send_request(Some(key.clone()), message, reply.clone()) {
            Ok(_) => {
                reply.closed().await;
                self.finish_stateless(&key, &reply);
            }
            Err(error) => {
                self.routing.lock().stateless.remove(&key);
                let _ = reply.send(Outgoing::Final(error));
            }
        }
    }

    /// A stateless client's retry with the answers to the child's questions: they go to the
    /// child, and the retry waits for the result in place of the first request.
    async fn resume_stateless(
        &self,
        state: &str,
        message: Value,
        reply: mpsc::UnboundedSender<Outgoing>,
    ) {
        let new_id = message.get("id").cloned().unwrap_or(Value::Null);
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        let responses = message
            .pointer("/params/inputResponses")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let new_progress_token = message.pointer("/params/_meta/progressToken").cloned();
        let refuse = |text: &str| {
            let _ = reply.send(Outgoing::Final(error_response(
                &new_id,
                INVALID_PARAMS,
                text,
            )));
        };
        let key = {
            let mut routing = self.routing.lock();
            let Some(key) = routing.request_states.get(state).cloned() else {
                drop(routing);
                refuse(
                    "Invalid params: unknown or expired requestState (send the request again without it)",
                );
                return;
            };
            let Some(exchange) = routing.stateless.get_mut(&key) else {
                routing.request_states.remove(state);
                drop(routing);
                refuse(
                    "Invalid params: unknown or expired requestState (send the request again without it)",
                );
                return;
            };
            if exchange.method != method {
                let text = format!(
                    "Invalid params: this requestState continues a `{}` request, not `{method}`",
                    exchange.method
                );
                drop(routing);
                refuse(&text);
                return;
            }
            exchange.parked = None;
            if let Some(mut finished) = exchange.finished.take() {
                routing.stateless.remove(&key);
                routing.request_states.remove(state);
                drop(routing);
                finished["id"] = new_id;
                let _ = reply.send(Outgoing::Final(finished));
                return;
            }
            let (answered, remaining): (Vec<_>, Vec<_>) = std::mem::take(&mut exchange.waiting)
                .into_iter()
                .partition(|(input, _, _)| responses.contains_key(input));
            exchange.waiting = remaining;
            routing.request_states.remove(state);
            for (input, id, _) in answered {
                let answer = json!({"jsonrpc": "2.0", "id": id, "result": responses[&input]});
                write_to_child(&routing, &answer);
            }
            let pending = routing
                .pending
                .values_mut()
                .find(|p| p.session.as_ref() == Some(&key));
            let Some(pending) = pending else {
                routing.stateless.remove(&key);
                drop(routing);
                let _ = reply.send(Outgoing::Final(error_response(
                    &new_id,
                    INTERNAL_ERROR,
                    &format!(
                        "the server `{}` restarted before answering; the request was not completed (send it again)",
                        self.name
                    ),
                )));
                return;
            };
            pending.reply = reply.clone();
            pending.original_id = new_id;
            pending.started = Instant::now();
            let child_token = pending.progress_token.clone();
            if let (Some(child_token), Some(token)) = (child_token, new_progress_token)
                && let Some(entry) = routing.progress.get_mut(&child_token)
            {
                entry.1 = token;
            }
            let still_waiting = routing
                .stateless
                .get(&key)
                .is_some_and(|e| !e.waiting.is_empty());
            if still_waiting {
                // The child asked more (or the client left a question unanswered): ask again.
                self.park(&mut routing, &key);
            }
            key
        };
        reply.closed().await;
        self.finish_stateless(&key, &reply);
    }

    /// The child asks a stateless client something: it becomes an input request of the
    /// client's `input_required` answer, if the client declared it can answer it.
    fn ask_stateless_client(
        &self,
        routing: &mut Routing,
        key: &SessionId,
        method: &str,
        id: Value,
        message: Value,
    ) {
        let Some(exchange) = routing.stateless.get_mut(key) else {
            return;
        };
        let capability = match method {
            "sampling/createMessage" => Some("sampling"),
            "elicitation/create" => Some("elicitation"),
            "roots/list" => Some("roots"),
            _ => None,
        };
        let refusal = match capability {
            None => Some(format!(
                "a stateless (2026-07-28) client cannot be asked `{method}`"
            )),
            Some(capability) if exchange.capabilities.get(capability).is_none() => Some(format!(
                "the client did not declare the `{capability}` capability"
            )),
            Some(_) if !INPUT_REQUIRED_METHODS.contains(&exchange.method.as_str()) => {
                Some(format!(
                    "the client's `{}` request cannot be answered with a request for input",
                    exchange.method
                ))
            }
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            refuse_child_request(routing, &id, &reason);
            return;
        }
        exchange.next_input += 1;
        let input = format!("{}-{}", capability.unwrap_or("input"), exchange.next_input);
        let request = json!({
            "method": method,
            "params": message.get("params").cloned().unwrap_or_else(|| json!({})),
        });
        exchange.waiting.push((input, id, request));
        if exchange.parked.is_none() {
            self.park(routing, key);
        }
    }

    /// Answers the stateless request's current POST with `input_required` (every question
    /// waiting) and a fresh `requestState`; the child's request waits for the retry.
    fn park(&self, routing: &mut Routing, key: &SessionId) {
        let state = uuid::Uuid::new_v4().simple().to_string();
        let Some(exchange) = routing.stateless.get_mut(key) else {
            return;
        };
        let requests: serde_json::Map<String, Value> = exchange
            .waiting
            .iter()
            .map(|(input, _, request)| (input.clone(), request.clone()))
            .collect();
        exchange.parked = Some(state.clone());
        routing.request_states.insert(state.clone(), key.clone());
        let delivered = routing
            .pending
            .values()
            .find(|p| p.session.as_ref() == Some(key))
            .is_some_and(|p| {
                let answer = json!({"jsonrpc": "2.0", "id": p.original_id, "result": {
                    "resultType": "input_required",
                    "inputRequests": requests,
                    "requestState": state,
                }});
                p.reply.send(Outgoing::Final(answer)).is_ok()
            });
        if !delivered {
            expire_parked(routing, &state, "the client went away");
            return;
        }
        let upstream = self.me.clone();
        let timeout = Duration::from_millis(
            self.input_required_timeout_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let Some(upstream) = upstream.upgrade() {
                let mut routing = upstream.routing.lock();
                expire_parked(
                    &mut routing,
                    &state,
                    "the client did not come back with the input it was asked for",
                );
            }
        });
    }

    /// A stateless request's POST ended: if it was still the one waiting for the child's
    /// answer (the client went away), the child is told to cancel; a parked request waits for
    /// its retry (or its timer).
    fn finish_stateless(&self, key: &SessionId, reply: &mpsc::UnboundedSender<Outgoing>) {
        let mut routing = self.routing.lock();
        let Some(exchange) = routing.stateless.get(key) else {
            return;
        };
        if exchange.parked.is_some() {
            return;
        }
        let pending = routing
            .pending
            .iter()
            .find(|(_, p)| p.session.as_ref() == Some(key))
            .map(|(id, p)| (*id, p.reply.same_channel(reply)));
        match pending {
            Some((_, false)) => {}
            Some((child_id, true)) => {
                cancel_pending(&mut routing, child_id, "the client went away");
                routing.stateless.remove(key);
            }
            None => {
                routing.stateless.remove(key);
            }
        }
    }

    /// Forgets a request whose client is gone (its answer still goes to `reply`) and tells
    /// the child to cancel it.
    fn cancel_if_pending(&self, child_id: u64, reply: &mpsc::UnboundedSender<Outgoing>) {
        let mut routing = self.routing.lock();
        let ours = routing
            .pending
            .get(&child_id)
            .is_some_and(|p| p.reply.same_channel(reply));
        if ours {
            cancel_pending(&mut routing, child_id, "the client went away");
        }
    }

    /// Registers a pending request and writes it with a child-side id.
    fn send_request(
        &self,
        session: Option<SessionId>,
        mut message: Value,
        reply: mpsc::UnboundedSender<Outgoing>,
    ) -> Result<u64, Value> {
        let original_id = message.get("id").cloned().unwrap_or(Value::Null);
        let mut routing = self.routing.lock();
        let Some((generation, writer)) = routing.writer.clone() else {
            return Err(error_response(
                &original_id,
                INTERNAL_ERROR,
                &self.not_running(),
            ));
        };
        let child_id = routing.next_id;
        routing.next_id += 1;
        message["id"] = json!(child_id);
        let mut progress_token = None;
        if let Some(session) = &session
            && let Some(token) = message
                .pointer_mut("/params/_meta/progressToken")
                .map(Value::take)
        {
            let child_token = format!("msm-{child_id}");
            routing
                .progress
                .insert(child_token.clone(), (session.clone(), token, child_id));
            message["params"]["_meta"]["progressToken"] = json!(child_token);
            progress_token = Some(child_token);
        }
        let line = message.to_string();
        routing.pending.insert(
            child_id,
            Pending {
                session,
                original_id: original_id.clone(),
                reply,
                started: Instant::now(),
                generation,
                progress_token,
            },
        );
        if writer.send(line).is_err() {
            if let Some(pending) = routing.pending.remove(&child_id)
                && let Some(token) = pending.progress_token
            {
                routing.progress.remove(&token);
            }
            return Err(error_response(
                &original_id,
                INTERNAL_ERROR,
                &self.not_running(),
            ));
        }
        Ok(child_id)
    }

    /// A notification or a response from a session, towards the child.
    pub(crate) fn forward_other(&self, session: &SessionId, mut message: Value) {
        let method = message.get("method").and_then(Value::as_str).unwrap_or("");
        if method == "notifications/initialized" {
            // The child was initialized by the bridge, once.
            return;
        }
        let mut routing = self.routing.lock();
        if method == "notifications/cancelled" {
            let wanted = message.pointer("/params/requestId").cloned();
            let child_id = routing
                .pending
                .iter()
                .find(|(_, p)| {
                    p.session.as_ref() == Some(session) && Some(&p.original_id) == wanted.as_ref()
                })
                .map(|(id, _)| *id);
            match child_id {
                Some(id) => message["params"]["requestId"] = json!(id),
                None => return,
            }
        } else if message.get("method").is_none() {
            // A response to a server-to-client request: only from the session it was sent to.
            let key = message.get("id").map(Value::to_string).unwrap_or_default();
            match routing.server_requests.get(&key) {
                Some(owner) if owner == session => {
                    routing.server_requests.remove(&key);
                }
                _ => {
                    tracing::debug!(target_name = %self.name, "dropped an unexpected response from a session");
                    return;
                }
            }
        }
        if let Some((_, writer)) = &routing.writer {
            let _ = writer.send(message.to_string());
        }
    }

    /// Why a request cannot be sent now, with the child's last error.
    fn not_running(&self) -> String {
        let status = self.child.snapshot();
        format!(
            "the server `{}` is not running ({}){}",
            self.name,
            status.state.as_str(),
            status
                .last_error
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )
    }

    fn send_line(&self, generation: u64, message: &Value) -> Result<(), UpstreamError> {
        let routing = self.routing.lock();
        match &routing.writer {
            Some((g, writer)) if *g == generation => {
                writer
                    .send(message.to_string())
                    .map_err(|_| UpstreamError::Exited {
                        name: self.name.clone(),
                    })
            }
            _ => Err(UpstreamError::Restarted {
                name: self.name.clone(),
            }),
        }
    }

    /// Routes one line the child wrote.
    fn on_child_line(self: &Arc<Self>, generation: u64, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let message: Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) => {
                tracing::warn!(target_name = %self.name, "non-JSON line on the child's stdout: {}", truncate(line, 200));
                return;
            }
        };
        match message {
            Value::Array(batch) => {
                for message in batch {
                    self.on_child_message(generation, message);
                }
            }
            message => self.on_child_message(generation, message),
        }
    }

    fn on_child_message(self: &Arc<Self>, generation: u64, mut message: Value) {
        let has_method = message.get("method").is_some();
        let has_id = message.get("id").is_some_and(|id| !id.is_null());
        match (has_method, has_id) {
            (false, true) => {
                let Some(child_id) = message.get("id").and_then(Value::as_u64) else {
                    return;
                };
                let mut routing = self.routing.lock();
                let Some(pending) = routing.pending.remove(&child_id) else {
                    return;
                };
                if let Some(token) = &pending.progress_token {
                    routing.progress.remove(token);
                }
                message["id"] = pending.original_id;
                let key = pending.session.clone();
                let stateless = match key.as_ref().and_then(|k| routing.stateless.get_mut(k)) {
                    Some(exchange) => {
                        to_stateless_answer(&exchange.method, &mut message);
                        let waiting = std::mem::take(&mut exchange.waiting);
                        let parked = exchange.parked.is_some();
                        if parked {
                            // The client has not retried yet: its retry gets the answer.
                            exchange.finished = Some(message.clone());
                        }
                        Some((waiting, parked))
                    }
                    None => None,
                };
                if let (Some((waiting, parked)), Some(key)) = (stateless, key) {
                    for (_, id, _) in waiting {
                        refuse_child_request(&routing, &id, "the request it belonged to ended");
                    }
                    if parked {
                        return;
                    }
                    routing.stateless.remove(&key);
                }
                drop(routing);
                let _ = pending.reply.send(Outgoing::Final(message));
            }
            (true, true) => self.on_child_request(generation, message),
            (true, false) => self.on_child_notification(message),
            (false, false) => {}
        }
    }

    /// A server-to-client request (sampling, elicitation, roots, ping).
    fn on_child_request(self: &Arc<Self>, generation: u64, mut message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        if method == "ping" {
            let _ = self.send_line(
                generation,
                &json!({"jsonrpc": "2.0", "id": id, "result": {}}),
            );
            return;
        }
        let mut routing = self.routing.lock();
        // The session whose request caused it: by progress token, else the most recent session
        // with a request in flight.
        let by_token = message
            .pointer("/params/_meta/progressToken")
            .and_then(Value::as_str)
            .and_then(|t| routing.progress.get(t).cloned());
        let session = match by_token {
            Some((session, original_token, _)) => {
                message["params"]["_meta"]["progressToken"] = original_token;
                Some(session)
            }
            // (A stateless request that cannot ask its client anything is not a candidate.)
            None => routing
                .pending
                .values()
                .filter(|p| p.generation == generation)
                .filter(|p| {
                    p.session.as_ref().is_some_and(|key| {
                        routing.stateless.get(key).is_none_or(|exchange| {
                            INPUT_REQUIRED_METHODS.contains(&exchange.method.as_str())
                        })
                    })
                })
                .max_by_key(|p| p.started)
                .and_then(|p| p.session.clone()),
        };
        if let Some(key) = session
            .as_ref()
            .filter(|key| routing.stateless.contains_key(*key))
        {
            let key = key.clone();
            self.ask_stateless_client(&mut routing, &key, &method, id, message);
            return;
        }
        let delivered =
            session.filter(|session| deliver_to_session(&routing, session, message.clone(), true));
        if let Some(session) = delivered {
            routing.server_requests.insert(id.to_string(), session);
        } else {
            drop(routing);
            let _ = self.send_line(
                generation,
                &error_response(
                    &id,
                    INTERNAL_ERROR,
                    &format!("no client session can answer `{method}` now"),
                ),
            );
        }
    }

    fn on_child_notification(&self, mut message: Value) {
        let method = message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let mut routing = self.routing.lock();
        match method.as_str() {
            "notifications/progress" => {
                let token = message
                    .pointer("/params/progressToken")
                    .and_then(Value::as_str)
                    .and_then(|t| routing.progress.get(t).cloned());
                if let Some((session, original_token, child_id)) = token {
                    message["params"]["progressToken"] = original_token;
                    let on_request = routing
                        .pending
                        .get(&child_id)
                        .is_some_and(|p| p.reply.send(Outgoing::Related(message.clone())).is_ok());
                    if !on_request {
                        deliver_to_session(&routing, &session, message, false);
                    }
                }
            }
            "notifications/cancelled" => {
                let key = message
                    .pointer("/params/requestId")
                    .map(Value::to_string)
                    .unwrap_or_default();
                // A question to a stateless client that the child no longer needs.
                if let Some(cancelled) = message.pointer("/params/requestId") {
                    for exchange in routing.stateless.values_mut() {
                        exchange.waiting.retain(|(_, id, _)| id != cancelled);
                    }
                }
                if let Some(session) = routing.server_requests.get(&key).cloned() {
                    deliver_to_session(&routing, &session, message, true);
                }
            }
            "notifications/resources/updated" => {
                let uri = message
                    .pointer("/params/uri")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if let Some(sessions) = routing.subscriptions.get(uri) {
                    for session in sessions {
                        deliver_notification(&routing, session, &method, &message);
                    }
                }
            }
            _ => {
                // list_changed, logging messages and anything else: every session (and the
                // listeners that asked for it).
                for session in routing.sessions.keys() {
                    deliver_notification(&routing, session, &method, &message);
                }
                if method == "notifications/message" {
                    deliver_log_to_stateless_requests(&routing, &message);
                }
            }
        }
    }

    /// A new spawn's pipes: fail what the old spawn had in flight, connect the new one.
    fn connect(self: &Arc<Self>, pipes: ChildPipes) -> tokio::task::JoinHandle<()> {
        let generation = pipes.generation;
        let (writer_tx, writer_rx) = mpsc::unbounded_channel::<String>();
        let failed = {
            let mut routing = self.routing.lock();
            routing.writer = Some((generation, writer_tx));
            routing.server_requests.clear();
            let stale: Vec<u64> = routing
                .pending
                .iter()
                .filter(|(_, p)| p.generation < generation)
                .map(|(id, _)| *id)
                .collect();
            let mut failed = Vec::new();
            for id in stale {
                if let Some(pending) = routing.pending.remove(&id) {
                    if let Some(token) = &pending.progress_token {
                        routing.progress.remove(token);
                    }
                    failed.push(pending);
                }
            }
            failed
        };
        self.fail(failed, "restarted");
        self.link.send_replace(Link {
            generation,
            connected: true,
            initialized: false,
        });
        tokio::spawn(write_loop(pipes.stdin, writer_rx));
        let upstream = Arc::downgrade(self);
        let stdout = pipes.stdout;
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some(upstream) = upstream.upgrade() else {
                    return;
                };
                upstream.on_child_line(generation, &line);
            }
            if let Some(upstream) = upstream.upgrade() {
                upstream.disconnect(generation);
            }
        })
    }

    /// The spawn's stdout closed: it is gone; what it had in flight fails now.
    fn disconnect(&self, generation: u64) {
        let failed = {
            let mut routing = self.routing.lock();
            if routing
                .writer
                .as_ref()
                .is_some_and(|(g, _)| *g == generation)
            {
                routing.writer = None;
            }
            let stale: Vec<u64> = routing
                .pending
                .iter()
                .filter(|(_, p)| p.generation <= generation)
                .map(|(id, _)| *id)
                .collect();
            stale
                .into_iter()
                .filter_map(|id| routing.pending.remove(&id))
                .collect::<Vec<_>>()
        };
        self.link.send_if_modified(|link| {
            if link.generation == generation {
                link.connected = false;
                link.initialized = false;
                true
            } else {
                false
            }
        });
        self.fail(failed, "exited");
    }

    fn fail(&self, failed: Vec<Pending>, what: &str) {
        for pending in failed {
            let message = format!(
                "the server `{}` {what} before answering; the request was not completed (it is being restarted, retry)",
                self.name
            );
            let _ = pending.reply.send(Outgoing::Final(error_response(
                &pending.original_id,
                INTERNAL_ERROR,
                &message,
            )));
        }
    }
}

/// A log message of the child, on the streams of the stateless requests running now that
/// asked for messages of its level (2026-07-28 sends log messages only to such requests).
fn deliver_log_to_stateless_requests(routing: &Routing, message: &Value) {
    let Some(severity) = log_severity(message.pointer("/params/level")) else {
        return;
    };
    for (key, exchange) in &routing.stateless {
        let wanted = exchange.parked.is_none()
            && exchange
                .log_level
                .is_some_and(|minimum| severity >= minimum);
        if !wanted {
            continue;
        }
        let pending = routing
            .pending
            .values()
            .find(|p| p.session.as_ref() == Some(key));
        if let Some(pending) = pending {
            let _ = pending.reply.send(Outgoing::Related(message.clone()));
        }
    }
}

/// An unsolicited notification for a session, or for a listener if it opted in to it (with
/// the listen request's id in `_meta`, as 2026-07-28 wants).
fn deliver_notification(routing: &Routing, session: &SessionId, method: &str, message: &Value) {
    let listen = routing
        .sessions
        .get(session)
        .and_then(|sinks| Some((sinks.listen.as_ref()?, sinks.get_stream.as_ref()?)));
    match listen {
        Some((filter, stream)) => {
            if filter.wants(method) {
                let mut message = message.clone();
                if !message.get("params").is_some_and(Value::is_object) {
                    message["params"] = json!({});
                }
                if !message["params"].get("_meta").is_some_and(Value::is_object) {
                    message["params"]["_meta"] = json!({});
                }
                message["params"]["_meta"][meta_keys::SUBSCRIPTION_ID] =
                    filter.subscription_id.clone();
                let _ = stream.send(message);
            }
        }
        None => {
            deliver_to_session(routing, session, message.clone(), false);
        }
    }
}

/// Sends to the session's most recent request stream (`prefer_request`) or its GET stream,
/// whichever exists (GET first for unsolicited messages). False if neither took it.
fn deliver_to_session(
    routing: &Routing,
    session: &SessionId,
    message: Value,
    prefer_request: bool,
) -> bool {
    let request_stream = || {
        routing
            .pending
            .values()
            .filter(|p| p.session.as_ref() == Some(session) && !p.reply.is_closed())
            .max_by_key(|p| p.started)
            .map(|p| p.reply.clone())
    };
    let get_stream = || {
        routing
            .sessions
            .get(session)
            .and_then(|s| s.get_stream.clone())
            .filter(|tx| !tx.is_closed())
    };
    if prefer_request {
        if let Some(tx) = request_stream()
            && tx.send(Outgoing::Related(message.clone())).is_ok()
        {
            return true;
        }
        return get_stream().is_some_and(|tx| tx.send(message).is_ok());
    }
    if let Some(tx) = get_stream()
        && tx.send(message.clone()).is_ok()
    {
        return true;
    }
    request_stream().is_some_and(|tx| tx.send(Outgoing::Related(message)).is_ok())
}

/// What the child (initialized once, in a session revision) must not see of a stateless
/// request: the per-request client context (the child got one at its initialize) and the
/// multi round-trip fields.
fn strip_stateless_params(message: &mut Value) {
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    params.remove("inputResponses");
    params.remove("requestState");
    let empty = match params.get_mut("_meta").and_then(Value::as_object_mut) {
        Some(meta) => {
            for key in [
                meta_keys::PROTOCOL_VERSION,
                meta_keys::CLIENT_INFO,
                meta_keys::CLIENT_CAPABILITIES,
                meta_keys::LOG_LEVEL,
            ] {
                meta.remove(key);
            }
            meta.is_empty()
        }
        None => false,
    };
    if empty {
        params.remove("_meta");
    }
}

/// The child's answer (a session revision's) in the stateless revision's shape: results say
/// `resultType`, cacheable ones carry caching hints (never shared: `private`, stale at once),
/// and "resource not found" is the invalid-params error of that revision.
pub(crate) fn to_stateless_answer(method: &str, message: &mut Value) {
    if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
        result
            .entry("resultType")
            .or_insert_with(|| json!("complete"));
        if CACHEABLE_METHODS.contains(&method) {
            result.entry("ttlMs").or_insert_with(|| json!(0));
            result
                .entry("cacheScope")
                .or_insert_with(|| json!("private"));
        }
    }
    if let Some(code) = message.pointer_mut("/error/code")
        && code.as_i64() == Some(-32002)
    {
        *code = json!(INVALID_PARAMS);
    }
}

/// Writes a message to the current spawn of the child.
fn write_to_child(routing: &Routing, message: &Value) {
    if let Some((_, writer)) = &routing.writer {
        let _ = writer.send(message.to_string());
    }
}

/// Answers one of the child's server-to-client requests with an error.
fn refuse_child_request(routing: &Routing, id: &Value, reason: &str) {
    write_to_child(routing, &error_response(id, INVALID_REQUEST, reason));
}

/// Forgets a request in flight and tells the child (the same spawn) to cancel it.
fn cancel_pending(routing: &mut Routing, child_id: u64, reason: &str) {
    let Some(pending) = routing.pending.remove(&child_id) else {
        return;
    };
    if let Some(token) = &pending.progress_token {
        routing.progress.remove(token);
    }
    if let Some((generation, writer)) = &routing.writer
        && *generation == pending.generation
    {
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": child_id, "reason": reason}});
        let _ = writer.send(cancel.to_string());
    }
}

/// Gives up on a parked stateless request (its client did not retry in time, or is gone):
/// the child's questions are refused and its request cancelled.
fn expire_parked(routing: &mut Routing, state: &str, reason: &str) {
    let Some(key) = routing.request_states.remove(state) else {
        return;
    };
    if let Some(exchange) = routing.stateless.remove(&key) {
        for (_, id, _) in exchange.waiting {
            refuse_child_request(routing, &id, reason);
        }
    }
    let child_id = routing
        .pending
        .iter()
        .find(|(_, p)| p.session.as_ref() == Some(&key))
        .map(|(id, _)| *id);
    if let Some(child_id) = child_id {
        cancel_pending(routing, child_id, reason);
    }
}

async fn write_loop(
    mut stdin: tokio::process::ChildStdin,
    mut lines: mpsc::UnboundedReceiver<String>,
) {
    while let Some(mut line) = lines.recv().await {
        line.push('\n');
        if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

async fn io_loop(
    upstream: std::sync::Weak<Upstream>,
    mut pipes: mpsc::UnboundedReceiver<ChildPipes>,
) {
    while let Some(next) = pipes.recv().await {
        let Some(strong) = upstream.upgrade() else {
            return;
        };
        let generation = next.generation;
        strong.connect(next);
        let has_handshake = strong.handshake.lock().is_some();
        if has_handshake {
            // A restarted child: initialize it again from the cached handshake at once, so
            // sessions re-attach without waiting for their next request.
            let upstream = strong.clone();
            tokio::spawn(async move {
                let deadline = Instant::now() + upstream.request_timeout;
                if let Err(e) = upstream.handshake_generation(generation, deadline).await {
                    tracing::warn!(target_name = %upstream.name, "re-initializing the restarted child: {e}");
                }
            });
        }
    }
}

/// A JSON-RPC error response.
pub(crate) fn error_response(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn error_message(response: &Value) -> String {
    response
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_owned()
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

#[cfg(test)]
mod error_text_tests {
    use super::UpstreamError;

    /// The typed errors read as the strings they replaced (clients and tests match on them).
    #[test]
    fn upstream_errors_keep_their_text() {
        let name = || "everything".to_owned();
        let cases = [
            (
                UpstreamError::NotRunning {
                    name: name(),
                    state: "crash_loop",
                    last: Some("exited with code 1".into()),
                },
                "the server `everything` is not running (crash_loop): exited with code 1",
            ),
            (
                UpstreamError::StartTimeout {
                    name: name(),
                    secs: 30,
                    last: None,
                },
                "the server `everything` did not start within 30s",
            ),
            (
                UpstreamError::StartTimeout {
                    name: name(),
                    secs: 30,
                    last: Some("boom".into()),
                },
                "the server `everything` did not start within 30s (last error: boom)",
            ),
            (
                UpstreamError::NoAnswer {
                    name: name(),
                    method: "initialize".into(),
                    secs: 5,
                },
                "the server `everything` did not answer initialize within 5s",
            ),
            (
                UpstreamError::Stopped { name: name() },
                "the server `everything` is stopped",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
    }
}
