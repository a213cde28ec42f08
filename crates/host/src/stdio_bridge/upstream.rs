//! One stdio child and the JSON-RPC routing between it and the sessions that share it: request
//! ids and progress tokens rewritten per session (so they never collide), answers routed back,
//! server-to-client requests sent to the session that caused them, notifications fanned out.
//! The child is initialized once per spawn from a cached handshake; when it dies, in-flight
//! requests get an error and the restarted child is initialized again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};

use crate::TargetState;
use crate::supervisor::{ChildPipes, SupervisedChild};

/// A session id as handed out in `Mcp-Session-Id`.
pub(crate) type SessionId = Arc<str>;

/// JSON-RPC "internal error", used for a child that died or is not answering.
pub(crate) const INTERNAL_ERROR: i64 = -32603;
pub(crate) const INVALID_REQUEST: i64 = -32600;

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

#[derive(Default)]
struct SessionSinks {
    /// The session's standalone `GET` stream, when open.
    get_stream: Option<mpsc::UnboundedSender<Value>>,
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
}

impl Upstream {
    /// Takes over a supervised child whose pipes arrive on `pipes`.
    pub(crate) fn new(
        name: String,
        child: SupervisedChild,
        pipes: mpsc::UnboundedReceiver<ChildPipes>,
        request_timeout: Duration,
    ) -> Arc<Upstream> {
        let upstream = Arc::new(Upstream {
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

    /// Requests sent to the child and not answered yet.
    #[cfg(test)]
    pub(crate) fn pending_requests(&self) -> usize {
        self.routing.lock().pending.len()
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
    ) -> Result<Value, String> {
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
            .ok_or_else(|| format!("the server `{}` is not initialized", self.name))
    }

    /// Waits until the current spawn is connected and initialized (handshaking if needed).
    async fn wait_initialized(self: &Arc<Self>, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let mut link_rx = self.link.subscribe();
        let mut last_error: Option<String> = None;
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
                        last_error = Some(e);
                        if Instant::now() >= deadline {
                            return Err(last_error.unwrap_or_default());
                        }
                        let _ = tokio::time::timeout(Duration::from_millis(250), link_rx.changed())
                            .await;
                        continue;
                    }
                }
            }
            let status = self.child.snapshot();
            if matches!(status.state, TargetState::CrashLoop | TargetState::Stopped) {
                return Err(format!(
                    "the server `{}` is not running ({}){}",
                    self.name,
                    status.state.as_str(),
                    status
                        .last_error
                        .or(last_error)
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ));
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            let changed =
                tokio::time::timeout(wait.min(Duration::from_millis(250)), link_rx.changed()).await;
            if Instant::now() >= deadline {
                return Err(format!(
                    "the server `{}` did not start within {}s{}",
                    self.name,
                    timeout.as_secs(),
                    status
                        .last_error
                        .or(last_error)
                        .map(|e| format!(" (last error: {e})"))
                        .unwrap_or_default()
                ));
            }
            if let Ok(Err(_)) = changed {
                return Err(format!("the server `{}` is gone", self.name));
            }
        }
    }

    /// Sends the cached initialize to spawn `generation` (once), then `initialized` and the
    /// subscriptions sessions hold.
    async fn handshake_generation(
        self: &Arc<Self>,
        generation: u64,
        deadline: Instant,
    ) -> Result<(), String> {
        let _guard = self.handshake_lock.lock().await;
        let link = *self.link.borrow();
        if link.generation != generation || link.initialized {
            return Ok(());
        }
        let Some(params) = self.handshake.lock().as_ref().map(|h| h.params.clone()) else {
            return Err("no client has initialized yet".into());
        };
        let timeout = deadline.saturating_duration_since(Instant::now());
        let answer = self.call("initialize", params, timeout).await?;
        if let Some(error) = answer.get("error") {
            return Err(format!(
                "the server `{}` refused initialize: {}",
                self.name,
                error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            ));
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
    async fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let message = json!({"jsonrpc": "2.0", "id": 0, "method": method, "params": params});
        self.send_request(None, message, tx)
            .map_err(|e| error_message(&e))?;
        match tokio::time::timeout(timeout, rx.recv()).await {
            Ok(Some(Outgoing::Final(answer))) => Ok(answer),
            Ok(_) => Err(format!("the server `{}` ended during {method}", self.name)),
            Err(_) => Err(format!(
                "the server `{}` did not answer {method} within {}s",
                self.name,
                timeout.as_secs()
            )),
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
        if let Err(e) = self.wait_initialized(self.request_timeout).await {
            let _ = reply.send(Outgoing::Final(error_response(
                &original_id,
                INTERNAL_ERROR,
                &e,
            )));
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
                self.cancel_if_pending(child_id);
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

    /// Forgets a request whose client is gone and tells the child to cancel it.
    fn cancel_if_pending(&self, child_id: u64) {
        let mut routing = self.routing.lock();
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
                "params": {"requestId": child_id, "reason": "the client went away"}});
            let _ = writer.send(cancel.to_string());
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

    fn send_line(&self, generation: u64, message: &Value) -> Result<(), String> {
        let routing = self.routing.lock();
        match &routing.writer {
            Some((g, writer)) if *g == generation => writer
                .send(message.to_string())
                .map_err(|_| format!("the server `{}` exited", self.name)),
            _ => Err(format!("the server `{}` restarted", self.name)),
        }
    }

    /// Routes one line the child wrote.
    fn on_child_line(&self, generation: u64, line: &str) {
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

    fn on_child_message(&self, generation: u64, mut message: Value) {
        let has_method = message.get("method").is_some();
        let has_id = message.get("id").is_some_and(|id| !id.is_null());
        match (has_method, has_id) {
            (false, true) => {
                let Some(child_id) = message.get("id").and_then(Value::as_u64) else {
                    return;
                };
                let pending = {
                    let mut routing = self.routing.lock();
                    let pending = routing.pending.remove(&child_id);
                    if let Some(token) = pending.as_ref().and_then(|p| p.progress_token.clone()) {
                        routing.progress.remove(&token);
                    }
                    pending
                };
                if let Some(pending) = pending {
                    message["id"] = pending.original_id;
                    let _ = pending.reply.send(Outgoing::Final(message));
                }
            }
            (true, true) => self.on_child_request(generation, message),
            (true, false) => self.on_child_notification(message),
            (false, false) => {}
        }
    }

    /// A server-to-client request (sampling, elicitation, roots, ping).
    fn on_child_request(&self, generation: u64, mut message: Value) {
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
            None => routing
                .pending
                .values()
                .filter(|p| p.session.is_some() && p.generation == generation)
                .max_by_key(|p| p.started)
                .and_then(|p| p.session.clone()),
        };
        let delivered = session
            .as_ref()
            .is_some_and(|session| deliver_to_session(&routing, session, message.clone(), true));
        if delivered {
            routing
                .server_requests
                .insert(id.to_string(), session.expect("delivered to a session"));
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
        let routing = self.routing.lock();
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
                        deliver_to_session(&routing, session, message.clone(), false);
                    }
                }
            }
            _ => {
                // list_changed, logging messages and anything else: every session.
                for session in routing.sessions.keys() {
                    deliver_to_session(&routing, session, message.clone(), false);
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
