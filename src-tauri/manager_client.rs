//! The tray's client of a manager API over HTTP: asking a headless host to hand over
//! (`POST /shutdown`) and generating Claude Code's config (`POST /config/generate`), the same
//! routes the CLI and the web UI use. Status and target actions go to the in-process host.

use std::time::Duration;

use serde_json::{Value, json};

/// The manager API of this user's host, reached on loopback with the state dir's token.
#[derive(Clone)]
pub struct ManagerClient {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

/// A manager API call that did not succeed; the message names the host and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("the manager at {url} does not answer: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{what} failed: HTTP {status}: {message}")]
    Refused {
        what: String,
        status: u16,
        message: String,
    },
}

impl ManagerClient {
    /// A client of the manager on `127.0.0.1:port`; never goes through an HTTP proxy.
    pub fn new(port: u16, token: &str) -> ManagerClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        ManagerClient {
            base_url: format!("http://127.0.0.1:{port}"),
            token: token.to_owned(),
            http,
        }
    }

    /// The dashboard's address: the web UI served by the manager, opened with `?token=` (the
    /// manager answers it with a redirect to `/` that keeps the token in an HttpOnly cookie, so
    /// it leaves the address bar and a reload still works; without it the page is locked).
    pub fn dashboard_url(&self) -> String {
        format!("{}/?token={}", self.base_url, self.token)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, ManagerError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .timeout(timeout);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ManagerError::Unreachable {
                url: self.base_url.clone(),
                source,
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            return Err(ManagerError::Refused {
                what: path.to_owned(),
                status: status.as_u16(),
                message: error_message(&value),
            });
        }
        Ok(value)
    }

    /// `POST /config/generate` for Claude Code (a real write; the web UI shows the dry run).
    pub async fn configure_claude_code(&self) -> Result<Value, ManagerError> {
        let body = json!({"client": "claude-code", "dry_run": false});
        self.call(
            reqwest::Method::POST,
            "/config/generate",
            Some(body),
            Duration::from_secs(30),
        )
        .await
    }

    /// `POST /shutdown`: asks a (headless) host to hand over its ports.
    pub async fn shutdown(&self) -> Result<(), ManagerError> {
        self.call(
            reqwest::Method::POST,
            "/shutdown",
            None,
            Duration::from_secs(10),
        )
        .await
        .map(|_| ())
    }
}

/// A short, readable message out of an API error body (`{"error": "..."}` or plain text).
pub fn error_message(body: &Value) -> String {
    match body {
        Value::Object(map) => match map.get("error").or_else(|| map.get("message")) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Object(inner)) => inner
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            Some(other) => other.to_string(),
            None => body.to_string(),
        },
        Value::String(s) => s.chars().take(300).collect(),
        other => other.to_string(),
    }
}

/// What to tell the user after `configure_claude_code`: the host's own message (which already
/// says what to do next), else the file it wrote.
pub fn describe_config_result(result: &Value) -> String {
    if let Some(message) = result.get("message").and_then(Value::as_str) {
        return message.trim().to_owned();
    }
    let path = ["path", "file"]
        .iter()
        .find_map(|key| result.get(*key).and_then(Value::as_str));
    match path {
        Some(path) => format!("Updated {path}."),
        None => "Claude Code's config is up to date.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_url_carries_the_token_for_the_one_click_open() {
        let client = ManagerClient::new(3199, "ab12");
        assert_eq!(client.dashboard_url(), "http://127.0.0.1:3199/?token=ab12");
    }

    #[test]
    fn config_result_is_the_hosts_message_without_additions() {
        let message = "Claude Code config: ~/.claude.json\nWrote ~/.claude.json.\nNext: restart Claude Code (running sessions keep their old server list) so it loads the servers; `claude mcp list` shows each one and whether it connects.\n";
        let cases = [
            (json!({"message": message}), message.trim()),
            (
                json!({"message": "Nothing to change: the file was left as it was.\n"}),
                "Nothing to change: the file was left as it was.",
            ),
            (
                json!({"path": "/h/.claude.json"}),
                "Updated /h/.claude.json.",
            ),
            (json!({}), "Claude Code's config is up to date."),
        ];
        for (result, expected) in cases {
            assert_eq!(describe_config_result(&result), expected, "{result}");
        }
    }
}
