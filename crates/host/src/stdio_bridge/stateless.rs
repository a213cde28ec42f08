//! The stateless revision (2026-07-28) on the stdio bridge: a request without `Mcp-Session-Id`
//! that carries its client context in `_meta` (or a `server/discover`) is served on its own,
//! with no session, by the shared child (per-session targets: by one child kept for stateless
//! clients, see [`StdioBridge::stateless_upstream`]).
//!
//! The wire follows rmcp's `StreamableHttpService`, which serves the memory target:
//! - `_meta.io.modelcontextprotocol/protocolVersion` needs the same `MCP-Protocol-Version`
//!   header (else 400, `-32020` header mismatch); `protocolVersion` and `clientCapabilities`
//!   are required (else 400, `-32602`); an unknown version is 400, `-32022`, with the supported
//!   ones in `data`; at 2026-07-28 `Mcp-Method` (and `Mcp-Name` for `tools/call`,
//!   `prompts/get`, `resources/read`, Base64-decoded when wrapped) must be sent and match the
//!   body (else 400, `-32020`). `Mcp-Param-*` headers are not checked: the session-revision
//!   children the bridge runs do not annotate their tools with `x-mcp-header`.
//! - `server/discover` is answered from the child's initialize result: `supportedVersions`,
//!   its capabilities, `instructions`, `serverInfo` in `_meta`, `ttlMs: 0`,
//!   `cacheScope: "private"`.
//! - `subscriptions/listen` opens an SSE stream that stays open: the acknowledgement (what the
//!   child can send of what was asked), then the child's list-changed notifications and the
//!   updates of the resources it names, each with the listen request's id in `_meta`.
//! - Other requests go to the child (client context stripped: the child was initialized once)
//!   and their answer comes back as JSON, or as an SSE stream when progress comes first;
//!   results get `resultType` and, when cacheable, caching hints. The child's questions
//!   (sampling, elicitation, roots) become `input_required` answers (see `upstream`); its log
//!   messages go on the streams of the running requests whose `_meta` log level admits them.
//! - A method not found is 404, notifications are 202 (and dropped: a stateless client cancels
//!   by closing its response, which cancels the child's request), a JSON-RPC response is 400,
//!   a batch is 400; `ping`, `logging/setLevel` and `resources/(un)subscribe` are not served
//!   statelessly (-32601, 404).
//! - `GET` and `DELETE` need a session (405 / 400), as before.

use super::*;
use futures::StreamExt;
use msm_core::{header_codec, meta_keys};
use upstream::{INVALID_PARAMS, ListenFilter, METHOD_NOT_FOUND};

/// The stateless revision.
pub const STATELESS_PROTOCOL_VERSION: &str = "2026-07-28";
/// The revision the bridge initializes its child with when a stateless client comes first.
const CHILD_PROTOCOL_VERSION: &str = "2025-11-25";

const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Methods a stateless client does not get: gone in 2026-07-28 (`subscriptions/listen` takes
/// the place of the subscribe pair), or they would change the shared child for every client
/// (log level).
const NOT_SERVED_STATELESSLY: &[&str] = &[
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
];

fn is_modern(version: &str) -> bool {
    version >= STATELESS_PROTOCOL_VERSION
}

/// Serves a POST without `Mcp-Session-Id` if it belongs to the stateless revision; `None`
/// leaves it to the session revisions (an `initialize`, or a request without `_meta` client
/// context and without a 2026-07-28 header).
pub(super) async fn handle_post(
    bridge: &Arc<StdioBridge>,
    headers: &HeaderMap,
    messages: &[Value],
    batch: bool,
    json_ok: bool,
    sse_ok: bool,
) -> Option<Response> {
    let header_modern = header_version(headers).is_some_and(is_modern);
    if batch {
        let any_context = messages.iter().any(|m| meta_version(m).is_some());
        return (header_modern || any_context).then(|| {
            answer_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                INVALID_REQUEST,
                "Invalid Request: the stateless revision (2026-07-28) has no batches",
            )
        });
    }
    let message = &messages[0];
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").filter(|id| !id.is_null());
    match (method, id) {
        (Some("initialize"), _) => None,
        (Some(method), Some(id)) => {
            if meta_version(message).is_none() && method != "server/discover" && !header_modern {
                return None;
            }
            Some(request(bridge, headers, message, method, id, json_ok, sse_ok).await)
        }
        (Some(_), None) => header_modern.then(|| StatusCode::ACCEPTED.into_response()),
        (None, _) => header_modern.then(|| {
            answer_error(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                INVALID_REQUEST,
                "stateless server does not accept JSON-RPC responses",
            )
        }),
    }
}

fn header_version(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(headers::PROTOCOL_VERSION)
        .map(|v| v.to_str().unwrap_or(""))
}

fn meta(message: &Value) -> Option<&Value> {
    message.get("params").and_then(|p| p.get("_meta"))
}

fn meta_version(message: &Value) -> Option<&str> {
    meta(message)
        .and_then(|m| m.get(meta_keys::PROTOCOL_VERSION))
        .and_then(Value::as_str)
}

/// The required `_meta` keys of 2026-07-28 that are absent or malformed.
fn missing_context(message: &Value) -> Vec<&'static str> {
    let meta = meta(message);
    let mut missing = Vec::new();
    if meta_version(message).is_none() {
        missing.push(meta_keys::PROTOCOL_VERSION);
    }
    if !meta
        .and_then(|m| m.get(meta_keys::CLIENT_CAPABILITIES))
        .is_some_and(Value::is_object)
    {
        missing.push(meta_keys::CLIENT_CAPABILITIES);
    }
    missing
}

async fn request(
    bridge: &Arc<StdioBridge>,
    headers: &HeaderMap,
    message: &Value,
    method: &str,
    id: &Value,
    json_ok: bool,
    sse_ok: bool,
) -> Response {
    let bad = |code: i64, text: &str| answer_error(StatusCode::BAD_REQUEST, id, code, text);
    match (meta_version(message), header_version(headers)) {
        (Some(_), None) => {
            return bad(
                HEADER_MISMATCH,
                "request _meta protocolVersion requires MCP-Protocol-Version header",
            );
        }
        (Some(in_meta), Some(in_header)) if in_meta != in_header => {
            return bad(
                HEADER_MISMATCH,
                &format!(
                    "MCP-Protocol-Version header ({in_header}) does not match request _meta protocolVersion ({in_meta})"
                ),
            );
        }
        _ => {}
    }
    let missing = missing_context(message);
    if !missing.is_empty() {
        return bad(
            INVALID_PARAMS,
            &format!(
                "Invalid params: request _meta is missing or has malformed required fields: {}",
                missing.join(", ")
            ),
        );
    }
    let version = meta_version(message).unwrap_or_default();
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {
            "code": UNSUPPORTED_PROTOCOL_VERSION,
            "message": "Unsupported protocol version",
            "data": {"requested": version, "supported": SUPPORTED_PROTOCOL_VERSIONS},
        }});
        return json_answer(StatusCode::BAD_REQUEST, &body);
    }
    if is_modern(version)
        && let Err(reason) = check_standard_headers(headers, message, method)
    {
        return bad(HEADER_MISMATCH, &reason);
    }

    let project = match super::session_project(headers) {
        Ok(project) => project,
        Err(reason) => return bad(INVALID_REQUEST, &reason),
    };
    let upstream = match bridge.stateless_upstream(project.as_deref()) {
        Ok(upstream) => upstream,
        Err(reason) => {
            return answer_error(StatusCode::OK, id, INTERNAL_ERROR, &reason.to_string());
        }
    };
    let params = child_initialize_params(meta(message));
    let initialized = match upstream
        .initialize(&params, bridge.spec.ready_timeout)
        .await
    {
        Ok(result) => result,
        Err(reason) => {
            return answer_error(StatusCode::OK, id, INTERNAL_ERROR, &reason.to_string());
        }
    };
    if method == "server/discover" {
        let body = json!({"jsonrpc": "2.0", "id": id, "result": discover_result(&initialized)});
        return json_answer(StatusCode::OK, &body);
    }
    if NOT_SERVED_STATELESSLY.contains(&method) {
        return answer_error(
            StatusCode::NOT_FOUND,
            id,
            METHOD_NOT_FOUND,
            &format!(
                "Method not found: `{method}` is not served to stateless (2026-07-28) clients here"
            ),
        );
    }
    if method == "subscriptions/listen" {
        return listen(upstream, message, id, &initialized);
    }
    let (reply_tx, mut reply_rx) = mpsc::unbounded_channel();
    let forwarded = message.clone();
    tokio::spawn(async move {
        upstream.forward_stateless(forwarded, reply_tx).await;
    });
    if sse_ok && json_ok {
        match tokio::time::timeout(JSON_FIRST_WAIT, reply_rx.recv()).await {
            Ok(Some(Outgoing::Final(answer))) => final_answer(&answer),
            Ok(Some(related)) => sse_response(Some(related), reply_rx, 1),
            Ok(None) => dropped(id),
            Err(_) => sse_response(None, reply_rx, 1),
        }
    } else if sse_ok {
        sse_response(None, reply_rx, 1)
    } else {
        // JSON only: progress has nowhere to go.
        loop {
            match reply_rx.recv().await {
                Some(Outgoing::Final(answer)) => return final_answer(&answer),
                Some(Outgoing::Related(_)) => continue,
                None => return dropped(id),
            }
        }
    }
}

/// `subscriptions/listen`: an SSE stream that stays open, first the acknowledgement of what
/// the child can send (the requested change notifications it declares, the resource updates if
/// it supports subscriptions), then those notifications as they come; closing it ends the
/// subscription (and the child's resource subscriptions nobody else follows).
fn listen(upstream: Arc<Upstream>, message: &Value, id: &Value, initialized: &Value) -> Response {
    let requested = message
        .pointer("/params/notifications")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let capabilities = initialized.get("capabilities");
    let declares = |kind: &str, flag: &str| {
        capabilities
            .and_then(|c| c.get(kind))
            .and_then(|c| c.get(flag))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let asked = |field: &str| requested.get(field).and_then(Value::as_bool) == Some(true);
    let filter = ListenFilter {
        subscription_id: id.clone(),
        tools_list_changed: asked("toolsListChanged") && declares("tools", "listChanged"),
        prompts_list_changed: asked("promptsListChanged") && declares("prompts", "listChanged"),
        resources_list_changed: asked("resourcesListChanged")
            && declares("resources", "listChanged"),
    };
    let uris: Vec<String> = if declares("resources", "subscribe") {
        requested
            .get("resourceSubscriptions")
            .and_then(Value::as_array)
            .map(|uris| {
                uris.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut accepted = serde_json::Map::new();
    for (field, on) in [
        ("toolsListChanged", filter.tools_list_changed),
        ("promptsListChanged", filter.prompts_list_changed),
        ("resourcesListChanged", filter.resources_list_changed),
    ] {
        if on {
            accepted.insert(field.into(), json!(true));
        }
    }
    if requested.get("resourceSubscriptions").is_some() && declares("resources", "subscribe") {
        accepted.insert("resourceSubscriptions".into(), json!(uris));
    }
    let acknowledged = json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
    "params": {
        "notifications": accepted,
        "_meta": {(meta_keys::SUBSCRIPTION_ID): id},
    }});
    let key: SessionId = Arc::from(format!("listen-{}", uuid::Uuid::new_v4().simple()));
    let rx = upstream.open_listen(key.clone(), filter, &uris);
    let guard = ListenGuard { upstream, key };
    let events = futures::stream::once(async move { acknowledged }).chain(futures::stream::unfold(
        (rx, guard),
        |(mut rx, guard)| async move {
            let message = rx.recv().await?;
            Some((message, (rx, guard)))
        },
    ));
    sse(events.map(|message| {
        Ok::<_, Infallible>(Event::default().event("message").data(message.to_string()))
    }))
}

/// Ends a listener's subscription when its stream is dropped (the client closed it).
struct ListenGuard {
    upstream: Arc<Upstream>,
    key: SessionId,
}

impl Drop for ListenGuard {
    fn drop(&mut self) {
        self.upstream.remove_session(&self.key);
    }
}

fn dropped(id: &Value) -> Response {
    answer_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        id,
        INTERNAL_ERROR,
        "the request was dropped",
    )
}

/// SEP-2243 standard headers: `Mcp-Method` always, `Mcp-Name` for the methods that name
/// something, each matching the body. (A Base64-wrapped `Mcp-Name` is taken as sent.)
fn check_standard_headers(
    headers: &HeaderMap,
    message: &Value,
    method: &str,
) -> Result<(), String> {
    let methods: Vec<&HeaderValue> = headers.get_all(headers::MCP_METHOD).iter().collect();
    match methods.as_slice() {
        [] => return Err("missing required Mcp-Method header".into()),
        [value] if value.to_str().ok() == Some(method) => {}
        [value] => {
            return Err(format!(
                "Mcp-Method header `{}` does not match body method `{method}`",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        _ => return Err("multiple Mcp-Method header values".into()),
    }
    let key = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return Ok(()),
    };
    let Some(expected) = message
        .get("params")
        .and_then(|p| p.get(key))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let names: Vec<&HeaderValue> = headers.get_all(headers::MCP_NAME).iter().collect();
    match names.as_slice() {
        [] => Err(format!("missing required Mcp-Name header for `{method}`")),
        [value] => {
            let value = value
                .to_str()
                .map_err(|_| "Mcp-Name header has invalid characters".to_owned())?;
            let decoded = header_codec::decode(value)
                .ok_or_else(|| "Mcp-Name header is not valid Base64".to_owned())?;
            if decoded == expected {
                Ok(())
            } else {
                Err(format!(
                    "Mcp-Name header `{decoded}` does not match body value `{expected}`"
                ))
            }
        }
        _ => Err("multiple Mcp-Name header values".into()),
    }
}

/// The initialize params the child gets when a stateless client is the first to come: the
/// client's own context from `_meta`, in the newest session revision.
fn child_initialize_params(meta: Option<&Value>) -> Value {
    let get = |key: &str| meta.and_then(|m| m.get(key)).cloned();
    json!({
        "protocolVersion": CHILD_PROTOCOL_VERSION,
        "capabilities": get(meta_keys::CLIENT_CAPABILITIES).unwrap_or_else(|| json!({})),
        "clientInfo": get(meta_keys::CLIENT_INFO).unwrap_or_else(|| json!({
            "name": "mcp-session-manager",
            "version": env!("CARGO_PKG_VERSION"),
        })),
    })
}

/// `server/discover`'s result, from the child's initialize result.
pub(super) fn discover_result(initialized: &Value) -> Value {
    let capabilities = initialized
        .get("capabilities")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut result = json!({
        "resultType": "complete",
        "supportedVersions": SUPPORTED_PROTOCOL_VERSIONS,
        "capabilities": capabilities,
        "ttlMs": 0,
        "cacheScope": "private",
    });
    if let Some(instructions) = initialized.get("instructions").filter(|i| i.is_string()) {
        result["instructions"] = instructions.clone();
    }
    if let Some(server_info) = initialized.get("serverInfo") {
        result["_meta"] = json!({ (meta_keys::SERVER_INFO): server_info });
    }
    result
}

/// A stateless request's answer as plain JSON, with the status rmcp gives it: a method not
/// found is 404, a version or header problem 400, anything else 200.
fn final_answer(answer: &Value) -> Response {
    let status = match answer.pointer("/error/code").and_then(Value::as_i64) {
        Some(METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
        Some(HEADER_MISMATCH | -32021 | UNSUPPORTED_PROTOCOL_VERSION) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    json_answer(status, answer)
}

fn answer_error(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    json_answer(status, &error_response(id, code, message))
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
