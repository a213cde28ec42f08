//! The web UI (`ui/index.html`, `app.js`, `style.css`), embedded at compile time (see
//! `build.rs`), and the token injection that lets the page call the manager API.

pub const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));
pub const APP_JS: &str = include_str!(concat!(env!("OUT_DIR"), "/app.js"));
pub const STYLE_CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/style.css"));

/// `page` with `<meta name="msm-token" content="...">` at the start of its `<head>` (or at the
/// very start when it has none). The token is hex, so it needs no escaping.
pub fn with_token(page: &str, token: &str) -> String {
    let meta = format!("<meta name=\"msm-token\" content=\"{token}\">");
    match page.find("<head>") {
        Some(at) => {
            let split = at + "<head>".len();
            format!("{}\n{meta}{}", &page[..split], &page[split..])
        }
        None => format!("{meta}\n{page}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_goes_into_head() {
        assert_eq!(
            with_token("<html><head><title>x</title></head></html>", "ab12"),
            "<html><head>\n<meta name=\"msm-token\" content=\"ab12\"><title>x</title></head></html>"
        );
        assert_eq!(
            with_token("<p>bare</p>", "ab12"),
            "<meta name=\"msm-token\" content=\"ab12\">\n<p>bare</p>"
        );
    }
}
