//! The Tools page's routes: list what a target offers and call a tool, through an MCP client
//! session of the host's own on the target's port (the same guard, sessions and children any
//! client gets), opened for the request and closed after it.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderName, HeaderValue};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};

use super::{AppError, AppState};
use crate::api_types::{PromptInfo, ResourceInfo, TargetOffer, ToolCall, ToolCallAnswer, ToolInfo};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/targets/{name}/tools", get(offer))
        .route("/targets/{name}/tools/call", post(call))
}

async fn connect(
    host: &AppState,
    name: &str,
    project: Option<&str>,
) -> Result<RunningService<RoleClient, ()>, AppError> {
    let config = host.config();
    let target = config
        .target(name)
        .map_err(|e| AppError::NotFound(e.to_string()))?;
    if target.transport == msm_core::Transport::Sse {
        return Err(AppError::NotImplemented(format!(
            "`{name}` speaks legacy SSE; the Tools page lists streamable HTTP and stdio targets"
        )));
    }
    let mut headers = HashMap::new();
    if let Some(project) = project.filter(|p| !p.is_empty()) {
        let value = HeaderValue::from_str(&msm_core::header_codec::encode(project))
            .map_err(|e| AppError::BadRequest(format!("bad project path: {e}")))?;
        headers.insert(
            HeaderName::from_static(msm_core::headers::PROJECT_PATH),
            value,
        );
    }
    let transport_config = StreamableHttpClientTransportConfig::with_uri(target.endpoint_url())
        .auth_header(host.token().as_str().to_owned())
        .custom_headers(headers);
    ().serve(StreamableHttpClientTransport::from_config(transport_config))
        .await
        .map_err(|e| AppError::Unavailable(format!("`{name}` did not answer initialize: {e}")))
}

async fn offer(
    State(host): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<TargetOffer>, AppError> {
    let started = Instant::now();
    let client = connect(&host, &name, None).await?;
    let info = client.peer_info();
    let capabilities = info
        .as_ref()
        .map(|i| i.capabilities.clone())
        .unwrap_or_default();
    let server = info
        .as_ref()
        .and_then(|i| i.server_info.as_ref())
        .map(|s| format!("{} {}", s.name, s.version));
    let failed = |what: &str, e: rmcp::ServiceError| {
        AppError::Unavailable(format!("`{name}` did not list its {what}: {e}"))
    };
    let tools = match capabilities.tools {
        Some(_) => client
            .list_all_tools()
            .await
            .map_err(|e| failed("tools", e))?,
        None => Vec::new(),
    };
    let prompts = match capabilities.prompts {
        Some(_) => client
            .list_all_prompts()
            .await
            .map_err(|e| failed("prompts", e))?,
        None => Vec::new(),
    };
    let resources = match capabilities.resources {
        Some(_) => client
            .list_all_resources()
            .await
            .map_err(|e| failed("resources", e))?,
        None => Vec::new(),
    };
    let _ = client.cancel().await;
    Ok(Json(TargetOffer {
        target: name,
        server,
        tools: tools
            .into_iter()
            .map(|t| ToolInfo {
                name: t.name.into_owned(),
                description: t.description.map(|d| d.into_owned()),
                input_schema: serde_json::Value::Object((*t.input_schema).clone()),
            })
            .collect(),
        prompts: prompts
            .into_iter()
            .map(|p| PromptInfo {
                name: p.name,
                description: p.description,
                arguments: p
                    .arguments
                    .unwrap_or_default()
                    .into_iter()
                    .map(|a| a.name)
                    .collect(),
            })
            .collect(),
        resources: resources
            .into_iter()
            .map(|r| ResourceInfo {
                uri: r.uri,
                name: r.name,
                mime_type: r.mime_type,
            })
            .collect(),
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    }))
}

async fn call(
    State(host): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<ToolCall>,
) -> Result<Json<ToolCallAnswer>, AppError> {
    let client = connect(&host, &name, body.project.as_deref()).await?;
    let started = Instant::now();
    let result = client
        .call_tool(CallToolRequestParams::new(body.tool.clone()).with_arguments(body.arguments))
        .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
    let _ = client.cancel().await;
    match result {
        Ok(result) => Ok(Json(ToolCallAnswer {
            is_error: result.is_error.unwrap_or(false),
            result: serde_json::to_value(&result).unwrap_or_default(),
            elapsed_ms,
        })),
        // A JSON-RPC error (an unknown tool, bad arguments) is the call's answer too.
        Err(rmcp::ServiceError::McpError(error)) => Ok(Json(ToolCallAnswer {
            is_error: true,
            result: serde_json::json!({ "error": error }),
            elapsed_ms,
        })),
        Err(e) => Err(AppError::Unavailable(format!(
            "`{name}` did not answer the call of `{}`: {e}",
            body.tool
        ))),
    }
}
