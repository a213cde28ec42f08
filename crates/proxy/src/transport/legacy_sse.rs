//! Legacy HTTP+SSE (2024-11-05), what FastMCP's `sse` transport speaks: `GET` the SSE URL, wait
//! for the `endpoint` event, `POST` every message there, and take every answer from the stream.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{HeaderValue, Method, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::{Failure, LinkContext, LinkEvent, Outgoing, Transport, is_internal_answer, lock};
use crate::http::{SendError, error_chain, read_body, resolve, send};
use crate::jsonrpc::{self, IdKey, Kind};
use crate::sse;

/// How long the server may take to name its message endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct LegacySse {
    inner: Arc<Inner>,
}

struct Inner {
    link: LinkContext,
    post_url: Uri,
    /// Requests sent whose answers have not come yet: lost if the stream ends.
    awaiting: Mutex<HashSet<IdKey>>,
    /// Answers to the proxy's own requests (the replayed initialize).
    internal: Mutex<HashMap<IdKey, oneshot::Sender<Bytes>>>,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
    closed: AtomicBool,
}

impl LegacySse {
    /// Opens the stream and waits for the `endpoint` event.
    pub async fn connect(link: LinkContext, sse_url: Uri) -> Result<LegacySse, String> {
        let mut headers = link.base_headers.clone();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.remove(CONTENT_TYPE);
        let response = send(&link.client, Method::GET, &sse_url, &headers, Bytes::new())
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            let status = response.status();
            let body = read_body(response, 2048).await.unwrap_or_default();
            return Err(format!(
                "GET {sse_url} answered HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            ));
        }
        let mut body = response.into_body();
        let mut parser = sse::Parser::default();
        let mut early = Vec::new();
        let endpoint = tokio::time::timeout(ENDPOINT_TIMEOUT, async {
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| error_chain(&e))?;
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                for event in parser.feed(&chunk) {
                    if event.event == "endpoint" {
                        return Ok(String::from_utf8_lossy(&event.data).into_owned());
                    }
                    early.push(event);
                }
            }
            Err("the SSE stream ended before its `endpoint` event".to_owned())
        })
        .await
        .map_err(|_| format!("no `endpoint` event from {sse_url} within {ENDPOINT_TIMEOUT:?}"))??;
        let post_url = resolve(&sse_url, &endpoint)
            .ok_or_else(|| format!("bad `endpoint` event from {sse_url}: {endpoint:?}"))?;
        tracing::debug!(%post_url, "legacy SSE endpoint");
        let inner = Arc::new(Inner {
            link,
            post_url,
            awaiting: Mutex::new(HashSet::new()),
            internal: Mutex::new(HashMap::new()),
            reader: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        for event in early {
            inner.forward(event);
        }
        let reader = tokio::spawn(inner.clone().read_stream(body, parser));
        *lock(&inner.reader) = Some(reader.abort_handle());
        Ok(LegacySse { inner })
    }
}

impl Transport for LegacySse {
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
            let id = jsonrpc::inspect(&initialize)
                .ok()
                .and_then(|m| m.first().and_then(|m| m.request_id().cloned()))
                .ok_or("the cached initialize has no id")?;
            let (answer_tx, answer_rx) = oneshot::channel();
            lock(&inner.internal).insert(id, answer_tx);
            inner.post(initialize).await?;
            let answer = tokio::time::timeout(Duration::from_secs(30), answer_rx)
                .await
                .map_err(|_| "no answer to the replayed initialize".to_owned())?
                .map_err(|_| "the stream ended before the initialize answer".to_owned())?;
            if let Some(version) = jsonrpc::negotiated_version(&answer) {
                inner.link.set_protocol_version(&version);
            }
            if let Some(initialized) = initialized {
                inner.post(initialized).await?;
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.inner.closed.store(true, Ordering::SeqCst);
            let reader = lock(&self.inner.reader).take();
            if let Some(reader) = reader {
                reader.abort();
            }
        })
    }
}

impl Inner {
    async fn post(&self, body: Bytes) -> Result<(), String> {
        let response = send(
            &self.link.client,
            Method::POST,
            &self.post_url,
            &self.link.base_headers,
            body,
        )
        .await
        .map_err(|e| e.to_string())?;
        let status = response.status();
        let text = read_body(response, 4096).await.unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&text).trim()
            ))
        }
    }

    async fn deliver(self: Arc<Self>, message: Outgoing) {
        lock(&self.awaiting).extend(message.requests.iter().cloned());
        let outcome = send(
            &self.link.client,
            Method::POST,
            &self.post_url,
            &self.link.base_headers,
            message.body.clone(),
        )
        .await;
        let failure = match outcome {
            Ok(response) => {
                let status = response.status();
                let body = read_body(response, 64 * 1024).await.unwrap_or_default();
                if status.is_success() {
                    self.link.delivered(&message);
                    return;
                }
                if status.as_u16() == 404 {
                    Failure::SessionGone
                } else {
                    Failure::Rejected {
                        status: status.as_u16(),
                        detail: String::from_utf8_lossy(&body).trim().to_owned(),
                    }
                }
            }
            Err(SendError::NotReached(e)) => Failure::NotReached(e),
            Err(SendError::MayHaveReached(e)) => Failure::MayHaveReached(e),
        };
        {
            let mut awaiting = lock(&self.awaiting);
            for id in &message.requests {
                awaiting.remove(id);
            }
        }
        self.link.fail(message, failure);
    }

    async fn read_stream(self: Arc<Self>, mut body: Incoming, mut parser: sse::Parser) {
        let reason = loop {
            match body.frame().await {
                None => break "the target closed its SSE stream".to_owned(),
                Some(Err(e)) => break format!("the SSE stream broke: {}", error_chain(&e)),
                Some(Ok(frame)) => {
                    if let Ok(chunk) = frame.into_data() {
                        for event in parser.feed(&chunk) {
                            self.forward(event);
                        }
                    }
                }
            }
        };
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let lost = lock(&self.awaiting).drain().collect();
        lock(&self.internal).clear();
        self.link.emit(LinkEvent::Down {
            generation: self.link.generation,
            reason,
            lost,
        });
    }

    fn forward(&self, event: sse::Event) {
        if !(event.event.is_empty() || event.event == "message")
            || event.data.iter().all(u8::is_ascii_whitespace)
        {
            return;
        }
        if let Ok(inspected) = jsonrpc::inspect(&event.data) {
            for message in &inspected {
                if let Kind::Response { id: Some(id) } = &message.kind {
                    if is_internal_answer(id) {
                        let waiter = lock(&self.internal).remove(id);
                        if let Some(waiter) = waiter {
                            let _ = waiter.send(event.data.clone());
                        }
                        return;
                    }
                    lock(&self.awaiting).remove(id);
                }
            }
        }
        self.link.emit(LinkEvent::FromServer(event.data));
    }
}
