//! The manager API on 127.0.0.1:<manager port>: status, sessions, memory DBs, target control,
//! config reload/generation, shutdown, an SSE stream of state changes, and the web UI.
//!
//! Every route but `GET /health` and the UI needs the bearer token or the web UI's HttpOnly
//! cookie (state changes with the cookie only from the dashboard's own origin: see
//! `security`); the UI's page checks it in its own way (`/?token=`, then the cookie: see `ui`),
//! its script and stylesheet are open.
//! Every API error is an `AppError`, answered as `{"error": "..."}` with a fitting status.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::Deserialize;

mod adopt;
mod tools;

use crate::api_types;
use crate::control::HostRef;
use crate::security;
use crate::status::TargetError;

/// Paths the guard lets through without the bearer token: health, the UI's static files, and
/// the UI's page, whose handler checks the token itself (`?token=` or the cookie).
pub const OPEN_PATHS: &[&str] = &["/health", "/", "/index.html", "/app.js", "/style.css"];

type AppState = HostRef;

/// The one error type of the manager API.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A target that could not be made ready.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!("manager API: {self}");
        }
        (
            status,
            Json(api_types::ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<TargetError> for AppError {
    fn from(error: TargetError) -> Self {
        match error {
            TargetError::Unknown(_) => AppError::NotFound(error.to_string()),
            TargetError::Remote { .. } => AppError::BadRequest(error.to_string()),
            TargetError::Failed { .. } | TargetError::ShuttingDown => {
                AppError::Unavailable(error.to_string())
            }
        }
    }
}

impl From<crate::MemoryApiError> for AppError {
    fn from(error: crate::MemoryApiError) -> Self {
        match error {
            crate::MemoryApiError::UnknownDb(_) => AppError::NotFound(error.to_string()),
            crate::MemoryApiError::NotAvailable(_) => AppError::NotImplemented(error.to_string()),
            crate::MemoryApiError::Store(_) => AppError::Internal(error.to_string()),
        }
    }
}

/// The whole manager router, guarded.
pub(crate) fn router(host: AppState) -> Router {
    // The web UI calls the API with its HttpOnly cookie, never seeing the token.
    let guard = host.guard().with_cookie(crate::ui::TOKEN_COOKIE);
    Router::new()
        .merge(ui_routes())
        .merge(status_routes())
        .merge(daemon_routes())
        .merge(memory_routes())
        .merge(config_routes())
        .merge(adopt::routes())
        .merge(tools::routes())
        .layer(middleware::from_fn_with_state(guard, security::check))
        .with_state(host)
}

fn ui_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(ui_index))
        .route("/index.html", get(ui_index))
        .route("/app.js", get(ui_app_js))
        .route("/style.css", get(ui_style_css))
        .route("/health", get(security::health))
}

fn status_routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status_get))
        .route("/sessions", get(sessions_list))
        .route("/sessions/{target}/{id}/end", post(session_end))
        .route("/events", get(events_stream))
        .route("/shutdown", post(shutdown_post))
}

fn daemon_routes() -> Router<AppState> {
    Router::new()
        .route("/daemons/{name}/{action}", post(daemon_action))
        .route("/daemons/{name}/log", get(daemon_log))
}

/// `?from=` of the log route.
#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub from: Option<u64>,
}

async fn daemon_log(
    State(host): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<api_types::LogChunk>, AppError> {
    let target = host
        .status()
        .targets
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AppError::NotFound(format!("no target named `{name}`")))?;
    let path = target.log_path.ok_or_else(|| {
        AppError::NotFound(format!("`{name}` runs elsewhere: it has no log here"))
    })?;
    let chunk = tokio::task::spawn_blocking(move || {
        crate::log_tail::read_chunk(&name, std::path::Path::new(&path), query.from)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(format!("cannot read the log: {e}")))?;
    Ok(Json(chunk))
}

fn memory_routes() -> Router<AppState> {
    Router::new()
        .route("/memory/dbs", get(memory_dbs_list))
        .route("/memory/dbs/{id}/graph", get(memory_db_graph))
        .route("/memory/dbs/{id}/export", get(memory_db_export))
        .route(
            "/memory/dbs/{id}/entities/delete",
            post(memory_entities_delete),
        )
}

fn config_routes() -> Router<AppState> {
    Router::new()
        .route("/config/reload", post(config_reload))
        .route("/config/generate", post(config_generate))
        .route("/config/clients", get(config_clients))
}

async fn status_get(State(host): State<AppState>) -> Json<api_types::Status> {
    host.probe_remotes().await;
    Json(full_status(&host))
}

/// `/status`: the host's state plus what `target_facts` reads from the OS.
fn full_status(host: &HostRef) -> api_types::Status {
    let mut status = api_types::Status::from(&host.status());
    crate::target_facts::fill(&mut status, &host.config());
    status
}

async fn sessions_list(State(host): State<AppState>) -> Json<api_types::Sessions> {
    Json(api_types::Sessions {
        sessions: host
            .sessions()
            .list()
            .iter()
            .map(api_types::Session::from)
            .collect(),
    })
}

async fn session_end(
    State(host): State<AppState>,
    Path((target, id)): Path<(String, String)>,
) -> Result<Json<api_types::EndedSession>, AppError> {
    if !host.sessions().end(&target, &id) {
        return Err(AppError::NotFound(format!(
            "no session `{id}` of `{target}` (it may have ended already)"
        )));
    }
    Ok(Json(api_types::EndedSession { target, id }))
}

async fn daemon_action(
    State(host): State<AppState>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<api_types::DaemonAction>, AppError> {
    let result = match action.as_str() {
        "start" | "ensure" => host.start_target(&name).await,
        "stop" => host.stop_target(&name).await,
        "restart" => host.restart_target(&name).await,
        other => {
            return Err(AppError::NotFound(format!(
                "unknown action `{other}`; use start, stop, restart or ensure"
            )));
        }
    };
    result?;
    let target = full_status(&host)
        .targets
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| AppError::NotFound(format!("target `{name}` was removed meanwhile")))?;
    Ok(Json(api_types::DaemonAction {
        name,
        action,
        state: target.state,
        url: target.url.clone(),
        target,
    }))
}

async fn shutdown_post(State(host): State<AppState>) -> impl IntoResponse {
    tracing::info!("shutdown requested through the manager API");
    host.request_shutdown();
    (
        StatusCode::ACCEPTED,
        Json(api_types::Shutdown {
            status: "shutting down".into(),
            pid: std::process::id(),
        }),
    )
}

async fn events_stream(
    State(host): State<AppState>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let first = Event::default()
        .event("status")
        .json_data(full_status(&host))
        .unwrap_or_default();
    let receiver = host.events().subscribe();
    let stopping = host.stopping_token();
    let rest = futures::stream::unfold(
        (receiver, stopping),
        |(mut receiver, stopping)| async move {
            loop {
                let received = tokio::select! {
                    _ = stopping.cancelled() => return None,
                    received = receiver.recv() => received,
                };
                match received {
                    Ok(event) => {
                        let sse = Event::default()
                            .event("change")
                            .json_data(api_types::Event::from(&event))
                            .unwrap_or_default();
                        return Some((Ok(sse), (receiver, stopping)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    );
    let stream = futures::StreamExt::chain(futures::stream::once(async move { Ok(first) }), rest);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn memory_dbs_list(State(host): State<AppState>) -> Result<Json<api_types::Dbs>, AppError> {
    // SQLite (opening, migrating, full-text queries) blocks: off the async workers.
    let memory = host.memory().clone();
    let dbs = blocking(move || memory.list_dbs()).await??;
    Ok(Json(api_types::Dbs { dbs }))
}

/// `?q=&offset=&limit=` of the graph route.
#[derive(Debug, Deserialize)]
pub struct GraphQuery {
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub offset: Option<usize>,
    #[serde(default)]
    pub limit: Option<usize>,
}

async fn memory_db_graph(
    State(host): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<GraphQuery>,
) -> Result<Json<api_types::GraphPage>, AppError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let memory = host.memory().clone();
    let page = blocking(move || {
        memory.graph_page(
            &id,
            query.q.as_deref().unwrap_or(""),
            query.offset.unwrap_or(0),
            limit,
        )
    })
    .await??;
    Ok(Json(page))
}

/// `?format=` of the export route: `json` (read_graph's answer) or `jsonl` (the reference
/// server's `memory.jsonl`, which `mcp-session-manager memory import` reads back).
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    pub format: Option<String>,
}

async fn memory_db_export(
    State(host): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, AppError> {
    let jsonl = match query.format.as_deref() {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "unknown export format `{other}`; use json or jsonl"
            )));
        }
    };
    let memory = host.memory().clone();
    let export_id = id.clone();
    let body = blocking(move || memory.export(&export_id, jsonl)).await??;
    let (content_type, extension) = if jsonl {
        ("application/x-ndjson", "jsonl")
    } else {
        ("application/json", "json")
    };
    let disposition = format!("attachment; filename=\"memory-{id}.{extension}\"");
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

async fn memory_entities_delete(
    State(host): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<api_types::EntityNames>,
) -> Result<Json<api_types::EntityNames>, AppError> {
    if body.names.is_empty() {
        return Err(AppError::BadRequest(
            "name the entities to delete (`names`)".into(),
        ));
    }
    let memory = host.memory().clone();
    let names = body.names.clone();
    blocking(move || memory.delete_entities(&id, &names)).await??;
    Ok(Json(body))
}

/// Runs SQLite work on the blocking pool; a panic there is an internal error, not a crash.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("memory task failed: {e}")))
}

async fn config_reload(State(host): State<AppState>) -> Result<Json<api_types::Reload>, AppError> {
    let summary = crate::reload::reload(&host)
        .await
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    Ok(Json(api_types::Reload::from(&summary)))
}

impl From<msm_client_config::ConfigWriteError> for AppError {
    fn from(error: msm_client_config::ConfigWriteError) -> Self {
        if error.is_bad_request() {
            AppError::BadRequest(error.to_string())
        } else {
            AppError::Internal(error.to_string())
        }
    }
}

/// Merges our proxy entries into an MCP client's config file (or, with `dry_run`, only
/// reports the diff). The body is msm-client-config's `GenerateOptions` (every field
/// optional); the answer its report (`GenerateReport::to_json`).
/// `GET /config/clients`: every client file `generate-config` knows, and our entries in it
/// (what a dry-run removal would take out: the same reading of the file, nothing written).
async fn config_clients(
    State(host): State<AppState>,
) -> Result<Json<api_types::Clients>, AppError> {
    let config = host.config();
    let clients = blocking(move || {
        let dirs = msm_client_config::ClientDirs::from_env()?;
        let clients = msm_client_config::ClientKind::ALL
            .into_iter()
            .map(|client| {
                let options = msm_client_config::GenerateOptions {
                    client,
                    remove: true,
                    dry_run: true,
                    ..Default::default()
                };
                let report = options
                    .into_request(
                        &config,
                        dirs.clone(),
                        msm_client_config::find_proxy_for_current_exe,
                    )
                    .and_then(|request| msm_client_config::generate(&request));
                let file = dirs.config_file(client);
                api_types::ClientFile {
                    client: client.as_str().into(),
                    name: client.display_name().into(),
                    exists: file.exists(),
                    file: file.display().to_string(),
                    ours: report
                        .as_ref()
                        .map(|r| r.entries.iter().map(|e| e.name.clone()).collect())
                        .unwrap_or_default(),
                    error: report.err().map(|e| e.to_string()),
                }
            })
            .collect();
        Ok::<_, msm_client_config::ConfigWriteError>(clients)
    })
    .await??;
    Ok(Json(api_types::Clients { clients }))
}

async fn config_generate(
    State(host): State<AppState>,
    body: Option<Json<serde_json::Value>>,
) -> Result<Json<api_types::Generate>, AppError> {
    let body = body
        .map(|Json(b)| b)
        .unwrap_or_else(|| serde_json::json!({}));
    let options: msm_client_config::GenerateOptions = serde_json::from_value(body)
        .map_err(|e| AppError::BadRequest(format!("bad request body: {e}")))?;
    tracing::info!(
        client = ?options.client,
        dry_run = options.dry_run,
        remove = options.remove,
        "config generate requested"
    );
    let config = host.config();
    let report = tokio::task::spawn_blocking(move || {
        let request = options.into_request(
            &config,
            msm_client_config::ClientDirs::from_env()?,
            msm_client_config::find_proxy_for_current_exe,
        )?;
        msm_client_config::generate(&request)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    api_types::Generate::from_report(&report)
        .map(Json)
        .map_err(AppError::Internal)
}

/// `?token=` of the page: how the tray and `mcp-session-manager status` open the dashboard.
#[derive(Debug, Deserialize)]
struct PageQuery {
    #[serde(default)]
    token: Option<String>,
}

/// The web UI's page, for whoever holds the token: `?token=` is swapped for a cookie by a
/// redirect, the cookie gets the page (which holds no token), anyone else a 401 page saying
/// how to open the dashboard.
async fn ui_index(
    uri: Uri,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, QueryRejection>,
    State(host): State<AppState>,
) -> Response {
    // The guard has checked this already; the page must never go to a foreign origin.
    if let Err(refusal) = security::check_loopback(&headers) {
        return refusal.into_response();
    }
    let query_token = match &query {
        Ok(Query(query)) => query.token.as_deref(),
        // An unreadable query string is a link we did not make: treat it as a wrong one.
        Err(_) => Some(""),
    };
    let private = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // The page loads only its own files and talks only to this manager; no framing.
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        ),
    ];
    match crate::ui::page_access(query_token, &headers, host.token()) {
        crate::ui::PageAccess::SetCookieAndRedirect => {
            tracing::info!("web UI: token link accepted, swapped for the cookie");
            #[expect(clippy::expect_used, reason = "a hex token is a valid header value")]
            let cookie = HeaderValue::from_str(&crate::ui::token_cookie(host.token()))
                .expect("a hex token is a valid header value");
            let location = if uri.path() == "/index.html" {
                "/index.html"
            } else {
                "/"
            };
            (
                StatusCode::SEE_OTHER,
                private,
                [
                    (header::SET_COOKIE, cookie),
                    (header::LOCATION, HeaderValue::from_static(location)),
                ],
            )
                .into_response()
        }
        crate::ui::PageAccess::Page => {
            tracing::info!("web UI: page served");
            (private, Html(crate::ui::INDEX_HTML)).into_response()
        }
        access @ (crate::ui::PageAccess::WrongToken | crate::ui::PageAccess::NoToken) => {
            let wrong_link = access == crate::ui::PageAccess::WrongToken;
            tracing::info!(
                wrong_link,
                "web UI: page refused without the token (the tray's \"Open dashboard\" or the \
                 Dashboard address of `mcp-session-manager status` opens it)"
            );
            let page = crate::ui::locked_page(wrong_link);
            (StatusCode::UNAUTHORIZED, private, Html(page)).into_response()
        }
    }
}

async fn ui_app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        crate::ui::APP_JS,
    )
}

async fn ui_style_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        crate::ui::STYLE_CSS,
    )
}
