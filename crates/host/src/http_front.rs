//! The guarded front of a server the host does not run in process: an external HTTP child
//! started with `{port}` (on an internal loopback port), or a remote `url` target with a `port`
//! (over TLS for https, one pooled client for every window). The target's own port is ours,
//! behind the same guard and session tracking as every target
//! (`mcp_http::guarded_target_router`). Every request is forwarded as it comes and every answer
//! streamed back as it goes (an SSE response event by event, a long-lived `GET` stream for as
//! long as it lasts), with hyper: no buffering.
//!
//! Headers pass through except the hop-by-hop ones and our `Authorization` (the bearer token is
//! ours); a remote also never sees the session's project path, and gets the headers that
//! config.toml gives it. For legacy SSE, the `endpoint` event of a stream is rewritten when it
//! names the upstream in an absolute URL, so the client keeps posting to the front.

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

use crate::tls::{self, HttpsClient};

/// How much of an SSE stream's start is held back to find the `endpoint` event in it.
const MAX_ENDPOINT_EVENT_BYTES: usize = 64 * 1024;

/// Where the front forwards to.
pub struct HttpFront {
    upstream: Upstream,
    /// The target's port, which the front serves.
    front_port: u16,
    transport: Transport,
}

enum Upstream {
    /// A child of ours; its port is 0 before the first spawn and may change on a restart.
    Child {
        internal_port: Arc<AtomicU16>,
        client: Client<HttpConnector, Body>,
    },
    /// A remote server at `url`, with the headers config.toml adds to every request.
    Remote {
        url: Uri,
        headers: HeaderMap,
        client: Box<HttpsClient>,
    },
}

/// Why a remote front could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RemoteFrontError {
    #[error("bad url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("bad header {name:?}: {reason}")]
    Header { name: String, reason: String },
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
}

impl HttpFront {
    /// The front of a child listening on `internal_port`.
    pub fn new(internal_port: Arc<AtomicU16>, front_port: u16, transport: Transport) -> Self {
        let mut connector = HttpConnector::new();
        // Small MCP messages must not wait for a delayed ACK (Nagle), as on our own ports.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            upstream: Upstream::Child {
                internal_port,
                client,
            },
            front_port,
            transport,
        }
    }

    /// The front of a remote server: `url` (http or https; TLS trusts the platform's roots and
    /// `ca_file`), with `headers` added to every request.
    pub fn remote(
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        ca_file: Option<&std::path::Path>,
        front_port: u16,
        transport: Transport,
    ) -> Result<Self, RemoteFrontError> {
        let bad_url = |reason: String| RemoteFrontError::Url {
            url: url.to_owned(),
            reason,
        };
        let url: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad_url(e.to_string()))?;
        if url.authority().is_none() {
            return Err(bad_url("no host".into()));
        }
        let mut header_map = HeaderMap::new();
        for (name, value) in headers {
            let bad = |reason: String| RemoteFrontError::Header {
                name: name.clone(),
                reason,
            };
            let header_name =
                HeaderName::try_from(name.as_str()).map_err(|e| bad(e.to_string()))?;
            let header_value = HeaderValue::try_from(value.as_str())
                .map_err(|_| bad("the value is not a valid header value".into()))?;
            header_map.insert(header_name, header_value);
        }
        Ok(Self {
            upstream: Upstream::Remote {
                url,
                headers: header_map,
                client: Box::new(tls::https_client(ca_file)?),
            },
            front_port,
            transport,
        })
    }

    /// The child's port now (0 while it has never been spawned, and for a remote).
    pub fn internal_port(&self) -> u16 {
        match &self.upstream {
            Upstream::Child { internal_port, .. } => internal_port.load(Ordering::Acquire),
            Upstream::Remote { .. } => 0,
        }
    }

    /// Ends a session upstream (idle expiry of a streamable HTTP session).
    pub fn close_session(self: &Arc<Self>, session_id: String) {
        if self.transport == Transport::Sse {
            return;
        }
        let front = self.clone();
        tokio::spawn(async move {
            let path = Uri::from_static("/mcp");
            let Ok(uri) = front.upstream_uri(&path) else {
                return;
            };
            let Ok(request) = http::Request::delete(uri)
                .header(msm_core::headers::SESSION_ID, session_id)
                .body(Body::empty())
            else {
                return;
            };
            let _ = front.send(request).await;
        });
    }

    /// The upstream URL for a request to the front at `uri`. A remote's main path (`/mcp`, or
    /// `/sse` for legacy SSE) is its configured URL; any other path (a legacy SSE server's
    /// message endpoint) is taken from the remote's origin.
    fn upstream_uri(&self, uri: &Uri) -> Result<Uri, (StatusCode, &'static str)> {
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
        let text = match &self.upstream {
            Upstream::Child { internal_port, .. } => {
                let port = internal_port.load(Ordering::Acquire);
                if port == 0 {
                    return Err((StatusCode::SERVICE_UNAVAILABLE, "the server is starting"));
                }
                format!("http://127.0.0.1:{port}{path_and_query}")
            }
            Upstream::Remote { url, .. } => {
                let origin = format!(
                    "{}://{}",
                    url.scheme_str().unwrap_or("http"),
                    url.authority().map_or("", |a| a.as_str())
                );
                if uri.path() == self.main_path() {
                    let base = url.path_and_query().map_or("/", |p| p.as_str());
                    match uri.query() {
                        Some(query) if base.contains('?') => format!("{origin}{base}&{query}"),
                        Some(query) => format!("{origin}{base}?{query}"),
                        None => format!("{origin}{base}"),
                    }
                } else {
                    format!("{origin}{path_and_query}")
                }
            }
        };
        Uri::try_from(text).map_err(|_| (StatusCode::BAD_REQUEST, "bad request target"))
    }

    /// The path clients of the target post to (`TargetConfig::endpoint_url`).
    fn main_path(&self) -> &'static str {
        match self.transport {
            Transport::Sse => "/sse",
            _ => "/mcp",
        }
    }

    async fn send(&self, request: http::Request<Body>) -> Result<Response, String> {
        let response = match &self.upstream {
            Upstream::Child { client, .. } => client.request(request).await,
            Upstream::Remote { client, .. } => client.request(request).await,
        };
        response
            .map(|response| response.map(Body::new))
            .map_err(|error| msm_core::error_chain(&error))
    }

    /// What an absolute URL to the upstream starts with, and what it becomes at the front.
    fn origin_rewrites(&self) -> Vec<(String, String)> {
        let front = self.front_port;
        match &self.upstream {
            Upstream::Child { internal_port, .. } => {
                child_rewrites(internal_port.load(Ordering::Acquire), front)
            }
            Upstream::Remote { url, .. } => {
                let authority = url.authority().map_or("", |a| a.as_str());
                let scheme = url.scheme_str().unwrap_or("http");
                vec![(
                    format!("{scheme}://{authority}"),
                    format!("http://127.0.0.1:{front}"),
                )]
            }
        }
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
    let (mut parts, body) = request.into_parts();
    parts.uri = match front.upstream_uri(&parts.uri) {
        Ok(uri) => uri,
        Err(refusal) => return refusal.into_response(),
    };
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::AUTHORIZATION);
    match &front.upstream {
        Upstream::Child { .. } => {
            let host = parts.uri.authority().map(|a| a.as_str().to_owned());
            if let Some(host) = host.and_then(|h| HeaderValue::try_from(h).ok()) {
                parts.headers.insert(header::HOST, host);
            }
        }
        Upstream::Remote { headers, .. } => {
            // The client sets `Host` from the URL; the project path is this machine's business.
            parts.headers.remove(header::HOST);
            parts.headers.remove(msm_core::headers::PROJECT_PATH);
            parts.headers.remove(msm_core::headers::PROXY_INSTANCE);
            parts.headers.remove(header::ORIGIN);
            for (name, value) in headers {
                parts.headers.insert(name, value.clone());
            }
        }
    }
    let upstream = parts.uri.clone();
    let response = match front.send(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(error) => {
            let upstream = format!(
                "{}://{}",
                upstream.scheme_str().unwrap_or("http"),
                upstream.authority().map_or("", |a| a.as_str())
            );
            tracing::warn!("forwarding to {upstream} failed: {error}");
            return (
                StatusCode::BAD_GATEWAY,
                format!("the server behind this port ({upstream}) did not answer: {error}"),
            )
                .into_response();
        }
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let event_stream = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let body = if front.transport == Transport::Sse && event_stream {
        rewrite_endpoint_event(body, front.origin_rewrites())
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
/// to point an absolute URL at the upstream to the front instead.
fn rewrite_endpoint_event(body: Body, rewrites: Vec<(String, String)>) -> Body {
    struct State {
        upstream: axum::body::BodyDataStream,
        pending: Option<Vec<u8>>,
        rewrites: Vec<(String, String)>,
    }
    let state = State {
        upstream: body.into_data_stream(),
        pending: Some(Vec::new()),
        rewrites,
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
                        let out = rewrite_origins(&held, &state.rewrites);
                        return Some((Ok(out), state));
                    }
                }
                Some(Err(error)) => return Some((Err(error), state)),
                None => {
                    let held = state.pending.take().unwrap_or_default();
                    if held.is_empty() {
                        return None;
                    }
                    let out = rewrite_origins(&held, &state.rewrites);
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
    rewrite_origins(text, &child_rewrites(internal_port, front_port))
}

fn child_rewrites(internal_port: u16, front_port: u16) -> Vec<(String, String)> {
    ["127.0.0.1", "localhost", "[::1]"]
        .into_iter()
        .map(|host| {
            (
                format!("//{host}:{internal_port}"),
                format!("//{host}:{front_port}"),
            )
        })
        .collect()
}

/// `text` with each `from` prefix of an absolute URL replaced by its `to`, where the `from`
/// ends a whole authority: `:1234` must not match the start of `:12345`.
fn rewrite_origins(text: &[u8], rewrites: &[(String, String)]) -> Bytes {
    let Ok(text) = std::str::from_utf8(text) else {
        return Bytes::copy_from_slice(text);
    };
    let mut out = text.to_owned();
    for (from, to) in rewrites {
        let mut rewritten = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(from.as_str()) {
            let after = &rest[at + from.len()..];
            rewritten.push_str(&rest[..at]);
            if after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
                rewritten.push_str(from);
            } else {
                rewritten.push_str(to);
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
