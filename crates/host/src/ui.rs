//! The web UI (`ui/index.html`, `app.js`, `style.css`), embedded at compile time (see
//! `build.rs`), and who may load the page.
//!
//! The tray and `mcp-session-manager status` open `/?token=<token>`, which is answered with a
//! redirect to `/` that stores the token in an `HttpOnly`, `SameSite=Strict` cookie (so that the
//! token leaves the address bar and the history, and a reload still works). The page itself
//! holds no token: its script calls the API with that cookie, which the manager's guard takes
//! (see `security`); no script can read it. Anyone without it gets a short page saying how to
//! open the dashboard. `app.js` and `style.css` hold no secret and stay open.

use axum::http::HeaderMap;
use msm_core::Token;

pub const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
pub const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/app.js"));
pub const STYLE_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/style.css"));

/// The cookie that lets a browser (re)load the page once it has opened `/?token=`.
pub const TOKEN_COOKIE: &str = "msm_token";

/// What a request for the page may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAccess {
    /// `?token=` is right: store it in the cookie and send the browser to the bare path.
    SetCookieAndRedirect,
    /// The cookie (or an `Authorization: Bearer` header) is right: the page.
    Page,
    /// `?token=` is there but wrong.
    WrongToken,
    /// Neither `?token=`, nor a right cookie or bearer header.
    NoToken,
}

/// Decides [`PageAccess`] from the `token` query parameter and the request headers; every
/// comparison is `Token::matches` (constant time). A `?token=` always wins over the cookie, so
/// that a stale link is reported as such rather than hidden by an older, right cookie.
pub fn page_access(query_token: Option<&str>, headers: &HeaderMap, token: &Token) -> PageAccess {
    if let Some(candidate) = query_token {
        return if token.matches(candidate) {
            PageAccess::SetCookieAndRedirect
        } else {
            PageAccess::WrongToken
        };
    }
    let cookie_ok =
        crate::security::cookie_values(headers, TOKEN_COOKIE).any(|value| token.matches(value));
    let bearer_ok = crate::security::bearer_token(headers).is_some_and(|v| token.matches(v));
    if cookie_ok || bearer_ok {
        PageAccess::Page
    } else {
        PageAccess::NoToken
    }
}

/// The `Set-Cookie` value that stores `token` for the page: not readable by scripts, never sent
/// along with a request another site starts, for every path of this host.
pub fn token_cookie(token: &Token) -> String {
    format!(
        "{TOKEN_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
        token.as_str()
    )
}

/// The page for a request without the token: how to open the dashboard (it names no secret).
/// `wrong_link` says that a `?token=` was given but is not this manager's.
pub fn locked_page(wrong_link: bool) -> String {
    let reason = if wrong_link {
        "The link you followed carries a token that is not this manager's (the token changes when \
         the state dir is created anew), so the dashboard stays locked."
    } else {
        "The dashboard shows and controls your MCP servers, so it opens only with your access \
         token, which only your user account can read."
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>MCP Session Manager: open the dashboard</title>
<style>
body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; padding: 0 1.5rem; }}
code {{ font-size: 0.95em; padding: 0.1em 0.3em; border-radius: 4px; background: rgba(127, 127, 127, 0.15); }}
li {{ margin: 0.5rem 0; }}
</style>
</head>
<body>
<main>
<h1>Open the dashboard from the tray or the command line</h1>
<p>{reason}</p>
<ul>
<li>In the tray menu of MCP Session Manager, choose <strong>Open dashboard</strong>.</li>
<li>Or run <code>mcp-session-manager status</code> and open the <strong>Dashboard:</strong> address it prints.</li>
</ul>
</main>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn page_access_needs_the_token_in_the_query_the_cookie_or_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::load_or_create(&msm_core::StateDir::new(dir.path())).unwrap();
        let good = token.as_str().to_owned();
        let cookie = format!("other=1; msm_token={good}; x=y");
        let quoted = format!("msm_token=\"{good}\"");
        let bearer = format!("Bearer {good}");
        type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, PageAccess);
        let cases: Vec<Case<'_>> = vec![
            (None, vec![], PageAccess::NoToken),
            (Some(&good), vec![], PageAccess::SetCookieAndRedirect),
            (Some("00"), vec![], PageAccess::WrongToken),
            (Some(""), vec![], PageAccess::WrongToken),
            (
                Some("00"),
                vec![("cookie", &cookie)],
                PageAccess::WrongToken,
            ),
            (None, vec![("cookie", &cookie)], PageAccess::Page),
            (None, vec![("cookie", &quoted)], PageAccess::Page),
            (
                None,
                vec![("cookie", "a=b"), ("cookie", &cookie)],
                PageAccess::Page,
            ),
            (None, vec![("cookie", "msm_token=00")], PageAccess::NoToken),
            (
                None,
                vec![("cookie", "xmsm_token=00; msm_tokenx=1")],
                PageAccess::NoToken,
            ),
            (None, vec![("cookie", "msm_token")], PageAccess::NoToken),
            (None, vec![("authorization", &bearer)], PageAccess::Page),
            (
                None,
                vec![("authorization", "Bearer 00")],
                PageAccess::NoToken,
            ),
        ];
        for (query, pairs, expected) in &cases {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(
                    axum::http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            assert_eq!(
                page_access(*query, &headers, &token),
                *expected,
                "query {query:?}, headers {pairs:?}"
            );
        }
        let mut binary = HeaderMap::new();
        binary.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_bytes(b"msm_token=\xff").unwrap(),
        );
        assert_eq!(page_access(None, &binary, &token), PageAccess::NoToken);
    }

    #[test]
    fn cookie_is_http_only_strict_and_locked_page_names_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let token = Token::load_or_create(&msm_core::StateDir::new(dir.path())).unwrap();
        assert_eq!(
            token_cookie(&token),
            format!(
                "msm_token={}; HttpOnly; SameSite=Strict; Path=/",
                token.as_str()
            )
        );
        for wrong_link in [false, true] {
            let page = locked_page(wrong_link);
            assert!(page.contains("Open dashboard"));
            assert!(page.contains("mcp-session-manager status"));
            assert!(!page.contains("msm-token"));
            assert_eq!(page.contains("not this manager's"), wrong_link);
        }
    }
}
