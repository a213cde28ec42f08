//! Just enough JSON-RPC to route messages without rewriting them: ids, methods, the fields that
//! become HTTP headers, progress tokens; and the error answers the proxy writes itself.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Parse error (malformed JSON on stdin).
pub const PARSE_ERROR: i64 = -32700;
/// Invalid request (a line over the size limit).
pub const INVALID_REQUEST: i64 = -32600;
pub use msm_core::jsonrpc_codes::{ANSWER_LOST, REQUEST_TIMEOUT, TARGET_UNAVAILABLE};

/// A request id as its JSON text (`1`, `"abc"`), so that it can key a map and be echoed verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdKey(Box<str>);

impl IdKey {
    pub fn from_json_text(text: &str) -> IdKey {
        IdKey(text.trim().into())
    }
    pub fn as_json_text(&self) -> &str {
        &self.0
    }
}

/// What one JSON-RPC message is, for routing.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Request {
        id: IdKey,
        method: String,
    },
    Notification {
        method: String,
    },
    /// A result or an error; `id` is `None` for the `null` id of a parse error.
    Response {
        id: Option<IdKey>,
    },
}

/// The routing facts of one message; the message itself is never rewritten.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub kind: Kind,
    /// `params.name` (tools/call, prompts/get) or `params.uri` (resources/read): `Mcp-Name`.
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]` (stateless revision).
    pub protocol_version: Option<String>,
    /// `params._meta.progressToken` of a request, or `params.progressToken` of a progress
    /// notification.
    pub progress_token: Option<IdKey>,
    /// `params.requestId` of `notifications/cancelled`.
    pub cancelled_request: Option<IdKey>,
}

impl Inspected {
    pub fn method(&self) -> Option<&str> {
        match &self.kind {
            Kind::Request { method, .. } | Kind::Notification { method } => Some(method),
            Kind::Response { .. } => None,
        }
    }
    pub fn request_id(&self) -> Option<&IdKey> {
        match &self.kind {
            Kind::Request { id, .. } => Some(id),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct ProbeParams<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
    #[serde(borrow, default, rename = "_meta")]
    meta: Option<ProbeMeta<'a>>,
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "requestId")]
    request_id: Option<&'a RawValue>,
}

#[derive(Deserialize, Default)]
struct ProbeMeta<'a> {
    #[serde(borrow, default, rename = "progressToken")]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "io.modelcontextprotocol/protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

/// A line that is not JSON-RPC at all.
#[derive(Debug, thiserror::Error)]
#[error("not a JSON-RPC message: {0}")]
pub struct Malformed(String);

/// Inspects a message or a batch (one entry per element).
pub fn inspect(bytes: &[u8]) -> Result<Vec<Inspected>, Malformed> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let elements: Vec<&RawValue> =
            serde_json::from_slice(bytes).map_err(|e| Malformed(e.to_string()))?;
        if elements.is_empty() {
            return Err(Malformed("empty batch".into()));
        }
        elements
            .into_iter()
            .map(|raw| inspect_one(raw.get().as_bytes()))
            .collect()
    } else {
        Ok(vec![inspect_one(bytes)?])
    }
}

fn inspect_one(bytes: &[u8]) -> Result<Inspected, Malformed> {
    let probe: Probe<'_> = serde_json::from_slice(bytes).map_err(|e| Malformed(e.to_string()))?;
    let params: ProbeParams<'_> = probe
        .params
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default();
    let id = probe
        .id
        .filter(|raw| raw.get() != "null")
        .map(|raw| IdKey::from_json_text(raw.get()));
    let kind = match (probe.method, id) {
        (Some(method), Some(id)) => Kind::Request {
            id,
            method: method.into_owned(),
        },
        (Some(method), None) => Kind::Notification {
            method: method.into_owned(),
        },
        (None, id) => Kind::Response { id },
    };
    let name = match &kind {
        Kind::Request { method, .. } => match method.as_str() {
            "tools/call" | "prompts/get" => params.name.map(Cow::into_owned),
            "resources/read" => params.uri.map(Cow::into_owned),
            _ => None,
        },
        _ => None,
    };
    let meta = params.meta.unwrap_or_default();
    let progress_token = meta
        .progress_token
        .or(params.progress_token)
        .map(|raw| IdKey::from_json_text(raw.get()));
    Ok(Inspected {
        kind,
        name,
        protocol_version: meta.protocol_version.map(Cow::into_owned),
        progress_token,
        cancelled_request: params
            .request_id
            .map(|raw| IdKey::from_json_text(raw.get())),
    })
}

/// A JSON-RPC error answer with `id` echoed verbatim (`null` when unknown).
pub fn error_response(
    id: Option<&IdKey>,
    code: i64,
    message: &str,
    data: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{}}}"#,
        id.map_or("null", IdKey::as_json_text),
        error
    )
    .into_bytes()
}

/// Best effort: the `"id"` of the first few KiB of an oversized line, which is all we keep of it.
pub fn sniff_id(prefix: &[u8]) -> Option<IdKey> {
    let text = String::from_utf8_lossy(prefix);
    let mut rest = text.as_ref();
    while let Some(at) = rest.find("\"id\"") {
        let after = rest[at + 4..].trim_start();
        if let Some(value) = after.strip_prefix(':') {
            let value = value.trim_start();
            let end = if let Some(body) = value.strip_prefix('"') {
                body.find('"').map(|i| i + 2)
            } else {
                value.find(|c: char| !(c.is_ascii_digit() || c == '-'))
            };
            if let Some(end) = end.filter(|&e| e > 0) {
                let candidate = &value[..end];
                if serde_json::from_str::<serde_json::Value>(candidate)
                    .is_ok_and(|v| v.is_string() || v.is_number())
                {
                    return Some(IdKey::from_json_text(candidate));
                }
            }
        }
        rest = &rest[at + 4..];
    }
    None
}

/// The same message with its `id` replaced (used to replay a cached initialize under an id the
/// client never sees).
pub fn with_id(message: &[u8], id: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(message).ok()?;
    value.as_object_mut()?.insert("id".into(), id.into());
    serde_json::to_vec(&value).ok()
}

/// `result.protocolVersion` of an initialize answer.
pub fn negotiated_version(message: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        result: Option<InitResult>,
    }
    #[derive(Deserialize)]
    struct InitResult {
        #[serde(rename = "protocolVersion")]
        protocol_version: Option<String>,
    }
    let answer: Answer = serde_json::from_slice(message).ok()?;
    answer.result?.protocol_version
}

/// Stdout is newline-delimited: a message that spans lines (pretty-printed JSON from an SSE
/// stream) is re-serialised compactly, anything else passes byte for byte.
pub fn single_line(message: &[u8]) -> Cow<'_, [u8]> {
    if !message.contains(&b'\n') && !message.contains(&b'\r') {
        return Cow::Borrowed(message);
    }
    match serde_json::from_slice::<serde_json::Value>(message) {
        Ok(value) => Cow::Owned(serde_json::to_vec(&value).unwrap_or_default()),
        Err(_) => Cow::Owned(
            message
                .iter()
                .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Inspected {
        let mut all = inspect(text.as_bytes()).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn kinds_are_told_apart() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
                Kind::Request {
                    id: IdKey::from_json_text("1"),
                    method: "tools/list".into(),
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":"a b","method":"x/unknown","params":[1,2]}"#,
                Kind::Request {
                    id: IdKey::from_json_text("\"a b\""),
                    method: "x/unknown".into(),
                },
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Kind::Notification {
                    method: "notifications/initialized".into(),
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"result":{}}"#,
                Kind::Response {
                    id: Some(IdKey::from_json_text("7")),
                },
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#,
                Kind::Response { id: None },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(one(text).kind, expected, "{text}");
        }
    }

    #[test]
    fn routing_fields_are_found() {
        let call = one(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":"p1","io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        );
        assert_eq!(call.name.as_deref(), Some("echo"));
        assert_eq!(call.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(call.progress_token, Some(IdKey::from_json_text("\"p1\"")));
        let read = one(
            r#"{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"file:///x"}}"#,
        );
        assert_eq!(read.name.as_deref(), Some("file:///x"));
        let progress = one(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":5,"progress":1}}"#,
        );
        assert_eq!(progress.progress_token, Some(IdKey::from_json_text("5")));
        let cancelled =
            one(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}"#);
        assert_eq!(
            cancelled.cancelled_request,
            Some(IdKey::from_json_text("9"))
        );
    }

    #[test]
    fn batches_and_garbage() {
        let batch =
            inspect(br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}]"#)
                .unwrap();
        assert_eq!(batch.len(), 2);
        for bad in ["{", "[]", "nope", r#"{"id":1"#] {
            assert!(inspect(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_answers_echo_the_id() {
        let text = error_response(
            Some(&IdKey::from_json_text("\"x\"")),
            REQUEST_TIMEOUT,
            "late",
            None,
        );
        let value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(value["id"], "x");
        assert_eq!(value["error"]["code"], REQUEST_TIMEOUT);
        let null = error_response(None, PARSE_ERROR, "bad", Some(serde_json::json!({"a":1})));
        let value: serde_json::Value = serde_json::from_slice(&null).unwrap();
        assert!(value["id"].is_null());
        assert_eq!(value["error"]["data"]["a"], 1);
    }

    #[test]
    fn ids_are_sniffed_from_prefixes() {
        let cases: [(&str, Option<&str>); 4] = [
            (
                r#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"x":"#,
                Some("42"),
            ),
            (r#"{"id" : "abc","method""#, Some("\"abc\"")),
            (r#"{"method":"x","params":{"data":"#, None),
            (r#"{"params":{"id":{"#, None),
        ];
        for (prefix, expected) in cases {
            assert_eq!(
                sniff_id(prefix.as_bytes())
                    .as_ref()
                    .map(IdKey::as_json_text),
                expected,
                "{prefix}"
            );
        }
    }

    #[test]
    fn replay_ids_and_versions() {
        let init = br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}"#;
        let replay = with_id(init, "msm-proxy-replay-1").unwrap();
        assert_eq!(
            one(std::str::from_utf8(&replay).unwrap()).request_id(),
            Some(&IdKey::from_json_text("\"msm-proxy-replay-1\""))
        );
        assert_eq!(
            negotiated_version(
                br#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18"}}"#
            )
            .as_deref(),
            Some("2025-06-18")
        );
        assert_eq!(single_line(b"{\n\"a\": 1\n}").as_ref(), br#"{"a":1}"#);
        assert_eq!(single_line(b"{\"a\":1}").as_ref(), b"{\"a\":1}");
    }
}
