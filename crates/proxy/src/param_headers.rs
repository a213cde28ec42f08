//! The stateless revision's `Mcp-Param-*` headers: a tool argument whose schema property carries
//! `x-mcp-header: TOKEN` is mirrored into `Mcp-Param-TOKEN` on every `tools/call`, and servers
//! check that header and body agree. Over stdio the client sends no headers, so the proxy learns
//! the annotations from the `tools/list` answers it forwards and adds the headers itself.

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use msm_core::{header_codec, headers};

/// The annotation key in a property's JSON schema.
const ANNOTATION: &str = "x-mcp-header";

/// Tool name -> (property path, header token) for every annotated property.
#[derive(Debug, Default)]
pub struct ParamHeaders {
    by_tool: HashMap<String, Vec<(Vec<String>, String)>>,
}

impl ParamHeaders {
    /// Records the annotations of the tools in one `tools/list` answer (a page adds to the rest).
    pub fn learn(&mut self, answer: &[u8]) {
        let Ok(value) = serde_json::from_slice::<Value>(answer) else {
            return;
        };
        let Some(tools) = value.pointer("/result/tools").and_then(Value::as_array) else {
            return;
        };
        for tool in tools {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                continue;
            };
            let mut found = Vec::new();
            if let Some(schema) = tool.get("inputSchema") {
                annotated(schema, &mut Vec::new(), &mut found);
            }
            if found.is_empty() {
                self.by_tool.remove(name);
            } else {
                self.by_tool.insert(name.to_owned(), found);
            }
        }
    }

    /// Adds the `Mcp-Param-*` headers of a `tools/call` of `tool` to `headers`.
    pub fn add_headers(&self, tool: &str, call: &[u8], headers: &mut HeaderMap) {
        let Some(annotations) = self.by_tool.get(tool) else {
            return;
        };
        let Ok(message) = serde_json::from_slice::<Value>(call) else {
            return;
        };
        let Some(arguments) = message.pointer("/params/arguments") else {
            return;
        };
        for (path, token) in annotations {
            let value = path.iter().try_fold(arguments, |node, key| node.get(key));
            let Some(text) = value.and_then(render) else {
                continue;
            };
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(format!("{}{token}", headers::MCP_PARAM_PREFIX).as_bytes()),
                HeaderValue::from_str(&header_codec::encode(&text)),
            ) {
                headers.insert(name, value);
            }
        }
    }
}

/// Walks nested `properties` only: annotations reached through other keywords do not count.
fn annotated(schema: &Value, path: &mut Vec<String>, found: &mut Vec<(Vec<String>, String)>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, property) in properties {
        path.push(key.clone());
        if let Some(token) = property.get(ANNOTATION).and_then(Value::as_str) {
            found.push((path.clone(), token.to_owned()));
        }
        annotated(property, path, found);
        path.pop();
    }
}

/// Scalars as the SDKs render them; objects, arrays and null mirror nothing.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_owned()),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_f64() => n.as_f64().map(|f| format!("{f:?}")),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_arguments_become_headers() {
        let mut params = ParamHeaders::default();
        params.learn(
            br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[
                {"name":"deploy","inputSchema":{"type":"object","properties":{
                    "region":{"type":"string","x-mcp-header":"Region"},
                    "dry":{"type":"boolean","x-mcp-header":"Dry"},
                    "size":{"type":"number","x-mcp-header":"Size"},
                    "target":{"type":"object","properties":{"zone":{"type":"string","x-mcp-header":"Zone"}}},
                    "list":{"type":"array","items":{"type":"string","x-mcp-header":"Nope"}},
                    "plain":{"type":"string"}}}},
                {"name":"echo","inputSchema":{"type":"object","properties":{"m":{"type":"string"}}}}]}}"#,
        );
        let mut headers = HeaderMap::new();
        params.add_headers(
            "deploy",
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"deploy","arguments":{
                "region":"eu west","dry":true,"size":1.5,"target":{"zone":"\u00e9"},"list":["x"],"plain":"p"}}}"#,
            &mut headers,
        );
        assert_eq!(headers["mcp-param-region"], "eu west");
        assert_eq!(headers["mcp-param-dry"], "true");
        assert_eq!(headers["mcp-param-size"], "1.5");
        assert_eq!(headers["mcp-param-zone"], "=?base64?w6k=?=");
        assert_eq!(headers.len(), 4, "{headers:?}");
        let mut none = HeaderMap::new();
        params.add_headers("echo", br#"{"params":{"arguments":{"m":"x"}}}"#, &mut none);
        params.add_headers(
            "unknown",
            br#"{"params":{"arguments":{"m":"x"}}}"#,
            &mut none,
        );
        assert!(none.is_empty());
    }
}
