//! The lean HTTP/1.1 client every transport shares: hyper with keep-alive connection reuse,
//! plain TCP only (no TLS), `TCP_NODELAY`, and a classification of failures into "the server
//! never saw it" and "it may have".

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// One pooled client per proxy.
pub type HttpClient = Client<QuickAckConnector, Full<Bytes>>;

pub fn new_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(16)
        .build(QuickAckConnector(connector))
}

/// hyper-util's TCP connector, with every connection wrapped in [`QuickAck`].
#[derive(Clone)]
pub struct QuickAckConnector(HttpConnector);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for QuickAckConnector {
    type Response = QuickAck;
    type Error = BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<QuickAck, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let stream = connecting.await?;
            Ok(QuickAck(stream))
        })
    }
}

/// A TCP connection that acknowledges every segment at once (Linux `TCP_QUICKACK`, re-armed
/// after each read and write, since the kernel drops it on its own).
///
/// Why: a server that writes an answer in several pieces without `TCP_NODELAY` (axum's
/// default, so many MCP servers in Rust) holds the second piece until the first is
/// acknowledged, and a delayed ACK costs 40 ms on every request of a kept-alive connection.
pub struct QuickAck(TokioIo<TcpStream>);

impl QuickAck {
    fn rearm(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let one: libc::c_int = 1;
            // SAFETY: a valid socket fd and a pointer to a c_int of the given size.
            unsafe {
                libc::setsockopt(
                    self.0.inner().as_raw_fd(),
                    libc::IPPROTO_TCP,
                    libc::TCP_QUICKACK,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

impl Connection for QuickAck {
    fn connected(&self) -> Connected {
        self.0.connected()
    }
}

impl hyper::rt::Read for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if polled.is_ready() {
            self.rearm();
        }
        polled
    }
}

impl hyper::rt::Write for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.0).poll_write(cx, buf);
        if polled.is_ready() {
            self.rearm();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        if polled.is_ready() {
            self.rearm();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
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

pub use msm_core::error_chain;

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
