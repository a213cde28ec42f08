//! The host's vocabulary of state and events, and its clock in RFC 3339: the leaf that the
//! supervisor, the session registry, the launchers and the host all import, so that the
//! layers above it never need to import each other upwards.

use serde::Serialize;

/// A target's lifecycle state, as `/status` and the UI show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetState {
    Running,
    Starting,
    Stopped,
    Failed,
    CrashLoop,
    /// An on-demand target with no child running: the next session starts one.
    Idle,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Running => "running",
            TargetState::Starting => "starting",
            TargetState::Stopped => "stopped",
            TargetState::Failed => "failed",
            TargetState::CrashLoop => "crash-loop",
            TargetState::Idle => "idle",
        }
    }
}

/// One target in `GET /status`.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub name: String,
    /// `builtin`, `process` or `remote`.
    pub kind: &'static str,
    pub transport: &'static str,
    pub port: Option<u16>,
    /// The URL a client of this target uses.
    pub url: String,
    pub enabled: bool,
    pub state: TargetState,
    pub pid: Option<u32>,
    pub sessions: usize,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub log_path: Option<String>,
    /// RFC 3339, when it last became running.
    pub started_at: Option<String>,
    /// Remote targets only: whether the URL answered the last probe.
    pub reachable: Option<bool>,
    /// Whether the host guards the target's port (loopback, Origin, token): `false` for an
    /// external HTTP server without `{port}`, which binds its port itself; `None` for remote.
    pub guarded: Option<bool>,
}

/// `GET /status`.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub version: &'static str,
    pub pid: u32,
    pub uptime_secs: u64,
    pub started_at: String,
    pub manager_port: u16,
    pub state_dir: String,
    pub targets: Vec<TargetStatus>,
}

/// A change the UI or tray may want to show (also sent on `GET /events`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum HostEvent {
    Target {
        name: String,
        state: TargetState,
        last_error: Option<String>,
    },
    Sessions {
        target: String,
        count: usize,
    },
    ConfigReloaded {
        added: Vec<String>,
        removed: Vec<String>,
        restarted: Vec<String>,
    },
    ConfigError {
        message: String,
    },
    /// A memory DB file lost its name while in use (deleted, moved, replaced) and was reopened.
    MemoryDbReopened {
        db: String,
        project: Option<String>,
        /// `deleted` or `replaced`.
        reason: &'static str,
        /// The DB used from now on.
        now: String,
        message: String,
    },
    ShuttingDown,
}

/// What `ensure`/`start` answer when a target cannot be made ready.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Unknown(#[from] msm_core::config::UnknownTarget),
    #[error("target `{name}` failed: {reason}")]
    Failed { name: String, reason: String },
    #[error("target `{name}` is a remote `url` target: the host does not start it")]
    Remote { name: String },
    #[error("the host is shutting down")]
    ShuttingDown,
}

/// Now, in RFC 3339 (UTC): the format of every timestamp the API shows.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// `at` in RFC 3339.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
