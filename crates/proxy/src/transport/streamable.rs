//! Streamable HTTP (every revision) and plain JSON POST: one POST per message, answered with
//! JSON, an SSE stream or 202; `Mcp-Session-Id` captured and sent back; the GET stream opened
//! once the session is initialised (405 tolerated); SSE streams resumed with `Last-Event-ID`;
//! `DELETE` on close.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use msm_core::headers;

use super::{Failure, LinkContext, LinkEvent, Outgoing, Transport, is_internal_answer, lock};
use crate::http::{SendError, error_chain, read_body, send};
use crate::jsonrpc::{self, IdKey, Kind};
use crate::sse;

/// How many times a dropped SSE stream is resumed before its requests are given up.
const RESUME_ATTEMPTS: u32 = 5;

/// A streamable HTTP link; `plain` turns it into plain JSON POST (no session, no streams).
pub struct StreamableHttp {
    inner: Arc<Inner>,
}

struct Inner {
    link: LinkContext,
    url: Uri,
    plain: bool,
    session_id: Mutex<Option<HeaderValue>>,
    stream_task: Mutex<Option<tokio::task::AbortHandle>>,
    closed: AtomicBool,
}

impl StreamableHttp {
    pub fn new(link: LinkContext, url: Uri, plain: bool) -> StreamableHttp {
        StreamableHttp {
            inner: Arc::new(Inner {
                link,
                url,
                plain,
                session_id: Mutex::new(None),
                stream_task: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        }
    }
}

impl Transport for StreamableHttp {
    fn send(&self, message: Outgoing) -> tokio::task::AbortHandle {
        let inner = self.inner.clone();
        tokio::spawn(async move { inner.deliver(message).await }).abort_handle()
    }

    fn replay_handshake(
        &self,
        initialize: Bytes,
        initialized: Option<Bytes>,
    ) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let inner = &self.inner;
            let headers = inner.headers(None, None);
            let response = send(
                &inner.link.client,
                Method::POST,
                &inner.url,
                &headers,
                initialize,
            )
            .await
            .map_err(|e| e.to_string())?;
            inner.capture_session(&response);
            let status = response.status();
            let answer = if is_event_stream(&response) {
                first_answer_on_stream(response).await?
            } else {
                read_body(response, 1 << 20).await?
            };
            if !status.is_success() {
                return Err(format!(
                    "initialize replay answered HTTP {status}: {}",
                    String::from_utf8_lossy(&answer)
                ));
            }
            if answer.windows(8).any(|w| w == b"\"error\":") {
                return Err(format!(
                    "initialize replay refused: {}",
                    String::from_utf8_lossy(&answer)
                ));
            }
            if let Some(version) = jsonrpc::negotiated_version(&answer) {
                inner.link.set_protocol_version(&version);
            }
            if let Some(initialized) = initialized {
                let session = inner.session();
                let headers = inner.headers(session.as_ref(), None);
                let response = send(
                    &inner.link.client,
                    Method::POST,
                    &inner.url,
                    &headers,
                    initialized,
                )
                .await
                .map_err(|e| e.to_string())?;
                let _ = read_body(response, 4096).await;
                inner.clone().open_stream();
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let inner = &self.inner;
            inner.closed.store(true, Ordering::SeqCst);
            let task = lock(&inner.stream_task).take();
            if let Some(task) = task {
                task.abort();
            }
            if let Some(session) = inner.session().filter(|_| !inner.plain) {
                let headers = inner.headers(Some(&session), None);
                let delete = send(
                    &inner.link.client,
                    Method::DELETE,
                    &inner.url,
                    &headers,
                    Bytes::new(),
                );
                match tokio::time::timeout(Duration::from_secs(2), delete).await {
                    Ok(Ok(response)) => {
                        tracing::debug!(status = %response.status(), "session deleted")
                    }
                    Ok(Err(e)) => tracing::debug!("DELETE of the session failed: {e}"),
                    Err(_) => tracing::debug!("DELETE of the session timed out"),
                }
            }
        })
    }
}

impl Inner {
    fn session(&self) -> Option<HeaderValue> {
        lock(&self.session_id).clone()
    }

    fn capture_session(&self, response: &Response<Incoming>) {
        if self.plain {
            return;
        }
        if let Some(id) = response.headers().get(headers::SESSION_ID) {
            *lock(&self.session_id) = Some(id.clone());
        }
    }

    fn headers(&self, session: Option<&HeaderValue>, message: Option<&Outgoing>) -> HeaderMap {
        let mut headers = self.link.base_headers.clone();
        if let Some(session) = session {
            headers.insert(headers::SESSION_ID, session.clone());
        }
        if let Some(message) = message {
            for (name, value) in &message.routing {
                headers.insert(name.clone(), value.clone());
            }
        }
        if !headers.contains_key(headers::PROTOCOL_VERSION)
            && let Some(version) = self.link.protocol_version()
        {
            headers.insert(headers::PROTOCOL_VERSION, version);
        }
        headers
    }

    async fn deliver(self: Arc<Self>, message: Outgoing) {
        let session = self.session();
        let headers = self.headers(session.as_ref(), Some(&message));
        let response = match send(
            &self.link.client,
            Method::POST,
            &self.url,
            &headers,
            message.body.clone(),
        )
        .await
        {
            Ok(response) => response,
            Err(SendError::NotReached(e)) => {
                return self.link.fail(message, Failure::NotReached(e));
            }
            Err(SendError::MayHaveReached(e)) => {
                return self.link.fail(message, Failure::MayHaveReached(e));
            }
        };
        self.capture_session(&response);
        let status = response.status();
        if status.is_success() {
            let opens_stream = !self.plain
                && message.method.as_deref() == Some("notifications/initialized")
                && status.as_u16() == 202;
            if is_event_stream(&response) {
                self.read_post_stream(message, response).await;
            } else {
                match read_body(response, usize::MAX).await {
                    Ok(body) => {
                        if !body.iter().all(u8::is_ascii_whitespace) {
                            self.link.emit(LinkEvent::FromServer(body));
                        }
                        self.link.delivered(&message);
                    }
                    Err(e) => self.link.fail(message, Failure::MayHaveReached(e)),
                }
            }
            if opens_stream {
                self.clone().open_stream();
            }
            return;
        }
        let body = read_body(response, 64 * 1024).await.unwrap_or_default();
        if status.as_u16() == 404 && session.is_some() {
            return self.link.fail(message, Failure::SessionGone);
        }
        // A JSON-RPC answer in an error status is still the answer.
        if let Ok(inspected) = jsonrpc::inspect(&body)
            && inspected
                .iter()
                .any(|m| matches!(&m.kind, Kind::Response { id: Some(id) } if message.requests.contains(id)))
        {
            self.link.emit(LinkEvent::FromServer(body));
            self.link.delivered(&message);
            return;
        }
        self.link.fail(
            message,
            Failure::Rejected {
                status: status.as_u16(),
                detail: error_detail(&body),
            },
        );
    }

    /// Forwards the events of a POST's SSE answer; resumes a dropped stream if the server gave
    /// event ids; gives up the requests still unanswered otherwise.
    async fn read_post_stream(self: &Arc<Self>, message: Outgoing, response: Response<Incoming>) {
        let mut unanswered: HashSet<IdKey> = message.requests.iter().cloned().collect();
        let mut parser = sse::Parser::default();
        let mut outcome = self.pump(response, &mut parser, &mut unanswered).await;
        let mut attempt = 0;
        while !unanswered.is_empty() && !self.plain && !self.closed.load(Ordering::SeqCst) {
            let Some(last) = parser.last_event_id.clone() else {
                break;
            };
            attempt += 1;
            if attempt > RESUME_ATTEMPTS {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
            match self.resume(&last).await {
                Ok(response) => {
                    outcome = self.pump(response, &mut parser, &mut unanswered).await;
                }
                Err(e) => outcome = Err(e),
            }
        }
        if unanswered.is_empty() {
            self.link.delivered(&message);
        } else {
            let reason = outcome
                .err()
                .unwrap_or_else(|| "the server closed the answer stream".into());
            let mut rest = message;
            rest.requests.retain(|id| unanswered.contains(id));
            self.link.fail(rest, Failure::MayHaveReached(reason));
        }
    }

    async fn resume(&self, last_event_id: &str) -> Result<Response<Incoming>, String> {
        let session = self.session();
        let mut headers = self.headers(session.as_ref(), None);
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.remove(CONTENT_TYPE);
        if let Ok(value) = HeaderValue::from_str(last_event_id) {
            headers.insert("last-event-id", value);
        }
        let response = send(
            &self.link.client,
            Method::GET,
            &self.url,
            &headers,
            Bytes::new(),
        )
        .await
        .map_err(|e| e.to_string())?;
        if response.status().is_success() && is_event_stream(&response) {
            Ok(response)
        } else {
            Err(format!(
                "resuming the stream answered HTTP {}",
                response.status()
            ))
        }
    }

    /// Reads SSE events until the body ends, forwarding each; `Err` if the body broke.
    async fn pump(
        &self,
        response: Response<Incoming>,
        parser: &mut sse::Parser,
        unanswered: &mut HashSet<IdKey>,
    ) -> Result<(), String> {
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| error_chain(&e))?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            for event in parser.feed(&chunk) {
                self.forward_event(event, unanswered);
            }
        }
        Ok(())
    }

    fn forward_event(&self, event: sse::Event, unanswered: &mut HashSet<IdKey>) {
        if !(event.event.is_empty() || event.event == "message")
            || event.data.iter().all(u8::is_ascii_whitespace)
        {
            return;
        }
        if !unanswered.is_empty()
            && let Ok(inspected) = jsonrpc::inspect(&event.data)
        {
            for message in inspected {
                if let Kind::Response { id: Some(id) } = message.kind {
                    unanswered.remove(&id);
                }
            }
        }
        self.link.emit(LinkEvent::FromServer(event.data));
    }

    /// Opens the GET stream for server-initiated messages, reconnecting while the link lives.
    fn open_stream(self: Arc<Self>) {
        if self.plain || self.closed.load(Ordering::SeqCst) {
            return;
        }
        let inner = self.clone();
        let task = tokio::spawn(async move { inner.run_stream().await });
        let old = lock(&self.stream_task).replace(task.abort_handle());
        if let Some(old) = old {
            old.abort();
        }
    }

    async fn run_stream(self: Arc<Self>) {
        let mut parser = sse::Parser::default();
        let mut backoff = Duration::from_millis(100);
        let mut none = HashSet::new();
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let session = self.session();
            let mut headers = self.headers(session.as_ref(), None);
            headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
            headers.remove(CONTENT_TYPE);
            if let Some(last) = parser.last_event_id.as_deref()
                && let Ok(value) = HeaderValue::from_str(last)
            {
                headers.insert("last-event-id", value);
            }
            match send(
                &self.link.client,
                Method::GET,
                &self.url,
                &headers,
                Bytes::new(),
            )
            .await
            {
                Err(SendError::NotReached(reason)) => {
                    return self.link.emit(LinkEvent::Down {
                        generation: self.link.generation,
                        reason,
                        lost: Vec::new(),
                    });
                }
                Err(SendError::MayHaveReached(e)) => {
                    tracing::debug!("GET stream failed: {e}");
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    match status {
                        200 if is_event_stream(&response) => {
                            backoff = Duration::from_millis(100);
                            if let Err(e) = self.pump(response, &mut parser, &mut none).await {
                                tracing::debug!("GET stream dropped: {e}");
                            }
                        }
                        404 if session.is_some() => {
                            return self.link.emit(LinkEvent::Down {
                                generation: self.link.generation,
                                reason: "the target no longer knows this session".into(),
                                lost: Vec::new(),
                            });
                        }
                        _ => {
                            // 405 and friends: the server offers no stream; that is allowed.
                            tracing::debug!(status, "no GET stream from the target");
                            return;
                        }
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

fn is_event_stream(response: &Response<Incoming>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
}

/// The first JSON-RPC answer of an SSE stream (the replayed initialize's).
async fn first_answer_on_stream(response: Response<Incoming>) -> Result<Bytes, String> {
    let mut parser = sse::Parser::default();
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error_chain(&e))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        for event in parser.feed(&chunk) {
            if let Ok(inspected) = jsonrpc::inspect(&event.data)
                && inspected.iter().any(|m| {
                    matches!(&m.kind, Kind::Response { id: Some(id) } if is_internal_answer(id))
                })
            {
                return Ok(event.data);
            }
        }
    }
    Err("the stream ended before the initialize answer".into())
}

/// The useful part of an error body: a JSON-RPC or JSON `message`, else the text.
fn error_detail(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        for pointer in ["/error/message", "/message", "/error"] {
            if let Some(text) = value.pointer(pointer).and_then(|v| v.as_str()) {
                return text.to_owned();
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() > 500 {
        format!("{}...", text.chars().take(500).collect::<String>())
    } else {
        text.to_owned()
    }
}
