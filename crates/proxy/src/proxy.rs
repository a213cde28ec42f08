//! The proxy's core: one loop that owns every piece of state (pending requests, the link, the
//! queue of messages waiting for a link, the cached handshake) and reacts to stdin lines, link
//! events, attach outcomes, signals and deadlines. Nothing is shared, so nothing is locked.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use msm_core::config::ProxySettings;
use msm_core::{Config, StateDir, header_codec, headers};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

use crate::discovery::{DiscoverySettings, discover};
use crate::http::{HttpClient, new_client};
use crate::jsonrpc::{self, IdKey, Inspected, Kind};
use crate::param_headers::ParamHeaders;
use crate::stdin_lines::{StdinItem, spawn_stdin_reader};
use crate::transport::{
    Failure, INTERNAL_ID_PREFIX, LegacySse, LinkContext, LinkEvent, Outgoing, StreamableHttp,
    Transport,
};

/// How often a message that never reached the target is sent again (each time after a fresh
/// attach) before the client gets an error.
const MAX_ATTEMPTS: u8 = 3;

/// How long later messages wait behind `notifications/initialized` at most.
const BARRIER_WAIT: Duration = Duration::from_secs(5);

/// Everything `run` needs, resolved from the command line and the environment.
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    pub state: StateDir,
    pub target: String,
    /// Absolute project directory, sent as `Mcp-Project-Path`.
    pub project: PathBuf,
    /// This process's `Mcp-Proxy-Instance`.
    pub instance: uuid::Uuid,
}

/// Runs the proxy until stdin closes or SIGTERM/SIGHUP arrives and every pending request is
/// answered; the exit code is 0 then.
pub async fn run(options: ProxyOptions) -> i32 {
    let settings = Config::load(&options.state.config_path())
        .map(|c| c.proxy)
        .unwrap_or_else(|e| {
            tracing::error!("{e}");
            ProxySettings::default()
        });
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
    spawn_stdin_reader(settings.max_line_bytes, stdin_tx);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (attach_tx, attach_rx) = mpsc::unbounded_channel();
    let mut proxy = Proxy {
        discovery: DiscoverySettings {
            state: options.state.clone(),
            target: options.target.clone(),
        },
        common_headers: common_headers(&options),
        settings,
        client: new_client(),
        out: Output::default(),
        events_tx,
        attach_tx,
        link: Link::Idle,
        generation: 0,
        description: format!("target `{}`", options.target),
        last_attach_error: None,
        queue: VecDeque::new(),
        barrier: None,
        pending: HashMap::new(),
        progress: HashMap::new(),
        handshake: Handshake::default(),
        protocol_version: Arc::new(Mutex::new(None)),
        param_headers: ParamHeaders::default(),
        shutting_down: false,
    };
    // Attach at once: the first request then finds the link ready.
    proxy.start_attach();
    proxy.main_loop(stdin_rx, events_rx, attach_rx).await;
    0
}

fn common_headers(options: &ProxyOptions) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    match HeaderValue::from_bytes(options.project.as_os_str().as_encoded_bytes()) {
        Ok(value) => {
            map.insert(headers::PROJECT_PATH, value);
        }
        Err(_) => tracing::warn!(
            "project path {} cannot be sent as a header",
            options.project.display()
        ),
    }
    if let Ok(value) = HeaderValue::from_str(&options.instance.to_string()) {
        map.insert(headers::PROXY_INSTANCE, value);
    }
    map
}

enum Link {
    /// No link; the next message starts an attach.
    Idle,
    Attaching,
    Ready(Arc<dyn Transport>),
}

struct Pending {
    deadline: Instant,
    progress_token: Option<IdKey>,
    /// A `tools/list`: its answer teaches [`ParamHeaders`].
    lists_tools: bool,
    /// The POST carrying a stateless (2026-07-28) request.
    stateless_post: Option<tokio::task::AbortHandle>,
}

/// The client's initialize handshake, replayed on every re-attach once it has succeeded.
#[derive(Default, Clone)]
struct Handshake {
    /// The client's initialize in flight: its id and the message.
    candidate: Option<(IdKey, Bytes)>,
    /// The initialize the target accepted.
    initialize: Option<Bytes>,
    initialized: Option<Bytes>,
}

struct AttachOutcome {
    generation: u64,
    result: Result<(Arc<dyn Transport>, String), String>,
}

struct Proxy {
    discovery: DiscoverySettings,
    common_headers: HeaderMap,
    settings: ProxySettings,
    client: HttpClient,
    out: Output,
    events_tx: UnboundedSender<LinkEvent>,
    attach_tx: UnboundedSender<AttachOutcome>,
    link: Link,
    generation: u64,
    /// Which target, where, which log: the tail of every error message.
    description: String,
    last_attach_error: Option<String>,
    /// Messages waiting for a link (or for a barrier to pass).
    queue: VecDeque<Outgoing>,
    /// A barrier message is in flight since then: later messages wait (at most
    /// [`BARRIER_WAIT`], in case its POST never ends).
    barrier: Option<Instant>,
    pending: HashMap<IdKey, Pending>,
    /// Progress token -> the request it belongs to.
    progress: HashMap<IdKey, IdKey>,
    handshake: Handshake,
    protocol_version: Arc<Mutex<Option<HeaderValue>>>,
    param_headers: ParamHeaders,
    shutting_down: bool,
}

impl Proxy {
    async fn main_loop(
        &mut self,
        mut stdin: UnboundedReceiver<StdinItem>,
        mut events: UnboundedReceiver<LinkEvent>,
        mut attaches: UnboundedReceiver<AttachOutcome>,
    ) {
        let mut signals = crate::signals::Shutdown::new();
        let mut stdin_open = true;
        loop {
            // Leaving waits for answers, not for an attach nobody needs any more.
            if self.shutting_down && self.pending.is_empty() {
                break;
            }
            let next_deadline = self
                .pending
                .values()
                .map(|p| p.deadline)
                .chain(self.barrier)
                .min();
            tokio::select! {
                item = stdin.recv(), if stdin_open => match item {
                    Some(StdinItem::Line(line)) => self.client_line(Bytes::from(line)),
                    Some(StdinItem::Oversized { length, prefix }) => self.oversized(length, &prefix),
                    Some(StdinItem::Eof) | None => {
                        tracing::info!("stdin closed: finishing {} pending request(s)", self.pending.len());
                        stdin_open = false;
                        self.shutting_down = true;
                    }
                },
                Some(event) = events.recv() => self.link_event(event),
                Some(outcome) = attaches.recv() => self.attach_done(outcome),
                count = signals.recv() => {
                    if count > 1 {
                        tracing::warn!("second termination signal: giving up on pending requests");
                        self.fail_all_pending("the proxy was terminated before the answer came");
                        break;
                    }
                    tracing::info!("termination signal: finishing {} pending request(s)", self.pending.len());
                    self.shutting_down = true;
                }
                _ = sleep_until(next_deadline), if next_deadline.is_some() => {
                    if self.barrier.is_some_and(|until| until <= Instant::now()) {
                        tracing::warn!("no end to the POST of the initialize handshake: sending on");
                        self.barrier = None;
                        self.flush_queue();
                    }
                    self.expire();
                }
            }
            if self.out.broken {
                tracing::info!("stdout is closed: the client is gone");
                break;
            }
        }
        if let Link::Ready(transport) = std::mem::replace(&mut self.link, Link::Idle) {
            transport.close().await;
        }
    }

    fn client_line(&mut self, line: Bytes) {
        let inspected = match jsonrpc::inspect(&line) {
            Ok(inspected) => inspected,
            Err(e) => {
                tracing::warn!("malformed line from the client: {e}");
                self.out.write(&jsonrpc::error_response(
                    None,
                    jsonrpc::PARSE_ERROR,
                    &format!(
                        "Parse error: mcp-session-proxy received a line that is not JSON-RPC ({e})"
                    ),
                    None,
                ));
                return;
            }
        };
        if self.shutting_down && inspected.iter().any(|m| m.request_id().is_some()) {
            // Refused whole: a request sent now would run with nobody left to hear its answer.
            for id in inspected.iter().filter_map(Inspected::request_id) {
                self.out.write(&jsonrpc::error_response(
                    Some(id),
                    jsonrpc::TARGET_UNAVAILABLE,
                    "mcp-session-proxy is shutting down and takes no new requests",
                    None,
                ));
            }
            return;
        }
        let mut requests = Vec::new();
        let mut barrier = false;
        for message in &inspected {
            match &message.kind {
                Kind::Request { id, method } => {
                    if method == "initialize" && inspected.len() == 1 {
                        self.handshake.candidate = Some((id.clone(), line.clone()));
                        // What the client sends before the answer needs the session it opens.
                        barrier = true;
                    }
                    self.pending.insert(
                        id.clone(),
                        Pending {
                            deadline: Instant::now() + self.request_timeout(),
                            progress_token: message.progress_token.clone(),
                            lists_tools: method == "tools/list",
                            stateless_post: None,
                        },
                    );
                    if let Some(token) = &message.progress_token {
                        self.progress.insert(token.clone(), id.clone());
                    }
                    requests.push(id.clone());
                }
                Kind::Notification { method } => {
                    if method == "notifications/initialized" && inspected.len() == 1 {
                        self.handshake.initialized = Some(line.clone());
                        barrier = true;
                    }
                    if method == "notifications/cancelled"
                        && let Some(id) = &message.cancelled_request
                        && let Some(pending) = self.pending.remove(id)
                    {
                        if let Some(token) = pending.progress_token {
                            self.progress.remove(&token);
                        }
                        // The 2026 HTTP wire has no client notifications: a cancel closes the
                        // request's own connection instead.
                        if let Some(post) = pending.stateless_post
                            && inspected.len() == 1
                        {
                            post.abort();
                            tracing::debug!(
                                id = id.as_json_text(),
                                "cancelled by closing its POST"
                            );
                            return;
                        }
                    }
                }
                Kind::Response { .. } => {}
            }
        }
        let routing = match inspected.as_slice() {
            [single] => {
                let mut routing = routing_headers(single);
                if single.protocol_version.is_some()
                    && single.method() == Some("tools/call")
                    && let Some(tool) = &single.name
                {
                    self.param_headers.add_headers(tool, &line, &mut routing);
                }
                routing
            }
            _ => HeaderMap::new(),
        };
        let method = match inspected.as_slice() {
            [single] => single.method().map(str::to_owned),
            _ => None,
        };
        self.dispatch(Outgoing {
            body: line,
            requests,
            method,
            routing,
            attempts: 0,
            barrier,
        });
    }

    fn oversized(&mut self, length: usize, prefix: &[u8]) {
        let id = jsonrpc::sniff_id(prefix);
        tracing::warn!(length, "refused a line over [proxy] max_line_bytes");
        self.out.write(&jsonrpc::error_response(
            id.as_ref(),
            jsonrpc::INVALID_REQUEST,
            &format!(
                "mcp-session-proxy refused a message of {length} bytes: the limit is {} bytes ([proxy] max_line_bytes in {})",
                self.settings.max_line_bytes,
                self.discovery.state.config_path().display()
            ),
            None,
        ));
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.settings.request_timeout_secs.max(1))
    }

    fn dispatch(&mut self, message: Outgoing) {
        match &self.link {
            Link::Ready(_) => {
                self.queue.push_back(message);
                self.flush_queue();
            }
            Link::Attaching => self.queue.push_back(message),
            Link::Idle => {
                self.queue.push_back(message);
                self.start_attach();
            }
        }
    }

    fn flush_queue(&mut self) {
        let Link::Ready(transport) = &self.link else {
            return;
        };
        while self.barrier.is_none() {
            let Some(message) = self.queue.pop_front() else {
                break;
            };
            if !message.requests.is_empty()
                && message
                    .requests
                    .iter()
                    .all(|id| !self.pending.contains_key(id))
            {
                continue; // every request in it timed out or was cancelled meanwhile
            }
            if message.barrier {
                // An initialize holds the line until its answer (or its timeout): a server may
                // take long to start; a notification's POST ends at once or never.
                let wait = if message.method.as_deref() == Some("initialize") {
                    self.request_timeout()
                } else {
                    BARRIER_WAIT
                };
                self.barrier = Some(Instant::now() + wait);
            }
            // A stateless request is cancelled by dropping its POST: keep the handle.
            let stateless_request = match message.requests.as_slice() {
                [id] if message.routing.contains_key(headers::MCP_METHOD) => Some(id.clone()),
                _ => None,
            };
            let task = transport.send(message);
            if let Some(id) = stateless_request
                && let Some(pending) = self.pending.get_mut(&id)
            {
                pending.stateless_post = Some(task);
            }
        }
    }

    fn start_attach(&mut self) {
        if let Link::Ready(old) = std::mem::replace(&mut self.link, Link::Attaching) {
            tokio::spawn(async move { old.close().await });
        }
        self.barrier = None;
        self.generation += 1;
        let generation = self.generation;
        let context = LinkContext {
            client: self.client.clone(),
            events: self.events_tx.clone(),
            generation,
            base_headers: self.common_headers.clone(),
            protocol_version: self.protocol_version.clone(),
        };
        let discovery = self.discovery.clone();
        let handshake = self.handshake.clone();
        let outcomes = self.attach_tx.clone();
        tracing::debug!(generation, "attaching");
        tokio::spawn(async move {
            let result = attach(context, &discovery, handshake, generation).await;
            let _ = outcomes.send(AttachOutcome { generation, result });
        });
    }

    fn attach_done(&mut self, outcome: AttachOutcome) {
        if outcome.generation != self.generation {
            if let Ok((stale, _)) = outcome.result {
                tokio::spawn(async move { stale.close().await });
            }
            return;
        }
        match outcome.result {
            Ok((transport, description)) => {
                tracing::info!("attached to {description}");
                self.description = description;
                self.last_attach_error = None;
                self.link = Link::Ready(transport);
                self.flush_queue();
            }
            Err(error) => {
                tracing::error!("{error}");
                self.link = Link::Idle;
                let queued: Vec<Outgoing> = self.queue.drain(..).collect();
                for message in queued {
                    for id in &message.requests {
                        self.answer_error(
                            id,
                            jsonrpc::TARGET_UNAVAILABLE,
                            &format!("mcp-session-proxy cannot reach its target: {error}"),
                        );
                    }
                }
                self.last_attach_error = Some(error);
            }
        }
    }

    fn link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::FromServer(bytes) => self.server_message(bytes),
            LinkEvent::Delivered { generation } => {
                if generation == self.generation {
                    self.barrier = None;
                    self.flush_queue();
                }
            }
            LinkEvent::Failed {
                generation,
                message,
                failure,
            } => self.failed(generation, message, failure),
            LinkEvent::Down {
                generation,
                reason,
                lost,
            } => {
                for id in &lost {
                    self.answer_error(
                        id,
                        jsonrpc::ANSWER_LOST,
                        &format!(
                            "the request may have reached {} but its answer was lost ({reason}); it was not sent again in case it is not safe to run twice",
                            self.description
                        ),
                    );
                }
                if generation == self.generation && matches!(self.link, Link::Ready(_)) {
                    tracing::warn!(
                        "link to {} is down ({reason}): re-attaching",
                        self.description
                    );
                    self.start_attach();
                }
            }
        }
    }

    fn failed(&mut self, generation: u64, mut message: Outgoing, failure: Failure) {
        if message.barrier && generation == self.generation {
            self.barrier = None;
        }
        let still_pending = message
            .requests
            .iter()
            .any(|id| self.pending.contains_key(id));
        // 401: the token may have been replaced (a new host); re-attaching reads it again.
        let retry = matches!(
            failure,
            Failure::NotReached(_) | Failure::SessionGone | Failure::Rejected { status: 401, .. }
        ) && message.attempts + 1 < MAX_ATTEMPTS
            && (still_pending || message.requests.is_empty());
        if retry {
            tracing::info!(
                ?failure,
                "message did not reach {}: re-attaching and sending it again",
                self.description
            );
            message.attempts += 1;
            self.queue.push_back(message);
            match &self.link {
                Link::Ready(_) if generation == self.generation => self.start_attach(),
                Link::Ready(_) => self.flush_queue(),
                Link::Attaching => {}
                Link::Idle => self.start_attach(),
            }
            return;
        }
        let (code, text) = match &failure {
            Failure::NotReached(e) => (
                jsonrpc::TARGET_UNAVAILABLE,
                format!(
                    "mcp-session-proxy could not deliver the request to {}: {e}",
                    self.description
                ),
            ),
            Failure::SessionGone => (
                jsonrpc::TARGET_UNAVAILABLE,
                format!(
                    "{} keeps forgetting the session; the request was not processed",
                    self.description
                ),
            ),
            Failure::MayHaveReached(e) => (
                jsonrpc::ANSWER_LOST,
                format!(
                    "the request may have reached {} but its answer was lost ({e}); it was not sent again in case it is not safe to run twice",
                    self.description
                ),
            ),
            Failure::Rejected { status, detail } => (
                jsonrpc::TARGET_UNAVAILABLE,
                format!(
                    "{} refused the request with HTTP {status}: {detail}",
                    self.description
                ),
            ),
        };
        if message.requests.is_empty() {
            tracing::warn!("{text}");
        }
        for id in &message.requests {
            self.answer_error(id, code, &text);
        }
        self.flush_queue();
    }

    fn server_message(&mut self, bytes: Bytes) {
        match jsonrpc::inspect(&bytes) {
            Ok(inspected) => {
                let mut forward = false;
                for message in &inspected {
                    forward |= self.note_server_message(message, &bytes, inspected.len() == 1);
                }
                if !forward {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!("the target sent something that is not JSON-RPC: {e}");
                return;
            }
        }
        self.out.write(&jsonrpc::single_line(&bytes));
    }

    /// Bookkeeping for one server message; whether the client should see it.
    fn note_server_message(&mut self, message: &Inspected, bytes: &Bytes, single: bool) -> bool {
        match &message.kind {
            Kind::Response { id: Some(id) } => {
                if id
                    .as_json_text()
                    .starts_with(&format!("\"{INTERNAL_ID_PREFIX}"))
                {
                    return false;
                }
                let Some(pending) = self.pending.remove(id) else {
                    tracing::debug!(
                        id = id.as_json_text(),
                        "answer to no pending request (timed out?): dropped"
                    );
                    return false;
                };
                if let Some(token) = pending.progress_token {
                    self.progress.remove(&token);
                }
                if pending.lists_tools {
                    self.param_headers.learn(bytes);
                }
                if single
                    && let Some((candidate, init)) = &self.handshake.candidate
                    && candidate == id
                {
                    if let Some(version) = jsonrpc::negotiated_version(bytes) {
                        if let Ok(value) = HeaderValue::from_str(&version) {
                            *crate::transport::lock(&self.protocol_version) = Some(value);
                        }
                        self.handshake.initialize = Some(init.clone());
                        self.handshake.initialized = None;
                    }
                    self.handshake.candidate = None;
                }
                true
            }
            Kind::Response { id: None } => true,
            Kind::Notification { method } => {
                let timeout = self.request_timeout();
                if method == "notifications/progress"
                    && let Some(token) = &message.progress_token
                    && let Some(request) = self.progress.get(token)
                    && let Some(pending) = self.pending.get_mut(request)
                {
                    pending.deadline = Instant::now() + timeout;
                }
                true
            }
            Kind::Request { .. } => true,
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<IdKey> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let waited = self.settings.request_timeout_secs;
            let mut text = format!(
                "no answer from {} within {waited} s ([proxy] request_timeout_secs in {})",
                self.description,
                self.discovery.state.config_path().display()
            );
            if let Some(error) = &self.last_attach_error {
                text.push_str(&format!("; last error: {error}"));
            }
            self.answer_error(&id, jsonrpc::REQUEST_TIMEOUT, &text);
        }
    }

    /// Answers a pending request with an error (once: it stops being pending).
    fn answer_error(&mut self, id: &IdKey, code: i64, text: &str) {
        if let Some(pending) = self.pending.remove(id)
            && let Some(token) = pending.progress_token
        {
            self.progress.remove(&token);
        }
        self.out.write(&jsonrpc::error_response(
            Some(id),
            code,
            text,
            Some(serde_json::json!({ "target": self.discovery.target })),
        ));
    }

    fn fail_all_pending(&mut self, text: &str) {
        let ids: Vec<IdKey> = self.pending.keys().cloned().collect();
        for id in ids {
            self.answer_error(&id, jsonrpc::TARGET_UNAVAILABLE, text);
        }
    }
}

/// Discovery, the transport, and (on a re-attach) the replayed handshake.
async fn attach(
    mut context: LinkContext,
    discovery: &DiscoverySettings,
    handshake: Handshake,
    generation: u64,
) -> Result<(Arc<dyn Transport>, String), String> {
    let endpoint = discover(&context.client, discovery)
        .await
        .map_err(|e| e.to_string())?;
    for (name, value) in &endpoint.headers {
        context.base_headers.insert(name.clone(), value.clone());
    }
    let describe = |e: String| format!("{}: {e}", endpoint.description);
    let transport: Arc<dyn Transport> = match endpoint.transport {
        msm_core::Transport::Sse => Arc::new(
            LegacySse::connect(context, endpoint.url.clone())
                .await
                .map_err(describe)?,
        ),
        msm_core::Transport::Http => {
            Arc::new(StreamableHttp::new(context, endpoint.url.clone(), true))
        }
        msm_core::Transport::StreamableHttp | msm_core::Transport::Stdio => {
            Arc::new(StreamableHttp::new(context, endpoint.url.clone(), false))
        }
    };
    if let Some(initialize) = handshake.initialize {
        let replay_id = format!("{INTERNAL_ID_PREFIX}replay-{generation}");
        let message = jsonrpc::with_id(&initialize, &replay_id)
            .ok_or_else(|| describe("the cached initialize cannot be replayed".into()))?;
        transport
            .replay_handshake(Bytes::from(message), handshake.initialized)
            .await
            .map_err(|e| describe(format!("replaying the initialize handshake failed: {e}")))?;
        tracing::info!(
            "replayed the initialize handshake on {}",
            endpoint.description
        );
    }
    Ok((transport, endpoint.description))
}

/// The stateless revision (2026-07-28) routes on headers that mirror the body.
fn routing_headers(message: &Inspected) -> HeaderMap {
    let mut map = HeaderMap::new();
    let Some(version) = &message.protocol_version else {
        return map;
    };
    let Some(method) = message.method() else {
        return map;
    };
    if let Ok(value) = HeaderValue::from_str(version) {
        map.insert(headers::PROTOCOL_VERSION, value);
    }
    if let Ok(value) = HeaderValue::from_str(method) {
        map.insert(headers::MCP_METHOD, value);
    }
    if let Some(name) = &message.name
        && let Ok(value) = HeaderValue::from_str(&header_codec::encode(name))
    {
        map.insert(headers::MCP_NAME, value);
    }
    map
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Stdout carries only JSON-RPC, one message a line, each written whole and flushed at once.
#[derive(Default)]
struct Output {
    buffer: Vec<u8>,
    /// The client closed its end.
    broken: bool,
}

impl Output {
    fn write(&mut self, message: &[u8]) {
        if self.broken {
            return;
        }
        self.buffer.clear();
        self.buffer.extend_from_slice(message);
        self.buffer.push(b'\n');
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = stdout.write_all(&self.buffer).and_then(|()| stdout.flush()) {
            tracing::warn!("writing to stdout failed: {e}");
            self.broken = true;
        }
        if self.buffer.capacity() > 1 << 20 {
            self.buffer = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateless_requests_get_routing_headers() {
        let message = &jsonrpc::inspect(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        )
        .unwrap()[0];
        let map = routing_headers(message);
        assert_eq!(map[headers::MCP_METHOD], "tools/call");
        assert_eq!(map[headers::MCP_NAME], "echo");
        assert_eq!(map[headers::PROTOCOL_VERSION], "2026-07-28");
        let session =
            &jsonrpc::inspect(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap()[0];
        assert!(routing_headers(session).is_empty());
    }
}
