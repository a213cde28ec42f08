//! The front's forwarding: headers in and out, streaming without buffering, the legacy SSE
//! `endpoint` rewrite.

use std::sync::Arc;
use std::sync::atomic::AtomicU16;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use futures::StreamExt;
use msm_core::Transport;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{HttpFront, rewrite_internal_port, router, strip_hop_by_hop};
use crate::mcp_http;

#[test]
fn internal_port_is_rewritten_only_in_absolute_urls_and_whole() {
    let cases = [
        (
            "event: endpoint\ndata: http://127.0.0.1:4100/messages/?session_id=a\n\n",
            "event: endpoint\ndata: http://127.0.0.1:3101/messages/?session_id=a\n\n",
        ),
        (
            "data: http://localhost:4100/messages/\n\n",
            "data: http://localhost:3101/messages/\n\n",
        ),
        (
            "data: /messages/?session_id=a\n\n",
            "data: /messages/?session_id=a\n\n",
        ),
        (
            "data: http://127.0.0.1:41000/x\n\n",
            "data: http://127.0.0.1:41000/x\n\n",
        ),
        (
            "data: http://example.com:4100/x\n\n",
            "data: http://example.com:4100/x\n\n",
        ),
    ];
    for (input, expected) in cases {
        let out = rewrite_internal_port(input.as_bytes(), 4100, 3101);
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected, "{input}");
    }
}

#[test]
fn hop_by_hop_headers_and_those_connection_names_go() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-private"),
    );
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("x-private", HeaderValue::from_static("1"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.insert("mcp-session-id", HeaderValue::from_static("s1"));
    headers.insert("last-event-id", HeaderValue::from_static("7"));
    strip_hop_by_hop(&mut headers);
    let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    left.sort();
    assert_eq!(left, ["last-event-id", "mcp-session-id"]);
}

/// An upstream whose `/echo` answers the request headers, and whose `/sse` sends an endpoint
/// event with its own absolute URL, then one event per message on `events`.
async fn upstream(events: mpsc::UnboundedReceiver<String>) -> (u16, CancellationToken) {
    let listener = mcp_http::bind_loopback(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let events = Arc::new(parking_lot::Mutex::new(Some(events)));
    let app = Router::new()
        .route(
            "/echo",
            post(|headers: HeaderMap, body: String| async move {
                let seen: serde_json::Map<String, serde_json::Value> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                    .collect();
                axum::Json(serde_json::json!({"headers": seen, "body": body}))
            }),
        )
        .route(
            "/sse",
            get(move || {
                let events = events.lock().take().expect("one stream");
                async move {
                    let first = futures::stream::once(async move {
                        Ok::<_, std::io::Error>(format!(
                            "event: endpoint\ndata: http://127.0.0.1:{port}/messages/?session_id=x\n\n"
                        ))
                    });
                    let rest = tokio_stream_of(events)
                        .map(|data| Ok(format!("event: message\ndata: {data}\n\n")));
                    (
                        [(header::CONTENT_TYPE, "text/event-stream")],
                        Body::from_stream(first.chain(rest)),
                    )
                }
            }),
        );
    let stop = CancellationToken::new();
    mcp_http::spawn_server(listener, app, stop.clone());
    (port, stop)
}

fn tokio_stream_of(
    mut rx: mpsc::UnboundedReceiver<String>,
) -> impl futures::Stream<Item = String> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn front_for(internal: u16, transport: Transport) -> (u16, CancellationToken) {
    let listener = mcp_http::bind_loopback(0).unwrap();
    let port = listener.local_addr().unwrap().port();
    let front = Arc::new(HttpFront::new(
        Arc::new(AtomicU16::new(internal)),
        port,
        transport,
    ));
    let stop = CancellationToken::new();
    mcp_http::spawn_server(listener, router(front), stop.clone());
    (port, stop)
}

#[tokio::test]
async fn request_headers_pass_but_token_and_host_are_ours() {
    let (_tx, rx) = mpsc::unbounded_channel();
    let (internal, _up) = upstream(rx).await;
    let (front, _stop) = front_for(internal, Transport::StreamableHttp).await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{front}/echo"))
        .header("authorization", "Bearer ours")
        .header("mcp-session-id", "s1")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-project-path", "/tmp/p")
        .body("hello")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let headers = &answer["headers"];
    assert_eq!(answer["body"], "hello");
    assert!(headers.get("authorization").is_none(), "{headers}");
    assert_eq!(headers["host"], format!("127.0.0.1:{internal}"));
    assert_eq!(headers["mcp-session-id"], "s1");
    assert_eq!(headers["mcp-protocol-version"], "2025-06-18");
    assert_eq!(headers["mcp-project-path"], "/tmp/p");
}

#[tokio::test]
async fn sse_streams_event_by_event_with_the_endpoint_pointing_at_the_front() {
    let (tx, rx) = mpsc::unbounded_channel();
    let (internal, _up) = upstream(rx).await;
    let (front, _stop) = front_for(internal, Transport::Sse).await;
    let response = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{front}/sse"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let mut next_event = async || {
        while !seen.contains("\n\n") {
            let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
                .await
                .expect("an event within 5s (no buffering)")
                .unwrap()
                .unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let end = seen.find("\n\n").unwrap() + 2;
        seen.drain(..end).collect::<String>()
    };
    let endpoint = next_event().await;
    assert_eq!(
        endpoint,
        format!("event: endpoint\ndata: http://127.0.0.1:{front}/messages/?session_id=x\n\n")
    );
    // Each later event arrives while the upstream stream stays open.
    for n in 0..3 {
        tx.send(format!("{{\"n\":{n}}}")).unwrap();
        assert_eq!(
            next_event().await,
            format!("event: message\ndata: {{\"n\":{n}}}\n\n")
        );
    }
}

#[tokio::test]
async fn a_dead_child_is_a_bad_gateway() {
    let unused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (front, _stop) = front_for(unused, Transport::StreamableHttp).await;
    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{front}/mcp"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 502);
}
