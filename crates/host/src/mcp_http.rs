//! Serving an in-process rmcp `ServerHandler` over streamable HTTP on a target's port: rmcp's
//! `StreamableHttpService` at `/mcp`, behind the security guard and the session tracker, plus
//! the open `GET /health`.
//!
//! rmcp 3.11 does the protocol itself, for every revision: `initialize` opens a session
//! (`Mcp-Session-Id`; 404 once it is gone; `DELETE` ends it; `GET` opens the standalone stream),
//! a request carrying the 2026-07-28 `_meta` (or `server/discover`) is served statelessly,
//! `MCP-Protocol-Version` is checked, notifications get 202. What we add in thin layers:
//! loopback/token checks (`security`), session bookkeeping and idle expiry (`sessions`), and
//! `405` for a `GET` that could not be a session's standalone stream (no `Mcp-Session-Id`),
//! where rmcp answers `400` "session id required", and `200` for a `DELETE` that ended a
//! session, where rmcp answers `202`, which the official SDKs log as a failed termination.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::security::{self, Guard};
use crate::sessions::{self, SessionRegistry, Tracker};

/// The router of one in-process target, and the handle that closes its rmcp sessions.
pub struct McpRouter {
    pub router: Router,
    pub session_manager: Arc<LocalSessionManager>,
}

/// Builds the router serving `factory`'s handlers at `/mcp` (one handler per session, and one
/// per stateless request). `stop` ends every session and stream when cancelled.
pub fn mcp_router<S, F>(
    target: &str,
    factory: F,
    guard: Arc<Guard>,
    registry: Arc<SessionRegistry>,
    stop: CancellationToken,
) -> McpRouter
where
    S: ServerHandler + Send + 'static,
    F: Fn() -> S + Send + Sync + 'static,
{
    let mut session_manager = LocalSessionManager::default();
    // Idle expiry is ours (the registry's sweeper closes sessions); rmcp's own timer is a
    // backstop a little later, for sessions we never saw (a request that bypassed tracking).
    session_manager.session_config.keep_alive =
        Some(registry.idle_timeout() + Duration::from_secs(60));
    let session_manager = Arc::new(session_manager);
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(stop)
        .with_json_response(true);
    let service =
        StreamableHttpService::new(move || Ok(factory()), session_manager.clone(), config);

    let closer_manager = session_manager.clone();
    registry.set_closer(
        target,
        Arc::new(move |id: String| {
            let manager = closer_manager.clone();
            tokio::spawn(async move {
                let _ = manager.close_session(&Arc::from(id.as_str())).await;
            });
        }),
    );
    let mcp = Router::new()
        .route_service("/mcp", service)
        .layer(middleware::from_fn(session_http_fixes));
    McpRouter {
        router: guarded_target_router(target, mcp, guard, registry),
        session_manager,
    }
}

/// Puts a target's MCP router (serving `/mcp`, or `/sse` and friends) behind what every target
/// port has: session tracking on every MCP route, the open `GET /health`, and the security
/// guard in front of everything.
pub fn guarded_target_router(
    target: &str,
    mcp: Router,
    guard: Arc<Guard>,
    registry: Arc<SessionRegistry>,
) -> Router {
    let tracker = Tracker {
        registry,
        target: target.to_owned(),
    };
    Router::new()
        .route("/health", get(security::health))
        .merge(mcp.layer(middleware::from_fn_with_state(tracker, sessions::track)))
        .layer(middleware::from_fn_with_state(guard, security::check))
}

/// Where rmcp's HTTP answers differ from what clients expect: a `GET /mcp` without
/// `Mcp-Session-Id` cannot open a session's stream, and the spec's answer is 405 (no stream
/// there), which clients treat as "no GET stream"; a `DELETE` that ended a session is a 200.
async fn session_http_fixes(request: Request, next: Next) -> Response {
    if request.method() == Method::GET
        && !request
            .headers()
            .contains_key(msm_core::headers::SESSION_ID)
        && !request.headers().contains_key("last-event-id")
    {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST, DELETE")],
            "Method Not Allowed: GET needs an Mcp-Session-Id",
        )
            .into_response();
    }
    let is_delete = request.method() == Method::DELETE;
    let mut response = next.run(request).await;
    if is_delete && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

/// Why a port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("port {port} on 127.0.0.1 is already in use by another process")]
    InUse { port: u16 },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Other { port: u16, source: std::io::Error },
}

/// Listens on `127.0.0.1:port` (loopback only, never another port).
pub fn bind_loopback(port: u16) -> Result<tokio::net::TcpListener, BindError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let other = |source| BindError::Other { port, source };
    let socket = tokio::net::TcpSocket::new_v4().map_err(other)?;
    // Lets a restarted host take its port back while old connections sit in TIME_WAIT; a
    // port someone is listening on still fails to bind.
    #[cfg(unix)]
    socket.set_reuseaddr(true).map_err(other)?;
    socket.bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            BindError::InUse { port }
        } else {
            other(e)
        }
    })?;
    socket.listen(1024).map_err(other)
}

/// Serves `router` on `listener` until `stop` is cancelled.
pub fn spawn_server(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use axum::serve::ListenerExt;
    // Small MCP answers must not wait for a delayed ACK (Nagle): one request, one round trip.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    tokio::spawn(async move {
        let result = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = result {
            tracing::error!("server stopped with an error: {e}");
        }
    })
}

/// Stops a server task: it had `grace` to finish its open connections, then it is aborted.
pub async fn join_server(task: tokio::task::JoinHandle<()>, grace: Duration) {
    let abort = task.abort_handle();
    if tokio::time::timeout(grace, task).await.is_err() {
        abort.abort();
    }
}
