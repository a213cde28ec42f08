//! The tray's client of a manager API over HTTP: asking a headless host to hand over
//! (`POST /shutdown`), as the CLI does. Status and target actions go to the in-process host;
//! Claude Code's config is written from the dashboard's dialog, after its diff was shown.

use std::time::Duration;

use msm_host::api_types::ErrorBody;

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
        timeout: Duration,
    ) -> Result<String, ManagerError> {
        let url = format!("{}{path}", self.base_url);
        let request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .timeout(timeout);
        let response = request
            .send()
            .await
            .map_err(|source| ManagerError::Unreachable {
                url: self.base_url.clone(),
                source,
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ManagerError::Refused {
                what: path.to_owned(),
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        Ok(text)
    }

    /// `POST /shutdown`: asks a (headless) host to hand over its ports.
    pub async fn shutdown(&self) -> Result<(), ManagerError> {
        self.call(reqwest::Method::POST, "/shutdown", Duration::from_secs(10))
            .await
            .map(|_| ())
    }
}

/// The message of an API error body (`api_types::ErrorBody`), or the start of a body that is
/// not one (a foreign server on the port).
pub fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(error) => error.error,
        Err(_) => body.chars().take(300).collect(),
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
}
