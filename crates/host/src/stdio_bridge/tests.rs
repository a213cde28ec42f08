//! Bridge tests against a real stdio server nobody here wrote (server-everything), served on an
//! ephemeral port and driven with plain HTTP as a streamable HTTP client would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;

use super::*;
use crate::supervisor::RestartPolicy;

fn everything_script() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "../../tests/peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        script.is_file(),
        "peers not installed: {}",
        script.display()
    );
    script
}

fn everything_spec(dir: &Path, share: ShareMode) -> BridgeSpec {
    BridgeSpec {
        name: "everything".into(),
        child: ChildSpec {
            name: "everything".into(),
            command: "node".into(),
            args: vec![everything_script().display().to_string(), "stdio".into()],
            env: BTreeMap::new(),
            cwd: None,
            log_path: dir.join("everything.log"),
            policy: RestartPolicy {
                initial_backoff: Duration::from_millis(20),
                ..RestartPolicy::default()
            },
            stop_grace: Duration::from_secs(2),
            internal_port: None,
        },
        on_demand: share == ShareMode::PerProject,
        share,
        idle_stop: Duration::from_secs(1800),
        ready_timeout: Duration::from_secs(30),
    }
}

/// What the host's servers should do too: answers leave in one packet, not after a delayed ACK.
fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

struct Served {
    bridge: Arc<StdioBridge>,
    url: String,
    _dir: tempfile::TempDir,
}

async fn serve(share: ShareMode) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let bridge = StdioBridge::new(everything_spec(dir.path(), share), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = router(bridge.clone());
    tokio::spawn(async move {
        let _ = axum::serve(nodelay(listener), app).await;
    });
    Served {
        bridge,
        url: format!("http://127.0.0.1:{port}/mcp"),
        _dir: dir,
    }
}

/// Reads `data:` events off an SSE body as they come.
struct SseReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Bytes>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> SseReader {
        SseReader {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event's JSON, or `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // keep-alive comment
                }
                return Some(serde_json::from_str(&data.join("\n")).unwrap());
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("SSE event within 30s")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    }
}

struct Session {
    http: reqwest::Client,
    url: String,
    id: String,
}

const ACCEPT_BOTH: &str = "application/json, text/event-stream";

impl Session {
    async fn open(url: &str, capabilities: Value) -> Session {
        let http = reqwest::Client::new();
        let response = http
            .post(url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": capabilities,
                    "clientInfo": {"name": "bridge-test", "version": "1"}
                }})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = response.headers()[headers::SESSION_ID]
            .to_str()
            .unwrap()
            .to_owned();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["id"], 0, "{answer}");
        assert!(
            answer["result"]["serverInfo"]["name"].is_string(),
            "{answer}"
        );
        let session = Session {
            http,
            url: url.to_owned(),
            id,
        };
        let status = session
            .post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .status();
        assert_eq!(status, 202);
        session
    }

    async fn post(&self, body: Value) -> reqwest::Response {
        self.http
            .post(&self.url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .header(headers::SESSION_ID, &self.id)
            .header(headers::PROTOCOL_VERSION, "2025-06-18")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Sends a request; answers (related messages, the answer).
    async fn request(&self, id: Value, method: &str, params: Value) -> (Vec<Value>, Value) {
        let response = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        assert_eq!(response.status(), 200);
        answer_and_related(response, &id).await
    }

    async fn get_stream(&self) -> SseReader {
        let response = self
            .http
            .get(&self.url)
            .header("accept", "text/event-stream")
            .header(headers::SESSION_ID, &self.id)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        SseReader::new(response)
    }
}

fn echo_text(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {answer}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_child_serves_three_sessions_with_the_same_ids() {
    let served = serve(ShareMode::Shared).await;
    served
        .bridge
        .wait_ready(Duration::from_secs(20))
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(Session::open(&served.url, json!({})).await);
    }
    let ids: std::collections::BTreeSet<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each session has its own id");
    assert_eq!(served.bridge.child_pids().len(), 1, "one shared child");
    assert_eq!(served.bridge.session_count(), 3);

    // Every session uses the same request ids at the same time; each gets its own answers.
    let rounds = futures::future::join_all(sessions.iter().enumerate().map(|(n, s)| async move {
        let mut texts = Vec::new();
        for i in 1..=5 {
            let (_, answer) = s
                .request(
                    json!(i),
                    "tools/call",
                    json!({"name": "echo", "arguments": {"message": format!("s{n}-m{i}")}}),
                )
                .await;
            assert_eq!(answer["id"], json!(i));
            texts.push(echo_text(&answer));
        }
        texts
    }))
    .await;
    for (n, texts) in rounds.iter().enumerate() {
        for (i, text) in texts.iter().enumerate() {
            assert!(text.ends_with(&format!("s{n}-m{}", i + 1)), "{text}");
        }
    }
    // String ids too, and a ping answered by the bridge.
    let (_, answer) = sessions[0]
        .request(json!("abc"), "tools/list", json!({}))
        .await;
    assert_eq!(answer["id"], "abc");
    assert!(answer["result"]["tools"].as_array().unwrap().len() > 5);
    let (_, answer) = sessions[1].request(json!(9), "ping", json!({})).await;
    assert_eq!(answer["result"], json!({}));
    served.bridge.stop().await;
    assert!(served.bridge.child_pids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_updates_reach_the_subscribed_sessions_only() {
    let served = serve(ShareMode::Shared).await;
    let a = Session::open(&served.url, json!({})).await;
    let b = Session::open(&served.url, json!({})).await;
    let c = Session::open(&served.url, json!({})).await;
    let mut streams = [
        a.get_stream().await,
        b.get_stream().await,
        c.get_stream().await,
    ];
    let uri = "demo://resource/static/document/architecture.md";
    for s in [&a, &b] {
        let (_, answer) = s
            .request(json!(1), "resources/subscribe", json!({"uri": uri}))
            .await;
        assert_eq!(answer["result"], json!({}), "{answer}");
    }
    let (_, answer) = a
        .request(
            json!(2),
            "tools/call",
            json!({"name": "toggle-subscriber-updates", "arguments": {}}),
        )
        .await;
    assert!(answer.get("result").is_some(), "{answer}");
    for stream in &mut streams[..2] {
        let updated = loop {
            let event = stream.next().await.unwrap();
            if event["method"] == "notifications/resources/updated" {
                break event;
            }
        };
        assert_eq!(updated["params"]["uri"], uri);
    }
    // C did not subscribe: within the update period it sees no update.
    let c_stream = &mut streams[2];
    let seen = tokio::time::timeout(Duration::from_millis(5500), async {
        loop {
            let event = c_stream.next().await.unwrap();
            if event["method"] == "notifications/resources/updated" {
                return event;
            }
        }
    })
    .await;
    assert!(seen.is_err(), "unsubscribed session got {seen:?}");
    // A unsubscribes; B still follows the URI (the child stays subscribed for B).
    let (_, answer) = a
        .request(json!(3), "resources/unsubscribe", json!({"uri": uri}))
        .await;
    assert_eq!(answer["result"], json!({}));
    let updated = loop {
        let event = streams[1].next().await.unwrap();
        if event["method"] == "notifications/resources/updated" {
            break event;
        }
    };
    assert_eq!(updated["params"]["uri"], uri);
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_goes_to_the_session_that_caused_it() {
    let served = serve(ShareMode::Shared).await;
    let capabilities = json!({"sampling": {}, "elicitation": {}});
    let a = Session::open(&served.url, capabilities.clone()).await;
    let b = Session::open(&served.url, capabilities).await;
    let mut b_stream = b.get_stream().await;
    // B is busy too, but its request started earlier.
    let b_busy = b.request(
        json!(7),
        "tools/call",
        json!({"name": "trigger-long-running-operation", "arguments": {"duration": 2, "steps": 2}}),
    );
    let a_flow = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let response = a
            .post(
                json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                    "name": "trigger-sampling-request",
                    "arguments": {"prompt": "hello", "maxTokens": 10}
                }}),
            )
            .await;
        let mut events = SseReader::new(response);
        let sampling = loop {
            let event = events.next().await.unwrap();
            if event["method"] == "sampling/createMessage" {
                break event;
            }
        };
        let answer = a
            .post(json!({"jsonrpc": "2.0", "id": sampling["id"], "result": {
                "role": "assistant",
                "content": {"type": "text", "text": "sampled-by-a"},
                "model": "test-model",
                "stopReason": "endTurn"
            }}))
            .await;
        assert_eq!(answer.status(), 202);
        loop {
            let event = events.next().await.unwrap();
            if event["id"] == 1 && event.get("method").is_none() {
                return event;
            }
        }
    };
    let ((_, b_answer), a_answer) = tokio::join!(b_busy, a_flow);
    assert!(a_answer.to_string().contains("sampled-by-a"), "{a_answer}");
    assert!(b_answer.get("result").is_some(), "{b_answer}");
    let leaked = tokio::time::timeout(Duration::from_millis(300), async {
        loop {
            let event = b_stream.next().await.unwrap();
            if event["method"] == "sampling/createMessage" {
                return event;
            }
        }
    })
    .await;
    assert!(leaked.is_err(), "B saw A's sampling request: {leaked:?}");
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_child_is_restarted_and_sessions_carry_on() {
    let served = serve(ShareMode::Shared).await;
    let a = Session::open(&served.url, json!({})).await;
    let b = Session::open(&served.url, json!({})).await;
    let first_pid = served.bridge.child_pids()[0];
    let in_flight = a.request(
        json!(5),
        "tools/call",
        json!({"name": "trigger-long-running-operation", "arguments": {"duration": 10, "steps": 2}}),
    );
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(first_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    };
    let started = Instant::now();
    let ((_, answer), ()) = tokio::join!(in_flight, kill);
    assert!(started.elapsed() < Duration::from_secs(8), "failed at once");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("restarted") || message.contains("exited"),
        "{answer}"
    );
    // Both sessions carry on with the restarted child.
    for (n, s) in [&a, &b].into_iter().enumerate() {
        let (_, answer) = s
            .request(
                json!(6),
                "tools/call",
                json!({"name": "echo", "arguments": {"message": format!("after-{n}")}}),
            )
            .await;
        assert!(
            echo_text(&answer).ends_with(&format!("after-{n}")),
            "{answer}"
        );
    }
    let status = served.bridge.snapshot();
    assert_eq!(status.restarts, 1, "{status:?}");
    assert_ne!(status.pid, Some(first_pid));
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_session_children_are_reaped_with_their_session() {
    let served = serve(ShareMode::PerSession).await;
    assert!(
        served.bridge.child_pids().is_empty(),
        "no child before a session"
    );
    let a = Session::open(&served.url, json!({})).await;
    let b = Session::open(&served.url, json!({})).await;
    let pids = served.bridge.child_pids();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let (_, answer) = a
        .request(
            json!(1),
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "pa"}}),
        )
        .await;
    assert!(echo_text(&answer).ends_with("pa"));
    let deleted = a
        .http
        .delete(&a.url)
        .header(headers::SESSION_ID, &a.id)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(served.bridge.child_pids().len(), 1);
    let gone: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| !served.bridge.child_pids().contains(p))
        .collect();
    assert_eq!(gone.len(), 1);
    assert!(!crate::supervisor::tests::pid_alive(gone[0]));
    let after = a
        .post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(after.status(), 404);
    // The expiry path (the host's session registry) reaps the same way.
    (served.bridge.session_closer())(b.id.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served.bridge.child_pids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "child of the expired session still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_semantics() {
    let served = serve(ShareMode::Shared).await;
    let http = reqwest::Client::new();
    let post = |body: Value, session: Option<&str>, version: Option<&str>, accept: &str| {
        let mut request = http
            .post(&served.url)
            .header("accept", accept)
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header(headers::SESSION_ID, session);
        }
        if let Some(version) = version {
            request = request.header(headers::PROTOCOL_VERSION, version);
        }
        request.send()
    };
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    // No session and not an initialize.
    let r = post(list.clone(), None, None, ACCEPT_BOTH).await.unwrap();
    assert_eq!(r.status(), 400);
    // Unknown session.
    let r = post(list.clone(), Some("nope"), None, ACCEPT_BOTH)
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let session = Session::open(&served.url, json!({})).await;
    // Unsupported protocol version.
    let r = post(
        list.clone(),
        Some(&session.id),
        Some("1999-01-01"),
        ACCEPT_BOTH,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // JSON-only client gets JSON.
    let r = post(
        list.clone(),
        Some(&session.id),
        Some("2025-06-18"),
        "application/json",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["id"], 1);
    assert!(answer["result"]["tools"].is_array());
    // A batch answered as a JSON array.
    let batch = json!([
        {"jsonrpc": "2.0", "id": "x", "method": "ping"},
        {"jsonrpc": "2.0", "id": "y", "method": "tools/list"},
    ]);
    let r = post(batch, Some(&session.id), None, "application/json")
        .await
        .unwrap();
    let answers: Value = r.json().await.unwrap();
    assert_eq!(answers.as_array().unwrap().len(), 2, "{answers}");
    // Nothing acceptable.
    let r = post(list.clone(), Some(&session.id), None, "text/html")
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    // GET without a session: no standalone stream there.
    let r = http
        .get(&served.url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // DELETE ends the session; a second DELETE is 404.
    for expected in [200, 404] {
        let r = http
            .delete(&served.url)
            .header(headers::SESSION_ID, &session.id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    served.bridge.stop().await;
    // A stopped bridge opens no sessions.
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let r = post(init, None, None, "application/json").await.unwrap();
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_stdio_command_fails_initialize_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = everything_spec(dir.path(), ShareMode::Shared);
    spec.child.command = "sh".into();
    spec.child.args = vec!["-c".into(), "echo broken >&2; exit 7".into()];
    let bridge = StdioBridge::new(spec, None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/mcp",
        listener.local_addr().unwrap().port()
    );
    let app = router(bridge.clone());
    tokio::spawn(async move {
        let _ = axum::serve(nodelay(listener), app).await;
    });
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let answer: Value = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = answer["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("code 7") || message.contains("exited"),
        "{answer}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while bridge.snapshot().state != TargetState::CrashLoop {
        assert!(Instant::now() < deadline, "{:?}", bridge.snapshot());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reaches_the_request_that_asked_with_its_own_token() {
    let served = serve(ShareMode::Shared).await;
    let a = Session::open(&served.url, json!({})).await;
    let b = Session::open(&served.url, json!({})).await;
    // Both sessions use the same request id and the same progress token at the same time.
    let call = |steps: u64| {
        json!({"name": "trigger-long-running-operation",
               "arguments": {"duration": 0.6, "steps": steps},
               "_meta": {"progressToken": "tok"}})
    };
    let ((a_related, a_answer), (b_related, b_answer)) = tokio::join!(
        a.request(json!(1), "tools/call", call(3)),
        b.request(json!(1), "tools/call", call(4)),
    );
    for (related, answer, steps) in [(&a_related, &a_answer, 3), (&b_related, &b_answer, 4)] {
        assert!(answer.get("result").is_some(), "{answer}");
        let progress: Vec<&Value> = related
            .iter()
            .filter(|m| m["method"] == "notifications/progress")
            .collect();
        assert_eq!(progress.len(), steps, "{related:?}");
        for (n, p) in progress.iter().enumerate() {
            assert_eq!(p["params"]["progressToken"], "tok");
            assert_eq!(p["params"]["progress"], json!(n + 1));
            assert_eq!(p["params"]["total"], json!(steps));
        }
    }
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_its_request() {
    let served = serve(ShareMode::Shared).await;
    let a = Session::open(&served.url, json!({})).await;
    let long = a.post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 2}}}),
    );
    // The response headers come after a second (no answer yet: it turns into a stream).
    let response = tokio::time::timeout(Duration::from_secs(5), long)
        .await
        .expect("stream opened");
    assert_eq!(served.bridge.pending_requests(), 1);
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(5);
    while served.bridge.pending_requests() != 0 {
        assert!(Instant::now() < deadline, "request still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The session is fine.
    let (_, answer) = a
        .request(
            json!(2),
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "x"}}),
        )
        .await;
    assert!(echo_text(&answer).ends_with('x'));
    served.bridge.stop().await;
}

// The stateless revision (2026-07-28).

fn stateless_meta(capabilities: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "stateless-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    })
}

/// A 2026-07-28 client: no session, its context in every request's `_meta`.
struct Stateless {
    http: reqwest::Client,
    url: String,
    capabilities: Value,
}

impl Stateless {
    fn new(url: &str, capabilities: Value) -> Stateless {
        Stateless {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            capabilities,
        }
    }

    /// The request with `_meta` merged into `params`, sent with the standard headers.
    async fn post(&self, id: Value, method: &str, mut params: Value) -> reqwest::Response {
        let mut meta = stateless_meta(self.capabilities.clone());
        if let Some(extra) = params.get("_meta").and_then(Value::as_object) {
            meta.as_object_mut().unwrap().extend(extra.clone());
        }
        params["_meta"] = meta;
        let mut request = self
            .http
            .post(&self.url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json")
            .header(headers::PROTOCOL_VERSION, STATELESS_PROTOCOL_VERSION)
            .header("mcp-method", method);
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        request
            .body(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
            )
            .send()
            .await
            .unwrap()
    }

    /// Sends a request; answers (related messages, the answer).
    async fn request(&self, id: Value, method: &str, params: Value) -> (Vec<Value>, Value) {
        let response = self.post(id.clone(), method, params).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get(headers::SESSION_ID).is_none());
        answer_and_related(response, &id).await
    }
}

/// The answer to `id` in a POST's response (JSON, or SSE ending with the answer) and the
/// messages related to it that came before it.
async fn answer_and_related(response: reqwest::Response, id: &Value) -> (Vec<Value>, Value) {
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    if content_type.starts_with("application/json") {
        return (Vec::new(), response.json().await.unwrap());
    }
    let mut events = SseReader::new(response);
    let mut related = Vec::new();
    while let Some(event) = events.next().await {
        if event.get("id") == Some(id) && event.get("method").is_none() {
            assert!(
                events.next().await.is_none(),
                "the stream ends with the answer"
            );
            return (related, event);
        }
        related.push(event);
    }
    panic!("the stream ended without an answer to {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_clients_share_the_child_with_sessions() {
    let served = serve(ShareMode::Shared).await;
    let client = Stateless::new(&served.url, json!({}));
    // A stateless client comes first: the child is initialized with its context.
    let (_, discovered) = client.request(json!(1), "server/discover", json!({})).await;
    let result = &discovered["result"];
    assert_eq!(discovered["id"], 1);
    assert_eq!(result["resultType"], "complete", "{discovered}");
    assert_eq!(result["cacheScope"], "private");
    assert_eq!(result["ttlMs"], 0);
    let versions = result["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("2026-07-28")) && versions.contains(&json!("2025-06-18")));
    assert!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"].is_string(),
        "{discovered}"
    );
    assert!(result["capabilities"]["tools"].is_object(), "{discovered}");
    assert_eq!(result["capabilities"]["resources"]["subscribe"], true);

    let (_, tools) = client.request(json!(2), "tools/list", json!({})).await;
    assert_eq!(tools["result"]["resultType"], "complete", "{tools}");
    assert_eq!(tools["result"]["cacheScope"], "private");
    assert_eq!(tools["result"]["ttlMs"], 0);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"echo"), "{names:?}");

    // A session and stateless requests at once, all with the same request id.
    let session = Session::open(&served.url, json!({})).await;
    let echo = |text: &str| json!({"name": "echo", "arguments": {"message": text}});
    let (stateless_answers, (_, session_answer)) = tokio::join!(
        futures::future::join_all((0..5).map(|n| client.request(
            json!(7),
            "tools/call",
            echo(&format!("stateless-{n}"))
        ))),
        session.request(json!(7), "tools/call", echo("session")),
    );
    for (n, (_, answer)) in stateless_answers.iter().enumerate() {
        assert_eq!(answer["id"], 7);
        assert_eq!(echo_text(answer), format!("Echo: stateless-{n}"));
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    }
    assert_eq!(echo_text(&session_answer), "Echo: session");
    assert!(session_answer["result"].get("resultType").is_none());
    assert_eq!(served.bridge.child_pids().len(), 1);
    assert_eq!(
        served.bridge.session_count(),
        1,
        "stateless requests open no session"
    );
    assert_eq!(served.bridge.pending_requests(), 0);
    served.bridge.stop().await;
}

/// (what, headers, body, expected status, expected JSON-RPC error code)
type WireCase = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    Value,
    u16,
    Option<i64>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_wire_details() {
    let served = serve(ShareMode::Shared).await;
    let http = reqwest::Client::new();
    let meta = stateless_meta(json!({}));
    let send = |headers: Vec<(&'static str, &'static str)>, body: Value| {
        let mut request = http
            .post(&served.url)
            .header("accept", ACCEPT_BOTH)
            .header("content-type", "application/json");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.body(body.to_string()).send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let modern = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ];
    let list =
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": meta}});
    let no_context = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}});
    let mut other_version = meta.clone();
    other_version["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let cases: Vec<WireCase> = vec![
        ("answered", modern.clone(), list.clone(), 200, None),
        (
            "_meta version without the header",
            vec![("mcp-method", "tools/list")],
            list.clone(),
            400,
            Some(-32020),
        ),
        (
            "header and _meta disagree",
            vec![
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/list"),
            ],
            list.clone(),
            400,
            Some(-32020),
        ),
        (
            "2026 header without _meta context",
            modern.clone(),
            no_context,
            400,
            Some(-32602),
        ),
        (
            "unknown version",
            vec![
                ("mcp-protocol-version", "2099-01-01"),
                ("mcp-method", "tools/list"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {"_meta": other_version}}),
            400,
            Some(-32022),
        ),
        (
            "no Mcp-Method",
            vec![("mcp-protocol-version", "2026-07-28")],
            list.clone(),
            400,
            Some(-32020),
        ),
        (
            "Mcp-Method that is not the body's",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            list.clone(),
            400,
            Some(-32020),
        ),
        (
            "Mcp-Name that is not the body's",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "get-sum"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": meta}}),
            400,
            Some(-32020),
        ),
        (
            "Mcp-Name in Base64",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?ZWNobw==?="),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": meta}}),
            200,
            None,
        ),
        (
            "no Mcp-Name",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"message": "x"}, "_meta": meta}}),
            400,
            Some(-32020),
        ),
        (
            "ping is gone",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "ping"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {"_meta": meta}}),
            404,
            Some(-32601),
        ),
        (
            "an unknown method",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "no/such"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "no/such", "params": {"_meta": meta}}),
            404,
            Some(-32601),
        ),
        (
            "a discover without context",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "server/discover"),
            ],
            json!({"jsonrpc": "2.0", "id": 3, "method": "server/discover", "params": {}}),
            400,
            Some(-32602),
        ),
        (
            "a response",
            vec![("mcp-protocol-version", "2026-07-28")],
            json!({"jsonrpc": "2.0", "id": 3, "result": {}}),
            400,
            Some(-32600),
        ),
        (
            "a batch",
            modern.clone(),
            json!([list.clone()]),
            400,
            Some(-32600),
        ),
        (
            "a notification",
            vec![
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "notifications/cancelled"),
            ],
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}),
            202,
            None,
        ),
        (
            "a session revision's request without a session",
            vec![],
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
            400,
            Some(-32600),
        ),
    ];
    for (what, headers, body, status, code) in cases {
        let (got_status, answer) = send(headers, body.clone()).await;
        assert_eq!(got_status, status, "{what}: {answer}");
        if let Some(code) = code {
            assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
            if body.get("id").is_some() && body.get("method").is_some() {
                assert_eq!(answer["id"], 3, "{what}: the error names the request");
            }
        }
        if what == "unknown version" {
            assert!(
                answer["error"]["data"]["supported"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("2026-07-28"))
            );
        }
    }
    // No session, no stream and nothing to delete.
    let get = http
        .get(&served.url)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let delete = http
        .delete(&served.url)
        .header("mcp-protocol-version", "2026-07-28")
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 400);
    assert_eq!(served.bridge.session_count(), 0);
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_progress_comes_on_the_request_stream() {
    let served = serve(ShareMode::Shared).await;
    let client = Stateless::new(&served.url, json!({}));
    let call = |token: &str, steps: u64| {
        json!({"name": "trigger-long-running-operation",
               "arguments": {"duration": 1.2, "steps": steps},
               "_meta": {"progressToken": token}})
    };
    // Two requests with the same id and token at once: each gets its own progress.
    let ((a_related, a_answer), (b_related, b_answer)) = tokio::join!(
        client.request(json!(1), "tools/call", call("tok", 3)),
        client.request(json!(1), "tools/call", call("tok", 4)),
    );
    for (related, answer, steps) in [(&a_related, &a_answer, 3), (&b_related, &b_answer, 4)] {
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
        assert!(
            echo_text(answer).contains(&format!("Steps: {steps}")),
            "{answer}"
        );
        assert_eq!(related.len(), steps, "{related:?}");
        for (n, p) in related.iter().enumerate() {
            assert_eq!(p["method"], "notifications/progress");
            assert_eq!(p["params"]["progressToken"], "tok");
            assert_eq!(p["params"]["progress"], json!(n + 1));
        }
    }
    // A client that goes away cancels its request.
    let mut long = call("t2", 2);
    long["arguments"] = json!({"duration": 20, "steps": 2});
    let response = client.post(json!(2), "tools/call", long).await;
    assert_eq!(served.bridge.pending_requests(), 1);
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(5);
    while served.bridge.pending_requests() != 0 {
        assert!(Instant::now() < deadline, "request still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.bridge.stop().await;
}

fn sampling_answer(text: &str) -> Value {
    json!({"role": "assistant", "content": {"type": "text", "text": text},
           "model": "test-model", "stopReason": "endTurn"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_childs_sampling_request_becomes_input_required() {
    let served = serve(ShareMode::Shared).await;
    let client = Stateless::new(&served.url, json!({"sampling": {}}));
    let call = json!({"name": "trigger-sampling-request",
                      "arguments": {"prompt": "hello", "maxTokens": 10}});
    let (_, first) = client.request(json!(1), "tools/call", call.clone()).await;
    let result = &first["result"];
    assert_eq!(first["id"], 1);
    assert_eq!(result["resultType"], "input_required", "{first}");
    let requests = result["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{first}");
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    assert!(request["params"]["messages"].is_array(), "{request}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    assert_eq!(
        served.bridge.pending_requests(),
        1,
        "the child's tool call waits"
    );

    // A state for another method, or a made-up one, is refused; the real retry still works.
    let mut wrong_method = json!({"uri": "demo://resource/static/document/architecture.md"});
    wrong_method["requestState"] = json!(state);
    let (_, refused) = client
        .request(json!(2), "resources/read", wrong_method)
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let mut made_up = call.clone();
    made_up["requestState"] = json!("not-a-state");
    let (_, refused) = client.request(json!(3), "tools/call", made_up).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    let mut retry = call.clone();
    retry["requestState"] = json!(state);
    retry["inputResponses"] = json!({ key.clone(): sampling_answer("sampled-statelessly") });
    let (_, done) = client.request(json!(4), "tools/call", retry.clone()).await;
    assert_eq!(done["id"], 4);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(done.to_string().contains("sampled-statelessly"), "{done}");
    // A state is used once.
    let (_, again) = client.request(json!(5), "tools/call", retry).await;
    assert_eq!(again["error"]["code"], -32602, "{again}");

    // A client that cannot sample is not asked: the child gets a refusal.
    let plain = Stateless::new(&served.url, json!({}));
    let (_, refused) = plain.request(json!(6), "tools/call", call).await;
    assert!(
        refused["result"]["isError"] == true || refused.get("error").is_some(),
        "{refused}"
    );
    assert_ne!(refused["result"]["resultType"], "input_required");
    assert_eq!(served.bridge.pending_requests(), 0);
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_stream_gets_what_it_asked_for_until_it_closes() {
    let served = serve(ShareMode::Shared).await;
    let upstream = served.bridge.shared.clone().unwrap();
    let client = Stateless::new(&served.url, json!({}));
    let uri = "demo://resource/static/document/architecture.md";
    let (_, discovered) = client.request(json!(1), "server/discover", json!({})).await;
    let capabilities = discovered["result"]["capabilities"].clone();
    assert_eq!(capabilities["resources"]["subscribe"], true, "{discovered}");
    let response = client
        .post(
            json!("listen-1"),
            "subscriptions/listen",
            json!({"notifications": {"resourceSubscriptions": [uri], "promptsListChanged": true}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = SseReader::new(response);
    let acknowledged = events.next().await.unwrap();
    assert_eq!(
        acknowledged["method"], "notifications/subscriptions/acknowledged",
        "{acknowledged}"
    );
    let accepted = &acknowledged["params"]["notifications"];
    assert_eq!(
        acknowledged["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    assert_eq!(accepted["resourceSubscriptions"], json!([uri]));
    assert_eq!(
        accepted.get("promptsListChanged").is_some(),
        capabilities["prompts"]["listChanged"] == true,
        "{acknowledged} {capabilities}"
    );
    assert!(accepted.get("toolsListChanged").is_none(), "not asked for");
    assert_eq!(upstream.subscribed_uris(), vec![uri.to_owned()]);

    // The child sends updates of the subscribed resource (and logs, which a listener never gets).
    let (_, toggled) = client
        .request(
            json!(2),
            "tools/call",
            json!({"name": "toggle-subscriber-updates", "arguments": {}}),
        )
        .await;
    assert!(toggled.get("result").is_some(), "{toggled}");
    let update = events.next().await.unwrap();
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], uri);
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "listen-1"
    );
    // Closing the stream ends the subscription: the child is unsubscribed.
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !upstream.subscribed_uris().is_empty() {
        assert!(Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_messages_go_to_the_stateless_requests_that_asked() {
    let served = serve(ShareMode::Shared).await;
    let client = Stateless::new(&served.url, json!({}));
    let session = Session::open(&served.url, json!({})).await;
    let long = |log_level: Option<&str>| {
        let mut params = json!({"name": "trigger-long-running-operation",
                                "arguments": {"duration": 1.5, "steps": 1}});
        if let Some(level) = log_level {
            params["_meta"] = json!({ "io.modelcontextprotocol/logLevel": level });
        }
        params
    };
    let toggle_logging = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The child logs one message at once (a random level), then every 5 s.
        session
            .request(
                json!(1),
                "tools/call",
                json!({"name": "toggle-simulated-logging", "arguments": {}}),
            )
            .await
    };
    let ((asked, asked_answer), (quiet, quiet_answer), _) = tokio::join!(
        client.request(json!(1), "tools/call", long(Some("debug"))),
        client.request(json!(2), "tools/call", long(None)),
        toggle_logging,
    );
    assert_eq!(asked_answer["result"]["resultType"], "complete");
    assert_eq!(quiet_answer["result"]["resultType"], "complete");
    let logs = |related: &[Value]| {
        related
            .iter()
            .filter(|m| m["method"] == "notifications/message")
            .count()
    };
    assert_eq!(logs(&asked), 1, "{asked:?}");
    assert_eq!(logs(&quiet), 0, "{quiet:?}");
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_required_that_is_never_retried_expires() {
    let served = serve(ShareMode::Shared).await;
    let upstream = served.bridge.shared.clone().unwrap();
    upstream.set_input_required_timeout(Duration::from_millis(300));
    let client = Stateless::new(&served.url, json!({"sampling": {}}));
    let call = json!({"name": "trigger-sampling-request",
                      "arguments": {"prompt": "hello", "maxTokens": 10}});
    let (_, first) = client.request(json!(1), "tools/call", call.clone()).await;
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    assert_eq!(served.bridge.pending_requests(), 1);
    // Nobody comes back: the child's question is refused and its tool call cancelled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while served.bridge.pending_requests() != 0 {
        assert!(
            Instant::now() < deadline,
            "the parked request did not expire"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut late = call;
    late["requestState"] = json!(state);
    late["inputResponses"] = json!({"sampling-1": sampling_answer("too late")});
    let (_, refused) = client.request(json!(2), "tools/call", late).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // The child is fine.
    let (_, echo) = client
        .request(
            json!(3),
            "tools/call",
            json!({"name": "echo", "arguments": {"message": "after"}}),
        )
        .await;
    assert_eq!(echo_text(&echo), "Echo: after");
    served.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_session_mode_keeps_one_child_for_stateless_clients() {
    let served = serve(ShareMode::PerSession).await;
    // Short idle time from the start: the listen stream keeps the child up meanwhile.
    served
        .bridge
        .stateless_idle_ms
        .store(300, Ordering::Relaxed);
    let client = Stateless::new(&served.url, json!({}));
    let listening = client
        .post(
            json!("l"),
            "subscriptions/listen",
            json!({"notifications": {"toolsListChanged": true}}),
        )
        .await;
    let mut listen_events = SseReader::new(listening);
    let acknowledged = listen_events.next().await.unwrap();
    assert_eq!(
        acknowledged["method"],
        "notifications/subscriptions/acknowledged"
    );
    let pid = served
        .bridge
        .stateless_child_pid()
        .expect("a child for stateless clients");
    let echo = |text: &str| json!({"name": "echo", "arguments": {"message": text}});
    let (_, first) = client.request(json!(1), "tools/call", echo("one")).await;
    assert_eq!(echo_text(&first), "Echo: one");
    let (_, second) = client.request(json!(2), "tools/call", echo("two")).await;
    assert_eq!(echo_text(&second), "Echo: two");
    assert_eq!(served.bridge.child_pids(), vec![pid], "the same child");
    // A session still gets a child of its own.
    let session = Session::open(&served.url, json!({})).await;
    let (_, answer) = session.request(json!(1), "tools/call", echo("s")).await;
    assert_eq!(echo_text(&answer), "Echo: s");
    assert_eq!(served.bridge.child_pids().len(), 2);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        served.bridge.stateless_child_pid(),
        Some(pid),
        "kept while a listener is on it"
    );
    // Without requests or listeners, the stateless clients' child is stopped.
    drop(listen_events);
    let deadline = Instant::now() + Duration::from_secs(15);
    while served.bridge.stateless_child_pid().is_some() {
        assert!(Instant::now() < deadline, "the idle child was not stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served.bridge.child_pids().len(), 1);
    // The next stateless request starts another; a long idle time now, so that a loaded
    // machine cannot stop it before the assertion looks.
    served
        .bridge
        .stateless_idle_ms
        .store(60_000, Ordering::Relaxed);
    let (_, third) = client.request(json!(3), "tools/call", echo("three")).await;
    assert_eq!(echo_text(&third), "Echo: three");
    let restarted = served.bridge.stateless_child_pid();
    assert!(restarted.is_some_and(|p| p != pid), "{restarted:?}");
    served.bridge.stop().await;
    assert!(served.bridge.child_pids().is_empty());
}

/// A stdio child (Python, no MCP SDK) that writes its pid to `pid` and answers `initialize`
/// only once the file `go` exists: an initialize that is still in flight when `stop` comes.
fn held_initialize_spec(dir: &Path) -> BridgeSpec {
    let script = r#"
import json, os, sys, time
d = sys.argv[1]
open(os.path.join(d, "pid.tmp"), "w").write(str(os.getpid()))
os.rename(os.path.join(d, "pid.tmp"), os.path.join(d, "pid"))
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("method") == "initialize":
        while not os.path.exists(os.path.join(d, "go")):
            time.sleep(0.01)
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "serverInfo": {"name": "held", "version": "1"}}}), flush=True)
"#;
    BridgeSpec {
        name: "held".into(),
        child: ChildSpec {
            name: "held".into(),
            command: "python3".into(),
            args: vec!["-c".into(), script.into(), dir.display().to_string()],
            env: BTreeMap::new(),
            cwd: None,
            log_path: dir.join("held.log"),
            policy: RestartPolicy::default(),
            stop_grace: Duration::from_secs(2),
            internal_port: None,
        },
        share: ShareMode::PerSession,
        on_demand: false,
        idle_stop: Duration::from_secs(1800),
        ready_timeout: Duration::from_secs(30),
    }
}

/// Regression: a per-session `initialize` in flight when the bridge stops used to insert its
/// session into the map `stop` had already drained, leaving a child nobody would stop.
#[tokio::test]
async fn a_session_initialized_during_stop_is_refused_and_its_child_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = StdioBridge::new(held_initialize_spec(dir.path()), None);
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let opening = tokio::spawn({
        let bridge = bridge.clone();
        async move { bridge.initialize(&request, None).await }
    });
    let pid_file = dir.path().join("pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pid_file.exists() {
        assert!(Instant::now() < deadline, "the child never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid: u32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    bridge.stop().await;
    std::fs::write(dir.path().join("go"), "").unwrap();
    let answer = opening.await.unwrap();
    let error = answer.expect_err("a stopped bridge opens no session");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is stopped"),
        "{error}"
    );
    assert!(bridge.sessions.lock().is_empty());
    assert!(
        !crate::supervisor::tests::pid_alive(pid),
        "the child outlived the bridge"
    );
}
