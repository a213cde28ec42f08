//! The session registry: who talks to which target, for `GET /sessions`, `/status` and the UI.
//!
//! A middleware in front of each target's `/mcp` peeks at requests (never changing them):
//! session revisions (2025-xx) are keyed by the `Mcp-Session-Id` the server hands out on
//! `initialize`; the stateless revision (2026-07-28) by the proxy's `Mcp-Proxy-Instance`, or,
//! for a client that talks to us directly, by the client it names in `_meta` and its project
//! (two windows of one client on one project are then one entry: the revision has no session).
//! A session idle for longer than the configured timeout expires: it leaves the registry and
//! the target's closer frees its resources (for rmcp targets, the rmcp session is closed).

use std::collections::HashMap;
use std::path::{Component, Path};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::Serialize;

use msm_core::{headers, meta_keys};

use crate::status::now_rfc3339;

/// Bodies larger than this are refused before they reach the MCP server (rmcp's own limit).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Header values we keep (project path, client name) are cut to this many bytes.
const MAX_KEPT_HEADER_BYTES: usize = 4096;

/// One client session of one target, as shown by `GET /sessions`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SessionInfo {
    /// The `Mcp-Session-Id`; under the stateless revision `proxy:<Mcp-Proxy-Instance>`, or
    /// `client:<hash of client name, version and project>` without a proxy.
    pub id: String,
    pub target: String,
    /// `session` (2025-xx revisions, with `Mcp-Session-Id`) or `stateless` (2026-07-28).
    pub kind: SessionKind,
    pub protocol_version: Option<String>,
    /// The `Mcp-Project-Path` header when it is an absolute, plain path; otherwise `None`.
    pub project_path: Option<String>,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub last_seen: String,
    pub requests: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SessionKind {
    Session,
    Stateless,
}

struct Entry {
    info: SessionInfo,
    last_seen: Instant,
}

/// Frees a session's resources on the target's side (e.g. closes the rmcp session).
pub type SessionCloser = Arc<dyn Fn(String) + Send + Sync>;
/// Told (target, session count) whenever a target's session count changes.
pub type CountListener = Arc<dyn Fn(&str, usize) + Send + Sync>;

/// Every live session of every target.
pub struct SessionRegistry {
    entries: Mutex<HashMap<(String, String), Entry>>,
    closers: Mutex<HashMap<String, SessionCloser>>,
    idle_timeout_secs: AtomicU64,
    /// Wakes the sweeper when the timeout changes (a reload), so a shorter one applies at once.
    retimed: tokio::sync::Notify,
    on_change: Mutex<Option<CountListener>>,
}

impl SessionRegistry {
    pub fn new(idle_timeout: Duration) -> Arc<SessionRegistry> {
        Arc::new(SessionRegistry {
            entries: Mutex::new(HashMap::new()),
            closers: Mutex::new(HashMap::new()),
            idle_timeout_secs: AtomicU64::new(idle_timeout.as_secs().max(1)),
            retimed: tokio::sync::Notify::new(),
            on_change: Mutex::new(None),
        })
    }

    /// Called with (target, session count) whenever a target's count changes.
    pub fn set_on_change(&self, callback: CountListener) {
        *self.on_change.lock() = Some(callback);
    }

    pub fn set_idle_timeout(&self, idle: Duration) {
        let secs = idle.as_secs().max(1);
        if self.idle_timeout_secs.swap(secs, Ordering::Relaxed) != secs {
            self.retimed.notify_waiters();
        }
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.load(Ordering::Relaxed))
    }

    /// Registers how `target` frees a session when it expires.
    pub fn set_closer(&self, target: &str, closer: SessionCloser) {
        self.closers.lock().insert(target.to_owned(), closer);
    }

    /// All sessions, oldest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        let mut all: Vec<SessionInfo> = self
            .entries
            .lock()
            .values()
            .map(|e| e.info.clone())
            .collect();
        all.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
        all
    }

    pub fn count(&self, target: &str) -> usize {
        self.entries
            .lock()
            .keys()
            .filter(|(t, _)| t == target)
            .count()
    }

    /// Forgets every session of `target` (it stopped) and its closer.
    pub fn remove_target(&self, target: &str) {
        let removed = {
            let mut entries = self.entries.lock();
            let before = entries.len();
            entries.retain(|(t, _), _| t != target);
            before != entries.len()
        };
        self.closers.lock().remove(target);
        if removed {
            self.changed(target);
        }
    }

    /// Ends one session of `target` now, as its idle expiry would (the target frees it, and
    /// the client's next request gets "session not found" and starts a new one); false when
    /// there is no such session.
    pub fn end(&self, target: &str, id: &str) -> bool {
        let removed = self
            .entries
            .lock()
            .remove(&(target.to_owned(), id.to_owned()));
        let Some(entry) = removed else {
            return false;
        };
        tracing::info!(target_name = %target, session = %id, "session ended from the manager");
        self.close(target, id, entry.info.kind);
        true
    }

    /// Frees a session that left the registry at its target, and tells the watchers.
    fn close(&self, target: &str, id: &str, kind: SessionKind) {
        if kind == SessionKind::Session {
            let closer = self.closers.lock().get(target).cloned();
            if let Some(close) = closer {
                close(id.to_owned());
            }
        }
        self.changed(target);
    }

    /// Expires sessions idle for longer than the timeout; returns how many.
    pub fn expire_idle(&self) -> usize {
        let idle = self.idle_timeout();
        self.expire_idle_since(Instant::now(), idle)
    }

    fn expire_idle_since(&self, now: Instant, idle: Duration) -> usize {
        let expired: Vec<(String, String, SessionKind)> = {
            let mut entries = self.entries.lock();
            let keys: Vec<_> = entries
                .iter()
                .filter(|(_, e)| now.saturating_duration_since(e.last_seen) > idle)
                .map(|(k, _)| k.clone())
                .collect();
            keys.into_iter()
                .filter_map(|k| entries.remove(&k).map(|e| (k.0, k.1, e.info.kind)))
                .collect()
        };
        for (target, id, kind) in &expired {
            tracing::info!(target_name = %target, session = %id, "session expired after being idle");
            self.close(target, id, *kind);
        }
        expired.len()
    }

    fn changed(&self, target: &str) {
        let callback = self.on_change.lock().clone();
        if let Some(callback) = callback {
            callback(target, self.count(target));
        }
    }

    fn touch(&self, target: &str, id: &str, seen: &Seen) -> bool {
        let mut entries = self.entries.lock();
        match entries.get_mut(&(target.to_owned(), id.to_owned())) {
            Some(entry) => {
                entry.last_seen = Instant::now();
                entry.info.last_seen = now_rfc3339();
                entry.info.requests += seen.counts as u64;
                fill(&mut entry.info.project_path, &seen.project_path);
                fill(&mut entry.info.client_name, &seen.client_name);
                fill(&mut entry.info.client_version, &seen.client_version);
                fill(&mut entry.info.protocol_version, &seen.protocol_version);
                true
            }
            None => false,
        }
    }

    fn insert(&self, target: &str, id: &str, kind: SessionKind, seen: Seen) {
        let now = now_rfc3339();
        let info = SessionInfo {
            id: id.to_owned(),
            target: target.to_owned(),
            kind,
            protocol_version: seen.protocol_version,
            project_path: seen.project_path,
            client_name: seen.client_name,
            client_version: seen.client_version,
            started_at: now.clone(),
            last_seen: now,
            requests: seen.counts as u64,
        };
        self.entries.lock().insert(
            (target.to_owned(), id.to_owned()),
            Entry {
                info,
                last_seen: Instant::now(),
            },
        );
        self.changed(target);
    }

    fn remove(&self, target: &str, id: &str) {
        let removed = self
            .entries
            .lock()
            .remove(&(target.to_owned(), id.to_owned()))
            .is_some();
        if removed {
            self.changed(target);
        }
    }

    /// Runs `expire_idle` periodically until `stop` is cancelled; a changed timeout applies at
    /// once.
    pub fn spawn_sweeper(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            loop {
                let period = (registry.idle_timeout() / 4)
                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                let retimed = registry.retimed.notified();
                tokio::pin!(retimed);
                retimed.as_mut().enable();
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = &mut retimed => continue,
                    _ = tokio::time::sleep(period) => {}
                }
                registry.expire_idle();
            }
        })
    }
}

fn fill(slot: &mut Option<String>, value: &Option<String>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// What one request tells us about its session.
#[derive(Debug, Default, Clone, PartialEq)]
struct Seen {
    method: Option<String>,
    protocol_version: Option<String>,
    project_path: Option<String>,
    client_name: Option<String>,
    client_version: Option<String>,
    /// Whether it counts as a request (a JSON-RPC request, not a response or notification).
    counts: bool,
    /// Whether the client named itself in the stateless revision's `_meta`.
    stateless_meta: bool,
}

/// State of the tracking middleware of one target.
#[derive(Clone)]
pub struct Tracker {
    pub registry: Arc<SessionRegistry>,
    pub target: String,
}

/// The axum middleware on a target's `/mcp`: `from_fn_with_state(tracker, sessions::track)`.
pub async fn track(State(tracker): State<Tracker>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let session_id = header_text(&parts.headers, headers::SESSION_ID, 256);
    let proxy_instance = header_text(&parts.headers, headers::PROXY_INSTANCE, 128);
    let mut seen = Seen {
        project_path: header_text(&parts.headers, headers::PROJECT_PATH, MAX_KEPT_HEADER_BYTES)
            .filter(|p| is_plain_absolute(p)),
        protocol_version: header_text(&parts.headers, headers::PROTOCOL_VERSION, 64),
        ..Seen::default()
    };
    let request = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large or unreadable",
                )
                    .into_response();
            }
        };
        peek_body(&bytes, &mut seen);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    let method = request.method().clone();
    let response = next.run(request).await;
    let target = tracker.target.as_str();
    let registry = &tracker.registry;
    let ok = response.status().is_success();

    if method == Method::DELETE {
        if let (Some(id), true) = (&session_id, ok) {
            registry.remove(target, id);
        }
        return response;
    }
    if let Some(id) = &session_id {
        if response.status() == StatusCode::NOT_FOUND {
            registry.remove(target, id);
        } else if ok && !registry.touch(target, id, &seen) {
            // A session we have not seen start (e.g. the registry was just reset): adopt it.
            registry.insert(target, id, SessionKind::Session, seen);
        }
        return response;
    }
    if !ok {
        return response;
    }
    if seen.method.as_deref() == Some("initialize") {
        let issued = response
            .headers()
            .get(headers::SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if let Some(id) = issued {
            registry.insert(target, &id, SessionKind::Session, seen);
        }
        return response;
    }
    let id = match proxy_instance {
        Some(instance) => format!("proxy:{instance}"),
        None if seen.stateless_meta => stateless_client_id(&seen),
        None => return response,
    };
    if !registry.touch(target, &id, &seen) {
        registry.insert(target, &id, SessionKind::Stateless, seen);
    }
    response
}

/// The id of a stateless client without a proxy: stable for one client on one project, so
/// that its requests add up in one entry, which expires when it goes quiet.
fn stateless_client_id(seen: &Seen) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    (&seen.client_name, &seen.client_version, &seen.project_path).hash(&mut hasher);
    format!("client:{:016x}", hasher.finish())
}

fn header_text(headers: &HeaderMap, name: &str, max: usize) -> Option<String> {
    let value = headers.get(name)?;
    if value.len() > max {
        return None;
    }
    let text = value.to_str().ok()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// An absolute path with no `..`, no NUL: the only kind of project path we show.
pub fn is_plain_absolute(path: &str) -> bool {
    !path.contains('\0')
        && Path::new(path).is_absolute()
        && Path::new(path)
            .components()
            .all(|c| !matches!(c, Component::ParentDir))
}

fn peek_body(bytes: &[u8], seen: &mut Seen) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let message = match &value {
        serde_json::Value::Array(batch) => match batch.first() {
            Some(first) => first,
            None => return,
        },
        other => other,
    };
    let method = message.get("method").and_then(|m| m.as_str());
    seen.counts = method.is_some() && message.get("id").is_some();
    seen.method = method.map(str::to_owned);
    let params = message.get("params");
    let (info, version) = if method == Some("initialize") {
        (
            params.and_then(|p| p.get("clientInfo")),
            params.and_then(|p| p.get("protocolVersion")),
        )
    } else {
        let meta = params.and_then(|p| p.get("_meta"));
        (
            meta.and_then(|m| m.get(meta_keys::CLIENT_INFO)),
            meta.and_then(|m| m.get(meta_keys::PROTOCOL_VERSION)),
        )
    };
    let short = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str())
            .filter(|s| s.len() <= 256)
            .map(str::to_owned)
    };
    if let Some(info) = info {
        seen.stateless_meta = method != Some("initialize");
        seen.client_name = short(info.get("name"));
        seen.client_version = short(info.get("version"));
    }
    if let Some(version) = short(version) {
        seen.protocol_version = Some(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths() {
        let cases = [
            ("/home/me/project", true),
            ("/", true),
            ("relative/dir", false),
            ("/home/../etc", false),
            ("/a/b/..", false),
            ("/a\0b", false),
            ("", false),
        ];
        for (path, expected) in cases {
            assert_eq!(is_plain_absolute(path), expected, "{path:?}");
        }
    }

    #[test]
    fn peeks_initialize_and_stateless_meta() {
        let mut seen = Seen::default();
        peek_body(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","clientInfo":{"name":"claude-code","version":"2.1"},"capabilities":{}}}"#,
            &mut seen,
        );
        assert_eq!(seen.method.as_deref(), Some("initialize"));
        assert_eq!(seen.client_name.as_deref(), Some("claude-code"));
        assert_eq!(seen.client_version.as_deref(), Some("2.1"));
        assert_eq!(seen.protocol_version.as_deref(), Some("2025-11-25"));
        assert!(seen.counts);
        assert!(!seen.stateless_meta);

        let mut seen = Seen::default();
        peek_body(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"py","version":"2"}}}}"#,
            &mut seen,
        );
        assert_eq!(seen.client_name.as_deref(), Some("py"));
        assert_eq!(seen.protocol_version.as_deref(), Some("2026-07-28"));
        assert!(seen.stateless_meta);

        let mut seen = Seen::default();
        peek_body(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &mut seen,
        );
        assert!(!seen.counts);
        let mut seen = Seen::default();
        peek_body(b"\xff not json", &mut seen);
        assert_eq!(seen, Seen::default());
    }

    #[test]
    fn idle_sessions_expire_and_are_closed() {
        let registry = SessionRegistry::new(Duration::from_secs(60));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let sink = closed.clone();
        registry.set_closer("memory", Arc::new(move |id| sink.lock().push(id)));
        registry.insert("memory", "s1", SessionKind::Session, Seen::default());
        registry.insert("memory", "proxy:x", SessionKind::Stateless, Seen::default());
        registry.insert("other", "s2", SessionKind::Session, Seen::default());
        assert_eq!(registry.count("memory"), 2);
        assert_eq!(
            registry.expire_idle_since(Instant::now(), Duration::from_secs(60)),
            0
        );
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(
            registry.expire_idle_since(later, Duration::from_secs(60)),
            3
        );
        assert_eq!(*closed.lock(), vec!["s1".to_owned()]);
        assert!(registry.list().is_empty());
    }

    #[test]
    fn a_session_ended_from_the_manager_is_closed_at_its_target_and_only_it() {
        let registry = SessionRegistry::new(Duration::from_secs(60));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let sink = closed.clone();
        registry.set_closer("memory", Arc::new(move |id| sink.lock().push(id)));
        registry.insert("memory", "s1", SessionKind::Session, Seen::default());
        registry.insert("memory", "s2", SessionKind::Session, Seen::default());
        assert!(registry.end("memory", "s1"));
        assert!(!registry.end("memory", "s1"), "already gone");
        assert!(!registry.end("other", "s2"), "a session of another target");
        assert_eq!(*closed.lock(), vec!["s1".to_owned()]);
        let left: Vec<String> = registry.list().into_iter().map(|s| s.id).collect();
        assert_eq!(left, ["s2"]);
    }

    #[test]
    fn touch_counts_requests_and_fills_blanks() {
        let registry = SessionRegistry::new(Duration::from_secs(60));
        registry.insert(
            "memory",
            "s1",
            SessionKind::Session,
            Seen {
                counts: true,
                ..Seen::default()
            },
        );
        let seen = Seen {
            counts: true,
            project_path: Some("/p".into()),
            ..Seen::default()
        };
        assert!(registry.touch("memory", "s1", &seen));
        assert!(!registry.touch("memory", "nope", &seen));
        let list = registry.list();
        assert_eq!(list[0].requests, 2);
        assert_eq!(list[0].project_path.as_deref(), Some("/p"));
        registry.remove_target("memory");
        assert_eq!(registry.count("memory"), 0);
    }
}
