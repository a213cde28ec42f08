//! Finding the target's daemon, in the order DESIGN.md fixes: ping the configured port, read the
//! lock file, ask the manager API to `ensure` it, and only then start
//! `mcp-session-manager daemon --only NAME` ourselves: detached in its own session and under the
//! start lock, so that N proxies starting together start exactly one daemon.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use msm_core::config::UnknownTarget;
use msm_core::{
    Config, ConfigError, LockFile, StateDir, TargetConfig, TargetKind, Token, Transport,
};
use tokio::time::Instant;

use crate::http::{HttpClient, Probe, probe, read_body, send};

/// How often readiness is checked while waiting.
const POLL: Duration = Duration::from_millis(15);

/// How the proxy reaches its target once it is up.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: Uri,
    /// The transport a client of the target speaks (stdio targets are served as streamable HTTP).
    pub transport: Transport,
    /// `Authorization` for our own daemons; the configured `headers` for a `url` target.
    pub headers: HeaderMap,
    /// For error messages: which target, where, and which log to read.
    pub description: String,
}

/// Why the target cannot be reached; every message says what to look at.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("config.toml is invalid, fix it: {0}")]
    Config(#[from] ConfigError),
    #[error("{0} (in {1})")]
    UnknownTarget(UnknownTarget, PathBuf),
    #[error("target `{target}`: {reason}")]
    BadTarget { target: String, reason: String },
    #[error(
        "port {port} of target `{target}` is held by another program that is not an MCP Session Manager daemon ({detail}); stop that program or give [targets.{target}] another port in {config}"
    )]
    ForeignPort {
        target: String,
        port: u16,
        detail: String,
        config: PathBuf,
    },
    #[error(
        "target `{target}` on port {port} did not become ready within {waited_secs} s ([proxy] ready_timeout_secs); see {log}"
    )]
    NotReady {
        target: String,
        port: u16,
        waited_secs: u64,
        log: String,
    },
    #[error("cannot start the daemon for target `{target}` ({binary}): {detail}; see {log}")]
    StartFailed {
        target: String,
        binary: String,
        detail: String,
        log: String,
    },
    #[error(
        "the manager on port {port} refused to start target `{target}` (HTTP {status}: {detail}); see {log}"
    )]
    ManagerRefused {
        target: String,
        port: u16,
        status: u16,
        detail: String,
        log: String,
    },
    #[error("state dir {path}: {detail}")]
    StateDir { path: PathBuf, detail: String },
}

/// What discovery needs to know about this proxy.
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    pub state: StateDir,
    pub target: String,
}

/// Loads config.toml afresh (a fixed file helps without a restart) and finds or starts the
/// target's daemon.
pub async fn discover(
    client: &HttpClient,
    settings: &DiscoverySettings,
) -> Result<Endpoint, DiscoveryError> {
    let config_path = settings.state.config_path();
    let config = Config::load(&config_path)?;
    let target = config
        .target(&settings.target)
        .map_err(|e| DiscoveryError::UnknownTarget(e, config_path.clone()))?
        .clone();
    if let TargetKind::Remote { url, headers, .. } = &target.kind
        && !target.is_served_by_host()
    {
        return remote_endpoint(&target, url, headers);
    }
    #[expect(
        clippy::expect_used,
        reason = "Config validation gives every non-remote target a port"
    )]
    let port = target
        .port
        .expect("validated: non-remote targets have a port");
    let state_error = |detail: String| DiscoveryError::StateDir {
        path: settings.state.root().to_owned(),
        detail,
    };
    let url: Uri = target
        .endpoint_url()
        .parse()
        .map_err(|e| state_error(format!("bad url: {e}")))?;
    let logs = log_hint(&settings.state, &target.name);
    let endpoint = Endpoint {
        url: url.clone(),
        transport: target.transport.served_as(),
        headers: HeaderMap::new(),
        description: format!("target `{}` at {url} (logs: {logs})", target.name),
    };
    let daemon = Daemon {
        client,
        state: &settings.state,
        target: &target,
        port,
        manager_port: config.manager_port,
        config_path,
        deadline: Instant::now() + Duration::from_secs(config.proxy.ready_timeout_secs.max(1)),
        ready_timeout_secs: config.proxy.ready_timeout_secs,
        logs,
    };
    daemon.ensure_ready().await?;
    // Read only now: the daemon creates the token when it first starts, and proxies that
    // created it too would race each other.
    let token = Token::load(&settings.state).map_err(|e| match e.kind() {
        // Something answered on the port, yet no host of this state dir ever ran.
        std::io::ErrorKind::NotFound => state_error(format!(
            "{e}, yet a server answers on 127.0.0.1:{port}: a host of another state dir or user \
             holds that port; stop it, or give this state dir other ports in {}",
            settings.state.config_path().display()
        )),
        _ => state_error(e.to_string()),
    })?;
    let bearer = HeaderValue::from_str(&format!("Bearer {}", token.as_str()))
        .map_err(|e| state_error(format!("bad token: {e}")))?;
    let mut endpoint = endpoint;
    endpoint.headers.insert(http::header::AUTHORIZATION, bearer);
    Ok(endpoint)
}

fn remote_endpoint(
    target: &TargetConfig,
    url: &str,
    configured: &std::collections::BTreeMap<String, String>,
) -> Result<Endpoint, DiscoveryError> {
    let bad = |reason: String| DiscoveryError::BadTarget {
        target: target.name.clone(),
        reason,
    };
    if url.starts_with("https://") {
        return Err(bad(format!(
            "{url} needs TLS, which mcp-session-proxy leaves to the host: give the target a `port` in config.toml, and the host fronts it there for every window"
        )));
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| bad(format!("bad url {url}: {e}")))?;
    let mut headers = HeaderMap::new();
    for (name, value) in configured {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| bad(format!("bad header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| bad(format!("bad value for header {name}: {e}")))?;
        headers.insert(name, value);
    }
    Ok(Endpoint {
        url: uri,
        transport: target.transport,
        headers,
        description: format!("target `{}` at {url}", target.name),
    })
}

fn log_hint(state: &StateDir, target: &str) -> String {
    format!(
        "{} and {}",
        state.log_path(target).display(),
        state.log_path(msm_core::MANAGER_NAME).display()
    )
}

/// One attempt to get a daemon of ours serving `target`.
struct Daemon<'a> {
    client: &'a HttpClient,
    state: &'a StateDir,
    target: &'a TargetConfig,
    port: u16,
    manager_port: u16,
    config_path: PathBuf,
    deadline: Instant,
    ready_timeout_secs: u64,
    logs: String,
}

/// What the target's port says.
enum PortState {
    Ready,
    /// Nothing listens.
    Down,
    /// Something listens but it is not (yet) a ready daemon of ours.
    Other(String),
}

impl Daemon<'_> {
    /// Loops until the port answers as ours: while a live owner (the target's lock file, or a
    /// manager) is bringing it up we wait; when there is none, we start a daemon ourselves. A
    /// lock owner that dies meanwhile (SIGKILL) is noticed on the next round.
    async fn ensure_ready(&self) -> Result<(), DiscoveryError> {
        let mut asked_manager = false;
        loop {
            // 1. The configured port.
            let foreign = match self.port_state().await {
                PortState::Ready => return Ok(()),
                PortState::Down => None,
                PortState::Other(detail) => Some(detail),
            };
            if Instant::now() >= self.deadline {
                return Err(self.not_ready());
            }
            // 2. The lock file: a live owner is serving or about to serve it.
            if self.target_lock_live() {
                tokio::time::sleep(POLL).await;
                continue;
            }
            // 3. The manager API.
            if self.manager_live() || !asked_manager {
                if !asked_manager {
                    asked_manager = true;
                    if self.ask_manager().await? {
                        continue;
                    }
                } else {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
            if let Some(detail) = foreign {
                return Err(self.foreign(detail));
            }
            // 4. Start it ourselves, one proxy at a time; whoever held the lock before us may
            // have done it already.
            let _start_lock = self.take_start_lock().await?;
            match self.port_state().await {
                PortState::Ready => return Ok(()),
                _ if self.target_lock_live() || self.manager_live() => continue,
                PortState::Other(detail) => return Err(self.foreign(detail)),
                PortState::Down => {}
            }
            let child = self.spawn_daemon()?;
            return self.wait_ready(child).await;
        }
    }

    fn target_lock_live(&self) -> bool {
        LockFile::read_live(&self.state.lock_path(&self.target.name)).is_some()
    }

    fn manager_live(&self) -> bool {
        LockFile::read_live(&self.state.lock_path(msm_core::MANAGER_NAME)).is_some()
    }

    fn foreign(&self, detail: String) -> DiscoveryError {
        DiscoveryError::ForeignPort {
            target: self.target.name.clone(),
            port: self.port,
            detail,
            config: self.config_path.clone(),
        }
    }

    /// Targets the host serves itself answer `/health`; a command that serves HTTP on its own
    /// port only has to answer at all, provided a host owns it.
    async fn port_state(&self) -> PortState {
        #[expect(
            clippy::expect_used,
            reason = "a loopback URL with a u16 port always parses"
        )]
        let uri: Uri = format!("http://127.0.0.1:{}/health", self.port)
            .parse()
            .expect("valid health url");
        let served_by_host = match &self.target.kind {
            TargetKind::Builtin(_) => true,
            TargetKind::Process { .. } => self.target.transport == Transport::Stdio,
            // Only a fronted remote gets here: the host's guarded front answers `/health`.
            TargetKind::Remote { .. } => true,
        };
        match probe(self.client, &uri, Duration::from_secs(2)).await {
            Probe::Answered { status: 200, .. } if served_by_host => PortState::Ready,
            Probe::Answered { status, .. } if !served_by_host => {
                if self.host_alive() {
                    PortState::Ready
                } else {
                    PortState::Other(format!("GET /health answered HTTP {status}"))
                }
            }
            Probe::Answered { status, body } => PortState::Other(format!(
                "GET /health answered HTTP {status} {}",
                String::from_utf8_lossy(&body[..body.len().min(80)]).trim()
            )),
            Probe::Refused(_) => PortState::Down,
            Probe::Garbled(detail) => PortState::Other(detail),
        }
    }

    fn host_alive(&self) -> bool {
        self.target_lock_live() || self.manager_live()
    }

    /// `POST /daemons/NAME/ensure` on a live manager; whether one answered.
    /// `Ok(false)` when no manager answers; an error when it refuses (say, a disabled target).
    async fn ask_manager(&self) -> Result<bool, DiscoveryError> {
        let port = LockFile::read_live(&self.state.lock_path(msm_core::MANAGER_NAME))
            .map_or(self.manager_port, |info| info.port);
        let Ok(uri) = format!(
            "http://127.0.0.1:{port}/daemons/{}/ensure",
            self.target.name
        )
        .parse::<Uri>() else {
            return Ok(false);
        };
        let Ok(token) = Token::load(self.state) else {
            return Ok(false);
        };
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", token.as_str())) {
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let call = send(self.client, Method::POST, &uri, &headers, Bytes::new());
        match tokio::time::timeout(remaining.min(Duration::from_secs(10)), call).await {
            Ok(Ok(response)) => {
                let status = response.status();
                let body = read_body(response, 2048).await.unwrap_or_default();
                if status.is_success() {
                    return Ok(true);
                }
                Err(DiscoveryError::ManagerRefused {
                    target: self.target.name.clone(),
                    port,
                    status: status.as_u16(),
                    detail: String::from_utf8_lossy(&body).trim().to_owned(),
                    log: self
                        .state
                        .log_path(msm_core::MANAGER_NAME)
                        .display()
                        .to_string(),
                })
            }
            Ok(Err(e)) => {
                tracing::debug!("no manager on port {port}: {e}");
                Ok(false)
            }
            // It is working on it; the readiness loop decides.
            Err(_) => Ok(true),
        }
    }

    // `File::try_lock` is std since 1.89, as msm-core's lock files already require.
    #[allow(clippy::incompatible_msrv)]
    async fn take_start_lock(&self) -> Result<std::fs::File, DiscoveryError> {
        let path = self.state.start_lock_path();
        let error = |detail: String| DiscoveryError::StateDir {
            path: path.clone(),
            detail,
        };
        self.state.ensure().map_err(|e| error(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| error(e.to_string()))?;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => return Err(error(e.to_string())),
            }
            if Instant::now() >= self.deadline {
                return Err(self.not_ready());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn not_ready(&self) -> DiscoveryError {
        DiscoveryError::NotReady {
            target: self.target.name.clone(),
            port: self.port,
            waited_secs: self.ready_timeout_secs,
            log: self.logs.clone(),
        }
    }

    /// Waits for the daemon we started, noticing when it exits instead.
    async fn wait_ready(&self, child: std::process::Child) -> Result<(), DiscoveryError> {
        let mut child = Some(child);
        let outcome = loop {
            if let PortState::Ready = self.port_state().await {
                break Ok(());
            }
            if let Some(exited) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                child = None;
                // Another host may have won the race for the ports: then it serves us.
                if !matches!(self.port_state().await, PortState::Ready) {
                    break Err(DiscoveryError::StartFailed {
                        target: self.target.name.clone(),
                        binary: manager_binary().display().to_string(),
                        detail: format!("the daemon exited at once ({exited})"),
                        log: format!(
                            "{} and {}",
                            daemon_stderr_path(self.state).display(),
                            self.logs
                        ),
                    });
                }
                break Ok(());
            }
            if Instant::now() >= self.deadline {
                break Err(self.not_ready());
            }
            tokio::time::sleep(POLL).await;
        };
        if let Some(mut child) = child {
            // Reap it when it ends, so that it never lingers as a zombie of ours.
            let _ = std::thread::Builder::new()
                .stack_size(32 * 1024)
                .spawn(move || child.wait());
        }
        outcome
    }

    fn spawn_daemon(&self) -> Result<std::process::Child, DiscoveryError> {
        let binary = manager_binary();
        let failed = |detail: String| DiscoveryError::StartFailed {
            target: self.target.name.clone(),
            binary: binary.display().to_string(),
            detail,
            log: self.logs.clone(),
        };
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(daemon_stderr_path(self.state))
            .map(std::process::Stdio::from)
            .unwrap_or_else(|_| std::process::Stdio::null());
        let mut command = std::process::Command::new(&binary);
        command
            .args(["daemon", "--only", &self.target.name])
            .env(msm_core::state_dir::ENV_HOME, self.state.root())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(stderr);
        detach(&mut command);
        tracing::info!(binary = %binary.display(), target = %self.target.name, "starting the daemon");
        let spawned = command.spawn();
        #[cfg(windows)]
        let spawned = match spawned {
            Err(e) if e.raw_os_error() == Some(windows::ERROR_ACCESS_DENIED) => {
                // The manager was asked first and did not answer; a daemon inside the job is
                // better than none, but it ends with this window.
                tracing::warn!(
                    "our job object forbids CREATE_BREAKAWAY_FROM_JOB (its launcher set no \
                     JOB_OBJECT_LIMIT_BREAKAWAY_OK) and no manager answered: starting the \
                     daemon inside the job, so it ends when the launcher closes it; start \
                     the tray app or `mcp-session-manager daemon` to keep the servers up"
                );
                windows::set_flags(&mut command, false);
                command.spawn()
            }
            other => other,
        };
        spawned.map_err(|e| failed(e.to_string()))
    }
}

/// Where a daemon started by a proxy writes what it prints before its own logging is up.
pub fn daemon_stderr_path(state: &StateDir) -> PathBuf {
    state.root().join("daemon-stderr.log")
}

/// `mcp-session-manager` beside this binary, else whatever PATH finds.
pub fn manager_binary() -> PathBuf {
    let name = format!("mcp-session-manager{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The daemon must outlive the proxy and never get its signals: its own session (Unix) or
/// process group without a console (Windows), and SIGINT back to its default.
fn detach(command: &mut std::process::Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls (setsid, signal) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGINT,
                    nix::sys::signal::SigHandler::SigDfl,
                )
                .map_err(std::io::Error::from)?;
                Ok(())
            });
        }
    }
    #[cfg(windows)]
    windows::set_flags(command, true);
}

/// The daemon's creation on Windows.
#[cfg(windows)]
mod windows {
    use std::os::windows::process::CommandExt;

    use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
    use windows_sys::Win32::System::Console::{
        GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
    };
    use windows_sys::Win32::System::Threading::{
        CREATE_BREAKAWAY_FROM_JOB, CREATE_NEW_PROCESS_GROUP, CREATE_NO_WINDOW, DETACHED_PROCESS,
    };

    pub const ERROR_ACCESS_DENIED: i32 = 5;

    /// Its own process group (no Ctrl-C from our console), no console (`CREATE_NO_WINDOW`
    /// too, so that no window flashes should `DETACHED_PROCESS` be dropped), and out of our
    /// job when `breakaway`: launchers run us in a kill-on-close job, and the daemon must
    /// outlive the window that happened to start it.
    pub fn set_flags(command: &mut std::process::Command, breakaway: bool) {
        let mut flags = CREATE_NEW_PROCESS_GROUP | DETACHED_PROCESS | CREATE_NO_WINDOW;
        if breakaway {
            flags |= CREATE_BREAKAWAY_FROM_JOB;
        }
        command.creation_flags(flags);
        // CreateProcess hands every inheritable handle to the child: our stdin/stdout pipes
        // would stay open in the daemon, and the client would never see our end.
        for std_handle in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
            // SAFETY: GetStdHandle returns a handle of ours or null; clearing a flag on it
            // changes nothing else.
            unsafe {
                let handle = GetStdHandle(std_handle);
                if !handle.is_null() {
                    SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0);
                }
            }
        }
    }
}
