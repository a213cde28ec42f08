//! Host tests over real sockets: ephemeral ports, a temp state dir, raw HTTP requests so that
//! the wire (status codes, headers, JSON shapes) is what is checked.

use std::time::Duration;

use msm_core::StateDir;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::sessions::SessionKind;
use crate::{Host, HostHandle, HostOptions};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `check` holds: a deadline generous enough for a loaded machine, never a
/// guess at how long something takes.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct TestHost {
    _dir: tempfile::TempDir,
    state: StateDir,
    handle: HostHandle,
    memory_port: u16,
    client: reqwest::Client,
}

impl TestHost {
    async fn start(extra: &str) -> TestHost {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let (manager_port, memory_port) = (free_port(), free_port());
        std::fs::create_dir_all(state.root()).unwrap();
        std::fs::write(
            state.config_path(),
            format!(
                "[manager]\nport = {manager_port}\nsession_idle_timeout_secs = 2\n[targets.memory]\nbuiltin = \"memory\"\nport = {memory_port}\n{extra}"
            ),
        )
        .unwrap();
        let handle = Host::start(HostOptions::new(state.clone())).await.unwrap();
        let host = TestHost {
            _dir: dir,
            state,
            handle,
            memory_port,
            client: reqwest::Client::new(),
        };
        host.wait_running("memory").await;
        host
    }

    async fn wait_running(&self, name: &str) {
        eventually(&format!("{name} running"), || {
            let status = self.handle.status();
            let target = status.targets.iter().find(|t| t.name == name).unwrap();
            target.state == crate::TargetState::Running
        })
        .await;
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.handle.token().as_str())
    }

    fn mcp_url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.memory_port)
    }

    async fn api(&self, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.handle.manager_url()))
            .header("authorization", self.bearer())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    fn mcp_post(&self, body: Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.mcp_url())
            .header("authorization", self.bearer())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .json(&body)
    }

    /// A 2026-07-28 request from `client`: its `_meta` and the headers that revision wants.
    fn stateless_post(&self, id: usize, method: &str, client: &str) -> reqwest::RequestBuilder {
        let meta = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        self.mcp_post(json!({"jsonrpc":"2.0","id":id,"method":method,"params":{"_meta": meta}}))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
    }
}

/// The JSON-RPC message of a response that is either JSON or a one-message SSE stream.
async fn jsonrpc_body(response: reqwest::Response) -> Value {
    let is_sse = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if !is_sse {
        return response.json().await.unwrap();
    }
    let mut response = response;
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
        // Only complete events (ended by a blank line) are parsed.
        let complete = match text.rfind("\n\n") {
            Some(end) => &text[..end],
            None => continue,
        };
        if let Some(message) = complete
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .find(|d| d.starts_with('{'))
        {
            return serde_json::from_str(message).unwrap();
        }
    }
    panic!("no JSON-RPC message in SSE body: {text}");
}

#[tokio::test]
async fn guard_refuses_foreign_origin_and_missing_token_on_every_port() {
    let host = TestHost::start("").await;
    let ports = [host.memory_port, host.handle.status().manager_port];
    for port in ports {
        let base = format!("http://127.0.0.1:{port}");
        let health = host
            .client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK, "health is open on {port}");
        let body: Value = health.json().await.unwrap();
        assert_eq!(body["status"], "ok");
        for path in ["/mcp", "/status"] {
            let none = host
                .client
                .post(format!("{base}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(
                none.status(),
                StatusCode::UNAUTHORIZED,
                "{port}{path} without token"
            );
            let wrong = host
                .client
                .post(format!("{base}{path}"))
                .header("authorization", "Bearer 00")
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
            let foreign = host
                .client
                .post(format!("{base}{path}"))
                .header("authorization", host.bearer())
                .header("origin", "http://evil.example")
                .send()
                .await
                .unwrap();
            assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
            let rebinding = host
                .client
                .post(format!("{base}{path}"))
                .header("authorization", host.bearer())
                .header("host", "evil.example")
                .send()
                .await
                .unwrap();
            assert_eq!(rebinding.status(), StatusCode::FORBIDDEN);
        }
    }
    host.handle.shutdown().await;
}

#[tokio::test]
async fn session_revision_lifecycle_and_registry() {
    let host = TestHost::start("").await;
    let init = host
        .mcp_post(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"rust-test","version":"9.9"}}}),
        )
        .header("mcp-project-path", "/tmp/some-project")
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let answer = jsonrpc_body(init).await;
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");

    let initialized = host
        .mcp_post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(initialized.status(), StatusCode::ACCEPTED);
    let list = host
        .mcp_post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), StatusCode::OK);
    assert!(
        list.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "session requests are answered on an SSE stream"
    );
    assert!(jsonrpc_body(list).await["result"]["tools"].is_array());

    let bad_version = host
        .mcp_post(json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_version.status(), StatusCode::BAD_REQUEST);

    let no_session_get = host
        .client
        .get(host.mcp_url())
        .header("authorization", host.bearer())
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(no_session_get.status(), StatusCode::METHOD_NOT_ALLOWED);

    let (status, sessions) = host.api(reqwest::Method::GET, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    let entry = &sessions["sessions"][0];
    assert_eq!(entry["id"], session.as_str());
    assert_eq!(entry["target"], "memory");
    assert_eq!(entry["kind"], "session");
    assert_eq!(entry["client_name"], "rust-test");
    assert_eq!(entry["client_version"], "9.9");
    assert_eq!(entry["project_path"], "/tmp/some-project");
    assert_eq!(entry["requests"], 2);

    let deleted = host
        .client
        .delete(host.mcp_url())
        .header("authorization", host.bearer())
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    // rmcp answers 202; the official SDKs log anything but 200/204 as a failed termination.
    assert_eq!(deleted.status(), StatusCode::OK);
    let gone = host
        .mcp_post(json!({"jsonrpc":"2.0","id":4,"method":"tools/list"}))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(host.handle.sessions().len(), 0);
    host.handle.shutdown().await;
}

#[tokio::test]
async fn idle_session_expires_and_rmcp_session_is_closed() {
    let host = TestHost::start("").await;
    let init = host
        .mcp_post(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-06-18","capabilities":{},
            "clientInfo":{"name":"idle","version":"1"}}}),
        )
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(host.handle.sessions().len(), 1);
    // Idle timeout is 2 s in this config; the sweeper runs every second.
    eventually("the idle session expired from the registry", || {
        host.handle.sessions().is_empty()
    })
    .await;
    let gone = host
        .mcp_post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "rmcp session closed too"
    );
    host.handle.shutdown().await;
}

#[tokio::test]
async fn stateless_revision_is_served_and_counted_by_proxy_instance() {
    let host = TestHost::start("").await;
    for id in 1..=2 {
        let response = host
            .stateless_post(id, "tools/list", "stateless-test")
            .header("mcp-proxy-instance", "3f1c")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("mcp-session-id").is_none());
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "a stateless answer with nothing before it is plain JSON"
        );
        assert!(jsonrpc_body(response).await["result"]["tools"].is_array());
    }
    let discover = host
        .stateless_post(9, "server/discover", "stateless-test")
        .header("mcp-proxy-instance", "3f1c")
        .send()
        .await
        .unwrap();
    assert_eq!(discover.status(), StatusCode::OK);
    let discovered = jsonrpc_body(discover).await;
    assert!(discovered["result"].is_object(), "{discovered}");
    let sessions = host.handle.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].id, "proxy:3f1c");
    assert_eq!(sessions[0].requests, 3);
    assert_eq!(sessions[0].client_name.as_deref(), Some("stateless-test"));
    host.handle.shutdown().await;
}

#[tokio::test]
async fn a_stateless_client_without_a_proxy_is_one_entry_per_project() {
    let host = TestHost::start("").await;
    let projects = ["/home/me/alpha", "/home/me/alpha", "/home/me/beta"];
    for (id, project) in projects.into_iter().enumerate() {
        let response = host
            .stateless_post(id, "tools/list", "direct-client")
            .header("mcp-project-path", project)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut sessions = host.handle.sessions();
    sessions.sort_by_key(|s| s.project_path.clone());
    let seen: Vec<_> = sessions
        .iter()
        .map(|s| (s.project_path.as_deref(), s.requests, s.kind))
        .collect();
    assert_eq!(
        seen,
        [
            (Some("/home/me/alpha"), 2, SessionKind::Stateless),
            (Some("/home/me/beta"), 1, SessionKind::Stateless)
        ]
    );
    assert!(
        sessions
            .iter()
            .all(|s| s.id.starts_with("client:")
                && s.client_name.as_deref() == Some("direct-client"))
    );
    assert_ne!(sessions[0].id, sessions[1].id);
    host.handle.shutdown().await;
}

#[tokio::test]
async fn manager_routes_answer_with_their_shapes() {
    let host = TestHost::start(
        "[targets.team]\nurl = \"http://127.0.0.1:9/mcp\"\n[targets.later]\nbuiltin = \"memory\"\nport = 1\nenabled = false\n",
    )
    .await;
    let (status, body) = host.api(reqwest::Method::GET, "/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], msm_core::VERSION);
    let memory = body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "memory")
        .unwrap();
    for key in [
        "kind",
        "transport",
        "port",
        "state",
        "pid",
        "sessions",
        "restarts",
        "last_error",
        "log_path",
    ] {
        assert!(
            memory.get(key).is_some(),
            "status target lacks {key}: {memory}"
        );
    }
    assert_eq!(memory["state"], "running");
    let team = body["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "team")
        .unwrap();
    assert_eq!(team["kind"], "remote");
    assert_eq!(team["reachable"], false);

    let (status, body) = host
        .api(reqwest::Method::POST, "/daemons/nope/ensure")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("nope"));

    let (status, body) = host
        .api(reqwest::Method::POST, "/daemons/memory/restart")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "running");
    assert_eq!(body["target"]["restarts"], 1);
    let (status, _) = host
        .api(reqwest::Method::POST, "/daemons/memory/stop")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !host.state.lock_path("memory").exists(),
        "stop removes the target's lock"
    );
    let (status, body) = host
        .api(reqwest::Method::POST, "/daemons/memory/ensure")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "running");

    let (status, body) = host.api(reqwest::Method::GET, "/sessions").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["sessions"].is_array());
    let (status, body) = host.api(reqwest::Method::POST, "/config/reload").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let page = host
        .client
        .get(host.handle.manager_url())
        .header("authorization", host.bearer())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html"));
    assert!(
        !page.contains(host.handle.token().as_str()),
        "the page never holds the token"
    );
    host.handle.shutdown().await;
}

#[tokio::test]
async fn web_ui_page_is_only_for_the_token_holder_then_its_cookie_which_calls_the_api() {
    let host = TestHost::start("").await;
    let token = host.handle.token().as_str().to_owned();
    let base = host.handle.manager_url();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| client.get(format!("{base}{path}"));

    for path in [
        "/",
        "/index.html",
        "/?other=1",
        "/?token=00",
        "/?token=",
        "/?token=%ZZ",
    ] {
        let response = get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains(&token), "{path} hands out the token");
        assert!(body.contains("Open dashboard"), "{path}: {body}");
    }
    let wrong_cookie = get("/")
        .header("cookie", "msm_token=00")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_cookie.status(), StatusCode::UNAUTHORIZED);

    for (path, location) in [("/", "/"), ("/index.html", "/index.html")] {
        let redirect = get(&format!("{path}?token={token}")).send().await.unwrap();
        assert_eq!(redirect.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(redirect.headers()["location"], location);
        assert_eq!(
            redirect.headers()["set-cookie"],
            format!("msm_token={token}; HttpOnly; SameSite=Strict; Path=/").as_str()
        );
        assert_eq!(redirect.headers()["cache-control"], "no-store");
        assert!(!redirect.text().await.unwrap().contains(&token));
    }

    let cookie = format!("theme=dark; msm_token={token}");
    let page = get("/").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("<html") && !text.contains(&token));
    assert!(!text.contains("msm-token"));

    for (name, value) in [("origin", "http://evil.example"), ("host", "evil.example")] {
        let foreign = get("/")
            .header("cookie", &cookie)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(foreign.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(!foreign.text().await.unwrap().contains(&token));
    }
    for path in ["/app.js", "/style.css", "/health"] {
        let open = get(path).send().await.unwrap();
        assert_eq!(open.status(), StatusCode::OK, "{path} stays open");
        assert!(!open.text().await.unwrap().contains(&token));
    }
    // The page calls the API with the cookie alone.
    let api_with_cookie = get("/status")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(api_with_cookie.status(), StatusCode::OK);
    // A state change with the cookie alone needs this very origin.
    let authority = base.trim_start_matches("http://").to_owned();
    let post = |origin: Option<&str>, site: Option<&str>| {
        let mut request = client
            .post(format!("{base}/config/reload"))
            .header("cookie", &cookie);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    let own = format!("http://{authority}");
    let other_port = format!("http://127.0.0.1:{}", free_port());
    for (origin, site, expected) in [
        (None, None, StatusCode::FORBIDDEN),
        (Some(other_port.as_str()), None, StatusCode::FORBIDDEN),
        (Some(own.as_str()), Some("same-site"), StatusCode::FORBIDDEN),
        (Some(own.as_str()), Some("same-origin"), StatusCode::OK),
        (Some(own.as_str()), None, StatusCode::OK),
    ] {
        let response = post(origin, site).await.unwrap();
        assert_eq!(
            response.status(),
            expected,
            "origin {origin:?}, site {site:?}"
        );
    }
    // The bearer token (CLI, tray) needs no Origin; a target port never takes the cookie.
    let (status, _) = host.api(reqwest::Method::POST, "/config/reload").await;
    assert_eq!(status, StatusCode::OK);
    let target = client
        .post(host.mcp_url())
        .header("cookie", &cookie)
        .header("origin", format!("http://127.0.0.1:{}", host.memory_port))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(target.status(), StatusCode::UNAUTHORIZED);
    host.handle.shutdown().await;
}

#[tokio::test]
async fn second_host_is_refused_and_shutdown_removes_locks() {
    let host = TestHost::start("").await;
    assert!(host.state.lock_path("manager").exists());
    assert!(host.state.lock_path("memory").exists());
    match Host::start(HostOptions::new(host.state.clone())).await {
        Err(crate::HostError::AlreadyRunning { pid, .. }) => assert_eq!(pid, std::process::id()),
        Err(other) => panic!("expected AlreadyRunning, got {other}"),
        Ok(_) => panic!("a second host started"),
    }
    let state = host.state.clone();
    host.handle.shutdown().await;
    assert!(!state.lock_path("manager").exists());
    assert!(!state.lock_path("memory").exists());
}

#[tokio::test]
async fn foreign_process_on_target_port_fails_that_target_only() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let blocked = blocker.local_addr().unwrap().port();
    let host = TestHost::start(&format!(
        "[targets.second]\nbuiltin = \"memory\"\nport = {blocked}\n"
    ))
    .await;
    for _ in 0..100 {
        let status = host.handle.status();
        let second = status.targets.iter().find(|t| t.name == "second").unwrap();
        if second.state == crate::TargetState::Failed {
            let error = second.last_error.clone().unwrap();
            assert!(error.contains(&format!("port {blocked}")), "{error}");
            let memory = status.targets.iter().find(|t| t.name == "memory").unwrap();
            assert_eq!(memory.state, crate::TargetState::Running);
            host.handle.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("second never failed: {:?}", host.handle.status());
}

#[tokio::test]
async fn hot_reload_adds_and_removes_only_changed_targets() {
    let host = TestHost::start("").await;
    let extra_port = free_port();
    let text = std::fs::read_to_string(host.state.config_path()).unwrap();
    let memory_pid_before = host.handle.status().targets[0].started_at.clone();
    std::fs::write(
        host.state.config_path(),
        format!("{text}[targets.extra]\nbuiltin = \"memory\"\nport = {extra_port}\n"),
    )
    .unwrap();
    let summary = host.handle.reload_config().await.unwrap();
    assert_eq!(summary.added, vec!["extra".to_owned()]);
    assert!(summary.restarted.is_empty());
    host.wait_running("extra").await;
    let memory = host
        .handle
        .status()
        .targets
        .into_iter()
        .find(|t| t.name == "memory")
        .unwrap();
    assert_eq!(
        memory.started_at, memory_pid_before,
        "memory was not restarted"
    );
    std::fs::write(host.state.config_path(), &text).unwrap();
    let summary = host.handle.reload_config().await.unwrap();
    assert_eq!(summary.removed, vec!["extra".to_owned()]);
    assert!(!host.state.lock_path("extra").exists());
    std::fs::write(host.state.config_path(), "[targets.memory\n").unwrap();
    assert!(
        host.handle.reload_config().await.is_err(),
        "a bad file is refused"
    );
    assert_eq!(host.handle.status().targets.len(), 1, "and changes nothing");
    host.handle.shutdown().await;
}

/// Reads SSE events (`event`, parsed `data`) off `response` until `want` of them arrived.
async fn sse_events(response: &mut reqwest::Response, want: usize) -> Vec<(String, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < want {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an SSE event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    name = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

/// `answer` is exactly a `T`: it deserialises, and serialises back to the same JSON (so no
/// field is unknown to the types, none missing, none spelled otherwise).
fn assert_contract<T: serde::Serialize + serde::de::DeserializeOwned>(
    route: &str,
    answer: &Value,
) -> T {
    let typed: T = serde_json::from_value(answer.clone()).unwrap_or_else(|e| {
        panic!("{route}: the answer does not fit the API types: {e}\n{answer:#}")
    });
    assert_eq!(
        &serde_json::to_value(&typed).unwrap(),
        answer,
        "{route}: the answer does not round-trip through the API types"
    );
    typed
}

/// The contract test: every route's real answer is exactly its `api_types` type.
#[tokio::test]
async fn every_route_answers_exactly_its_api_type() {
    use crate::api_types as api;
    let host = TestHost::start(
        "[targets.team]\nurl = \"http://127.0.0.1:9/mcp\"\n[targets.later]\nbuiltin = \"memory\"\nport = 1\nenabled = false\n",
    )
    .await;
    let project = tempfile::tempdir().unwrap();
    // A session that writes to a project's memory DB, so sessions and DBs are not empty.
    let init = host
        .mcp_post(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},
            "clientInfo":{"name":"contract-test","version":"1.0"}}}),
        )
        .header("mcp-project-path", project.path().to_str().unwrap())
        .send()
        .await
        .unwrap();
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    jsonrpc_body(init).await;
    let call = host
        .mcp_post(
            json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{
            "name":"create_entities","arguments":{"entities":[
                {"name":"shop","entityType":"project","observations":["written in Rust"]}]}}}),
        )
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-project-path", project.path().to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(jsonrpc_body(call).await["result"].is_object());

    let health: Value = host
        .client
        .get(format!("{}/health", host.handle.manager_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_contract::<api::Health>("GET /health", &health);

    let (code, body) = host.api(reqwest::Method::GET, "/status").await;
    assert_eq!(code, StatusCode::OK);
    let status = assert_contract::<api::Status>("GET /status", &body);
    assert_eq!(status.targets.len(), 3);
    assert_eq!(status.target("team").unwrap().kind, api::TargetKind::Remote);
    assert!(!status.target("later").unwrap().enabled);

    let (_, body) = host.api(reqwest::Method::GET, "/sessions").await;
    let sessions = assert_contract::<api::Sessions>("GET /sessions", &body);
    assert_eq!(sessions.sessions.len(), 1);
    assert_eq!(
        sessions.sessions[0].client_name.as_deref(),
        Some("contract-test")
    );

    let (_, body) = host.api(reqwest::Method::GET, "/memory/dbs").await;
    let dbs = assert_contract::<api::Dbs>("GET /memory/dbs", &body);
    let db = dbs
        .dbs
        .iter()
        .find(|d| d.project.as_deref() == project.path().to_str())
        .unwrap_or_else(|| panic!("the project's DB is listed: {dbs:?}"));
    assert_eq!(db.entities, Some(1));
    let (_, body) = host
        .api(
            reqwest::Method::GET,
            &format!("/memory/dbs/{}/graph?q=shop&limit=5", db.id),
        )
        .await;
    let page = assert_contract::<api::GraphPage>("GET /memory/dbs/{id}/graph", &body);
    assert_eq!(page.entities[0].entity_type, "project");

    let mut events = host
        .client
        .get(format!("{}/events", host.handle.manager_url()))
        .header("authorization", host.bearer())
        .send()
        .await
        .unwrap();
    let first = sse_events(&mut events, 1).await;
    assert_eq!(first[0].0, "status");
    assert_contract::<api::Status>("GET /events (status)", &first[0].1);

    let (code, body) = host
        .api(reqwest::Method::POST, "/daemons/memory/stop")
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let stopped = assert_contract::<api::DaemonAction>("POST /daemons/memory/stop", &body);
    assert_eq!(stopped.target.state, api::TargetState::Stopped);
    let changes = sse_events(&mut events, 1).await;
    assert_eq!(changes[0].0, "change");
    assert_contract::<api::Event>("GET /events (change)", &changes[0].1);

    let (code, body) = host.api(reqwest::Method::POST, "/daemons/nope/start").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_contract::<api::ErrorBody>("POST /daemons/nope/start", &body);

    let (_, body) = host.api(reqwest::Method::POST, "/config/reload").await;
    assert_contract::<api::Reload>("POST /config/reload", &body);

    let generate: Value = host
        .client
        .post(format!("{}/config/generate", host.handle.manager_url()))
        .header("authorization", host.bearer())
        .json(&json!({"client": "claude-code-project", "cwd": project.path(), "remove": true, "dry_run": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = assert_contract::<api::Generate>("POST /config/generate", &generate);
    assert!(report.dry_run && !report.written);

    let (code, body) = host.api(reqwest::Method::GET, "/daemons/memory/log").await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let log = assert_contract::<api::LogChunk>("GET /daemons/memory/log", &body);
    assert_eq!(log.to, log.size);
    let (code, body) = host.api(reqwest::Method::GET, "/daemons/team/log").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_contract::<api::ErrorBody>("GET /daemons/team/log", &body);

    let (code, body) = host.api(reqwest::Method::POST, "/shutdown").await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_contract::<api::Shutdown>("POST /shutdown", &body);
    host.handle.shutdown().await;
}

/// Regression: `stop` waited behind a start in progress, since the target's lifecycle lock was
/// held across the child's readiness wait (up to its 60 s ready timeout).
#[tokio::test]
async fn a_stop_during_a_start_that_never_gets_ready_returns_at_once() {
    let port = free_port();
    let host = TestHost::start(&format!(
        "[targets.never]\ncommand = \"sleep\"\nargs = [\"1000\", \"{{port}}\"]\ntransport = \"streamable-http\"\nport = {port}\nenabled = false\n"
    ))
    .await;
    let mut events = host.handle.events();
    let starting = tokio::spawn({
        let handle = host.handle.clone();
        async move { handle.start_target("never").await }
    });
    // Wait for the event, not the clock: the target is starting (its child spawned).
    loop {
        if let crate::HostEvent::Target { name, state, .. } = events.recv().await.unwrap()
            && name == "never"
            && state == crate::TargetState::Starting
        {
            break;
        }
    }
    let began = std::time::Instant::now();
    host.handle.stop_target("never").await.unwrap();
    let took = began.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "stop waited {took:?} behind the start"
    );
    let started = tokio::time::timeout(Duration::from_secs(5), starting)
        .await
        .expect("the start gave up")
        .unwrap();
    assert!(started.is_err(), "{started:?}");
    let status = host.handle.status();
    let never = status.targets.iter().find(|t| t.name == "never").unwrap();
    assert_eq!(never.state, crate::TargetState::Stopped);
    assert_eq!(never.pid, None);
}
