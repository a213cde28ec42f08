//! The lean HTTP/1.1 client every transport shares: hyper with keep-alive connection reuse,
//! plain TCP only (no TLS), `TCP_NODELAY`, and a classification of failures into "the server
//! never saw it" and "it may have".

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// One pooled client per proxy.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn new_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .build(connector)
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// No connection could be made: the server never saw the request.
    #[error("cannot connect: {0}")]
    NotReached(String),
    /// The connection failed after (or while) the request was written.
    #[error("connection lost: {0}")]
    MayHaveReached(String),
}

/// Sends one request; the body is streamed back as the caller reads it.
pub async fn send(
    client: &HttpClient,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Incoming>, SendError> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri.clone())
        .body(Full::new(body))
        .map_err(|e| SendError::NotReached(e.to_string()))?;
    *request.headers_mut() = headers.clone();
    client.request(request).await.map_err(|e| {
        let detail = error_chain(&e);
        if e.is_connect() {
            SendError::NotReached(detail)
        } else {
            SendError::MayHaveReached(detail)
        }
    })
}

/// Reads a whole (small) body, keeping at most `limit` bytes.
pub async fn read_body(response: Response<Incoming>, limit: usize) -> Result<Bytes, String> {
    let mut body = response.into_body();
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error_chain(&e))?;
        if let Ok(data) = frame.into_data() {
            let room = limit.saturating_sub(collected.len());
            collected.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    Ok(Bytes::from(collected))
}

/// `GET path` with a short timeout: the status and a short body, or why it failed.
pub async fn probe(client: &HttpClient, uri: &Uri, timeout: Duration) -> Probe {
    let attempt = async {
        let response = send(client, Method::GET, uri, &HeaderMap::new(), Bytes::new()).await?;
        let status = response.status().as_u16();
        let body = read_body(response, 4096).await.unwrap_or_default();
        Ok::<_, SendError>((status, body))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok((status, body))) => Probe::Answered { status, body },
        Ok(Err(SendError::NotReached(e))) => Probe::Refused(e),
        Ok(Err(SendError::MayHaveReached(e))) => Probe::Garbled(e),
        Err(_) => Probe::Garbled("no answer in time".into()),
    }
}

/// What a port said to `GET /health`.
#[derive(Debug)]
pub enum Probe {
    Answered {
        status: u16,
        body: Bytes,
    },
    /// Nothing listens.
    Refused(String),
    /// Something listens but does not answer HTTP properly.
    Garbled(String),
}

/// The error and its causes on one line (hyper hides the useful part in `source()`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Resolves an SSE `endpoint` (usually a path with a query) against the stream's URL.
pub fn resolve(base: &Uri, reference: &str) -> Option<Uri> {
    let reference = reference.trim();
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return reference.parse().ok();
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority()?.as_str();
    let path = if reference.starts_with('/') {
        reference.to_owned()
    } else {
        let base_path = base.path();
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{reference}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_against_the_stream() {
        let base: Uri = "http://127.0.0.1:8000/sse".parse().unwrap();
        let cases = [
            (
                "/messages/?session_id=ab",
                "http://127.0.0.1:8000/messages/?session_id=ab",
            ),
            (
                "message?sessionId=1",
                "http://127.0.0.1:8000/message?sessionId=1",
            ),
            ("http://127.0.0.1:9/x", "http://127.0.0.1:9/x"),
        ];
        for (reference, expected) in cases {
            assert_eq!(resolve(&base, reference).unwrap().to_string(), expected);
        }
    }
}
