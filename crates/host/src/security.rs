//! The guard in front of every port the host opens (each target's port and the manager's):
//! loopback `Host` and `Origin` only (403 otherwise, which also stops DNS rebinding), and the
//! state dir's bearer token on everything but `GET /health` and the web UI (401). The web UI's
//! page checks the token itself (`?token=` or its cookie, see `ui`); its script and stylesheet
//! hold no secret.
//!
//! The manager's guard also takes the web UI's HttpOnly cookie in place of the bearer token
//! (the page never sees the token). A cookie rides along with any request the browser makes,
//! so a state-changing request (anything but GET/HEAD/OPTIONS) that has only the cookie must
//! prove it comes from the dashboard itself: an `Origin` naming this very host and port, and
//! no `Sec-Fetch-Site` other than `same-origin`. A request without `Origin` is refused (403),
//! so neither a form on another local port nor a browser that strips `Origin` gets through.
//! Target ports never take the cookie (cookies are not scoped by port).
//!
//! Hostile headers (huge, non-UTF-8, odd values) are refused with a status code, never a panic.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use msm_core::Token;

/// What the guard needs: the token, and which paths are open without it.
#[derive(Clone)]
pub struct Guard {
    token: Token,
    open_paths: &'static [&'static str],
    /// The cookie that may stand in for the bearer token (the manager's web UI only).
    cookie: Option<&'static str>,
}

/// Paths any target port serves without a token.
pub const TARGET_OPEN_PATHS: &[&str] = &["/health"];

impl Guard {
    /// A guard that lets `GET` (and `HEAD`) of `open_paths` through without the token.
    pub fn new(token: Token, open_paths: &'static [&'static str]) -> Arc<Guard> {
        Arc::new(Guard {
            token,
            open_paths,
            cookie: None,
        })
    }

    /// This guard, also taking the token from cookie `name` (under the same-origin rule for
    /// state-changing requests, see the module doc).
    pub fn with_cookie(&self, name: &'static str) -> Arc<Guard> {
        Arc::new(Guard {
            token: self.token.clone(),
            open_paths: self.open_paths,
            cookie: Some(name),
        })
    }

    /// Whether `headers` carry this guard's token in its cookie (never, without one).
    pub fn has_cookie(&self, headers: &HeaderMap) -> bool {
        self.cookie
            .is_some_and(|name| cookie_values(headers, name).any(|value| self.token.matches(value)))
    }

    /// Whether `headers` carry this guard's token as `Authorization: Bearer <token>`.
    pub fn has_token(&self, headers: &HeaderMap) -> bool {
        bearer_token(headers).is_some_and(|candidate| self.token.matches(candidate))
    }
}

/// The axum middleware: `from_fn_with_state(guard, security::check)`.
pub async fn check(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    if let Err(refusal) = check_loopback(request.headers()) {
        return refusal.into_response();
    }
    let safe_method = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let open = matches!(*request.method(), Method::GET | Method::HEAD)
        && guard.open_paths.contains(&request.uri().path());
    if !open && !guard.has_token(request.headers()) {
        if !guard.has_cookie(request.headers()) {
            return Refusal::Unauthorized.into_response();
        }
        if !safe_method && let Err(refusal) = check_same_origin(request.headers()) {
            return refusal.into_response();
        }
    }
    next.run(request).await
}

/// For a state-changing request that carries only the cookie: `Origin` must be present and
/// name exactly the `Host` the request was sent to, and `Sec-Fetch-Site` (when sent) must
/// say `same-origin`.
pub fn check_same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::Forbidden(
            "a state-changing request with the dashboard's cookie needs an Origin header",
        ));
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return Err(Refusal::Forbidden(
            "a request with Origin needs a Host header",
        ));
    };
    let authority = origin
        .trim()
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.authority().map(|a| a.as_str().to_ascii_lowercase()));
    if authority.as_deref() != Some(host.trim().to_ascii_lowercase().as_str()) {
        return Err(Refusal::Forbidden(
            "Origin is not this dashboard's origin (a request from another site or port)",
        ));
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Err(Refusal::Forbidden(
            "Sec-Fetch-Site says the request comes from another site",
        ));
    }
    Ok(())
}

/// `GET /health`: open, and says only that it is alive (and that it is ours, so that a proxy
/// can tell our daemon from a foreign server on the port).
pub async fn health() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok", "service": "mcp-session-manager" }))
}

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A `Host` or `Origin` that is not loopback.
    Forbidden(&'static str),
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Forbidden(reason) => (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({ "error": reason })),
            )
                .into_response(),
            Refusal::Unauthorized => {
                let mut response = (
                    StatusCode::UNAUTHORIZED,
                    Json(serde_json::json!({
                        "error": "missing or wrong bearer token (see the `token` file in the state dir)"
                    })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
        }
    }
}

/// Refuses a request whose `Host` or `Origin` names anything but this machine's loopback.
/// A missing `Host` (HTTP/1.0) or `Origin` (non-browser clients) is fine: the socket itself is
/// bound to loopback.
pub fn check_loopback(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut hosts = headers.get_all(header::HOST).iter();
    if let Some(host) = hosts.next() {
        if hosts.next().is_some() {
            return Err(Refusal::Forbidden("more than one Host header"));
        }
        if !host_is_loopback(host) {
            return Err(Refusal::Forbidden("Host is not a loopback address"));
        }
    }
    for origin in headers.get_all(header::ORIGIN) {
        if !origin_is_loopback(origin) {
            return Err(Refusal::Forbidden("Origin is not a loopback origin"));
        }
    }
    Ok(())
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn host_is_loopback(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    match text.parse::<http::uri::Authority>() {
        Ok(authority) => is_loopback_name(authority.host()),
        Err(_) => false,
    }
}

fn origin_is_loopback(value: &HeaderValue) -> bool {
    let Ok(text) = value.to_str() else {
        return false;
    };
    let Ok(uri) = text.trim().parse::<http::Uri>() else {
        return false;
    };
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let Some(authority) = uri.authority() else {
        return false;
    };
    scheme_ok && authority.as_str().find('@').is_none() && is_loopback_name(authority.host())
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// Every value of cookie `name` in the request's `Cookie` headers (a header that is not text
/// is skipped).
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Pairs<'a> = &'a [(&'a str, &'a [u8])];

    fn headers(pairs: Pairs<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn loopback_checks() {
        let cases: &[(Pairs<'_>, bool)] = &[
            (&[], true),
            (&[("host", b"127.0.0.1:3100")], true),
            (&[("host", b"localhost")], true),
            (&[("host", b"LOCALHOST:1")], true),
            (&[("host", b"[::1]:3100")], true),
            (&[("host", b"127.1.2.3:3100")], true),
            (&[("host", b"evil.example:3100")], false),
            (&[("host", b"127.0.0.1.evil.example")], false),
            (&[("host", b"0.0.0.0:3100")], false),
            (&[("host", b"\xff\xfe")], false),
            (&[("host", b"127.0.0.1"), ("host", b"evil.example")], false),
            (&[("origin", b"http://127.0.0.1:3199")], true),
            (&[("origin", b"http://localhost:5173")], true),
            (&[("origin", b"https://[::1]")], true),
            (&[("origin", b"http://evil.example")], false),
            (&[("origin", b"null")], false),
            (&[("origin", b"file://")], false),
            (&[("origin", b"http://localhost.evil.example")], false),
            (&[("origin", b"http://127.0.0.1@evil.example")], false),
            (&[("origin", b"\xc3\x28")], false),
            (&[("origin", b"chrome-extension://abc")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                check_loopback(&headers(pairs)).is_ok(),
                *expected,
                "headers {pairs:?}"
            );
        }
    }

    #[test]
    fn same_origin_checks_for_cookie_only_state_changes() {
        let cases: &[(Pairs<'_>, bool)] = &[
            (&[("host", b"127.0.0.1:3199")], false),
            (
                &[
                    ("host", b"127.0.0.1:3199"),
                    ("origin", b"http://127.0.0.1:3199"),
                ],
                true,
            ),
            (
                &[
                    ("host", b"127.0.0.1:3199"),
                    ("origin", b"http://127.0.0.1:3199"),
                    ("sec-fetch-site", b"same-origin"),
                ],
                true,
            ),
            (
                &[
                    ("host", b"127.0.0.1:3199"),
                    ("origin", b"http://127.0.0.1:3199"),
                    ("sec-fetch-site", b"same-site"),
                ],
                false,
            ),
            (
                &[
                    ("host", b"127.0.0.1:3199"),
                    ("origin", b"http://127.0.0.1:8080"),
                ],
                false,
            ),
            (
                &[
                    ("host", b"127.0.0.1:3199"),
                    ("origin", b"http://localhost:3199"),
                ],
                false,
            ),
            (&[("host", b"127.0.0.1:3199"), ("origin", b"null")], false),
            (&[("origin", b"http://127.0.0.1:3199")], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                check_same_origin(&headers(pairs)).is_ok(),
                *expected,
                "headers {pairs:?}"
            );
        }
    }

    #[test]
    fn bearer_parsing() {
        let token = msm_core::Token::load_or_create(&msm_core::StateDir::new(
            tempfile::tempdir().unwrap().keep(),
        ))
        .unwrap();
        let guard = Guard::new(token.clone(), TARGET_OPEN_PATHS);
        let good = format!("Bearer {}", token.as_str());
        let lower = format!("bearer {}", token.as_str());
        let cases: &[(&[u8], bool)] = &[
            (good.as_bytes(), true),
            (lower.as_bytes(), true),
            (b"Bearer nope", false),
            (b"Basic abc", false),
            (b"Bearer", false),
            (b"", false),
            (b"Bearer \xff", false),
        ];
        for (value, expected) in cases {
            let map = headers(&[("authorization", value)]);
            assert_eq!(guard.has_token(&map), *expected, "{value:?}");
        }
        assert!(!guard.has_token(&HeaderMap::new()));
    }
}
