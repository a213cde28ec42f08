//! The guarded front of an external HTTP server started with `{port}`: the child listens on an
//! internal loopback port, and the target's own port is ours, behind the same guard and session
//! tracking as every target (`mcp_http::guarded_target_router`). Every request is forwarded to
//! the child as it comes and every answer streamed back as it goes (an SSE response event by
//! event, a long-lived `GET` stream for as long as it lasts), with hyper: no buffering.
//!
//! Headers pass through except the hop-by-hop ones and our `Authorization` (the bearer token is
//! ours, not the child's); `Host` names the child. For legacy SSE, the `endpoint` event of a
//! stream is rewritten when it names the internal port in an absolute URL, so the client keeps
//! posting to the front.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bytes::Bytes;
use futures::StreamExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use msm_core::Transport;

/// How much of an SSE stream's start is held back to find the `endpoint` event in it.
const MAX_ENDPOINT_EVENT_BYTES: usize = 64 * 1024;

/// Where the front forwards to.
pub struct HttpFront {
    /// The child's current port (0 before the first spawn); it may change on a restart.
    internal_port: Arc<AtomicU16>,
    /// The target's port, which the front serves.
    front_port: u16,
    transport: Transport,
    client: Client<HttpConnector, Body>,
}

impl HttpFront {
    pub fn new(internal_port: Arc<AtomicU16>, front_port: u16, transport: Transport) -> Self {
        let mut connector = HttpConnector::new();
        // Small MCP messages must not wait for a delayed ACK (Nagle), as on our own ports.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            internal_port,
            front_port,
            transport,
            client,
        }
    }

    /// The child's port now (0 while it has never been spawned).
    pub fn internal_port(&self) -> u16 {
        self.internal_port.load(Ordering::Acquire)
    }

    /// Ends a session at the child (idle expiry of a streamable HTTP session).
    pub fn close_session(self: &Arc<Self>, session_id: String) {
        if self.transport == Transport::Sse {
            return;
        }
        let front = self.clone();
        tokio::spawn(async move {
            let port = front.internal_port();
            let Ok(request) = http::Request::delete(format!("http://127.0.0.1:{port}/mcp"))
                .header(msm_core::headers::SESSION_ID, session_id)
                .body(Body::empty())
            else {
                return;
            };
            let _ = front.client.request(request).await;
        });
    }
}

/// Every path of the front port (but `/health`, which the guarded router answers itself).
pub fn router(front: Arc<HttpFront>) -> Router {
    Router::new()
        .route("/", any(forward))
        .route("/{*path}", any(forward))
        .with_state(front)
}

async fn forward(State(front): State<Arc<HttpFront>>, request: Request) -> Response {
    let port = front.internal_port();
    if port == 0 {
        return (StatusCode::SERVICE_UNAVAILABLE, "the server is starting").into_response();
    }
    let (mut parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    parts.uri = match Uri::try_from(format!("http://127.0.0.1:{port}{path}")) {
        Ok(uri) => uri,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad request target").into_response(),
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::AUTHORIZATION);
    if let Ok(host) = HeaderValue::try_from(format!("127.0.0.1:{port}")) {
        parts.headers.insert(header::HOST, host);
    }
    let response = match front.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!("forwarding to the child on 127.0.0.1:{port} failed: {error}");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the server behind this port did not answer: {error}"),
            )
                .into_response();
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let body = Body::new(body);
    let event_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let body = if front.transport == Transport::Sse && event_stream {
        rewrite_endpoint_event(body, port, front.front_port)
    } else {
        body
    };
    Response::from_parts(parts, body)
}

/// Removes the headers that belong to one connection, not to the message (RFC 9110 7.6.1),
/// including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// Streams `body` through, holding back only its first event (the legacy SSE `endpoint` event)
/// to point an absolute URL at the internal port to the front port instead.
fn rewrite_endpoint_event(body: Body, internal_port: u16, front_port: u16) -> Body {
    struct State {
        upstream: axum::body::BodyDataStream,
        pending: Option<Vec<u8>>,
    }
    let state = State {
        upstream: body.into_data_stream(),
        pending: Some(Vec::new()),
    };
    let stream = futures::stream::unfold(state, move |mut state| async move {
        loop {
            let next = state.upstream.next().await;
            let Some(pending) = state.pending.as_mut() else {
                return next.map(|chunk| (chunk, state));
            };
            match next {
                Some(Ok(chunk)) => {
                    pending.extend_from_slice(&chunk);
                    if first_event_complete(pending) || pending.len() > MAX_ENDPOINT_EVENT_BYTES {
                        let held = state.pending.take().unwrap_or_default();
                        let out = rewrite_internal_port(&held, internal_port, front_port);
                        return Some((Ok(out), state));
                    }
                }
                Some(Err(error)) => return Some((Err(error), state)),
                None => {
                    let held = state.pending.take().unwrap_or_default();
                    if held.is_empty() {
                        return None;
                    }
                    let out = rewrite_internal_port(&held, internal_port, front_port);
                    return Some((Ok(out), state));
                }
            }
        }
    });
    Body::from_stream(stream)
}

fn first_event_complete(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\n\n") || bytes.windows(4).any(|w| w == b"\r\n\r\n")
}

/// `text` with `//127.0.0.1:INTERNAL` (or `localhost`, `[::1]`) turned into the front port;
/// relative URLs and anything else are left alone.
pub fn rewrite_internal_port(text: &[u8], internal_port: u16, front_port: u16) -> Bytes {
    let Ok(text) = std::str::from_utf8(text) else {
        return Bytes::copy_from_slice(text);
    };
    let mut out = text.to_owned();
    for host in ["127.0.0.1", "localhost", "[::1]"] {
        let from = format!("//{host}:{internal_port}");
        let to = format!("//{host}:{front_port}");
        // Only a whole port: `:1234` must not match the start of `:12345`.
        let mut rewritten = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&from) {
            let after = &rest[at + from.len()..];
            rewritten.push_str(&rest[..at]);
            if after.starts_with(|c: char| c.is_ascii_digit()) {
                rewritten.push_str(&from);
            } else {
                rewritten.push_str(&to);
            }
            rest = after;
        }
        rewritten.push_str(rest);
        out = rewritten;
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests;
