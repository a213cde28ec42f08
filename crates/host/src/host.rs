//! The host runtime: owns `manager.lock`, the manager port, every target's lifecycle
//! (start, stop, restart, ensure, hot reload) and the event stream the UI and tray follow.
//!
//! One host per user: `Host::start` refuses with `HostError::AlreadyRunning` when a live host
//! holds `manager.lock`. One failing target never blocks the others: each target starts on its
//! own task and its failure is only recorded in its status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use msm_core::{Config, LockFile, LockInfo, StateDir, TargetConfig, TargetKind, Token};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::launch::{self, LaunchContext, LaunchError, Running};
use crate::mcp_http::{self, BindError};
use crate::security::Guard;
use crate::sessions::{SessionInfo, SessionRegistry};
pub use crate::status::TargetError;
use crate::status::{HostEvent, HostStatus, TargetState, TargetStatus, now_rfc3339};

/// How long `ensure` waits for a restarting child.
const CHILD_READY_TIMEOUT: Duration = Duration::from_secs(65);

/// How to start a host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    pub state_dir: StateDir,
    /// Start only these targets eagerly (`daemon --only NAME`); empty: every enabled target.
    /// The others start on demand (`ensure`).
    pub only: Vec<String>,
    /// Reload config.toml when it changes on disk.
    pub watch_config: bool,
}

impl HostOptions {
    pub fn new(state_dir: StateDir) -> Self {
        Self {
            state_dir,
            only: Vec::new(),
            watch_config: true,
        }
    }
}

/// Why a host did not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// Not a failure for a second headless host: it says so and exits 0.
    #[error("a host is already running (pid {pid}, manager on 127.0.0.1:{port})")]
    AlreadyRunning { pid: u32, port: u16 },
    #[error("a host is already running (its lock file {0} is held)")]
    AlreadyRunningUnknown(String),
    #[error(transparent)]
    Config(#[from] msm_core::ConfigError),
    #[error("manager API: {0}")]
    Bind(#[from] BindError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Lock(msm_core::LockError),
}

struct TargetRecord {
    config: TargetConfig,
    state: TargetState,
    pid: Option<u32>,
    restarts: u32,
    /// Restarts the supervisor did on its own (after crashes).
    child_restarts: u32,
    last_error: Option<String>,
    started_at: Option<String>,
    reachable: Option<bool>,
    /// An on-demand stdio target's bridge: its children come and go without events, so the
    /// status reads them live (idle, or running with a pid).
    on_demand: Option<Arc<crate::stdio_bridge::StdioBridge>>,
}

struct TargetSlot {
    name: String,
    /// Serialises lifecycle operations of this target and holds what runs.
    running: tokio::sync::Mutex<Option<Running>>,
    record: Mutex<TargetRecord>,
    state_tx: watch::Sender<TargetState>,
    /// Counts stop requests, bumped before `stop` takes `running`: a start in progress gives
    /// up its launch when it moves, so that a stop never waits behind a child's start.
    stops: watch::Sender<u64>,
}

pub(crate) struct HostInner {
    pub(crate) state_dir: StateDir,
    pub(crate) token: Token,
    pub(crate) guard_manager: Arc<Guard>,
    launch_ctx: LaunchContext,
    pub(crate) sessions: Arc<SessionRegistry>,
    config: RwLock<Config>,
    targets: RwLock<BTreeMap<String, Arc<TargetSlot>>>,
    events: broadcast::Sender<HostEvent>,
    started: Instant,
    started_at: String,
    pub(crate) manager_port: u16,
    /// Cancelled by `POST /shutdown` (or the tray): the owner should call `shutdown`.
    pub(crate) shutdown_requested: CancellationToken,
    /// Cancelled when shutdown begins: ends the manager server, the watcher, the sweeper.
    stopping: CancellationToken,
    manager_lock: Mutex<Option<LockFile>>,
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
}

/// The running host. Cloning is cheap; `shutdown` stops everything.
#[derive(Clone)]
pub struct HostHandle {
    inner: Arc<HostInner>,
    manager_task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

/// Starts hosts.
pub struct Host;

impl Host {
    /// Loads config.toml (writing the commented default on first run) and the token, takes
    /// `manager.lock`, opens the manager port, and starts the targets (all enabled ones, or
    /// only `options.only`) in the background. Returns once the manager API answers.
    pub async fn start(options: HostOptions) -> Result<HostHandle, HostError> {
        let state_dir = options.state_dir.clone();
        state_dir.ensure().map_err(|source| HostError::Io {
            context: format!("state dir {}", state_dir.root().display()),
            source,
        })?;
        let config = Config::load_or_init(&state_dir.config_path())?;
        let token = Token::load_or_create(&state_dir).map_err(|source| HostError::Io {
            context: format!("token {}", state_dir.token_path().display()),
            source,
        })?;
        let manager_lock = match LockFile::acquire(
            &state_dir.lock_path(msm_core::MANAGER_NAME),
            LockInfo::for_this_process(config.manager_port, "http"),
        ) {
            Ok(lock) => lock,
            Err(msm_core::LockError::Held { owner, .. }) => {
                return Err(HostError::AlreadyRunning {
                    pid: owner.pid,
                    port: owner.port,
                });
            }
            Err(msm_core::LockError::HeldUnreadable { path }) => {
                return Err(HostError::AlreadyRunningUnknown(path.display().to_string()));
            }
            Err(e) => return Err(HostError::Lock(e)),
        };
        let listener = mcp_http::bind_loopback(config.manager_port)?;

        let sessions = SessionRegistry::new(Duration::from_secs(config.session_idle_timeout_secs));
        let (events, _) = broadcast::channel(256);
        let memory = crate::MemoryBackend::open(&state_dir);
        {
            let events = events.clone();
            memory.stores().on_reopened(move |reopened| {
                let _ = events.send(HostEvent::MemoryDbReopened {
                    db: reopened.db.display().to_string(),
                    project: reopened.project.as_ref().map(|p| p.display().to_string()),
                    reason: reopened.how.as_str(),
                    now: reopened.now.display().to_string(),
                    message: reopened.message(),
                });
            });
        }
        let inner = Arc::new(HostInner {
            launch_ctx: LaunchContext {
                state_dir: state_dir.clone(),
                guard: Guard::new(token.clone(), crate::security::TARGET_OPEN_PATHS),
                sessions: sessions.clone(),
                memory,
            },
            guard_manager: Guard::new(token.clone(), crate::manager_api::OPEN_PATHS),
            state_dir: state_dir.clone(),
            token,
            sessions: sessions.clone(),
            targets: RwLock::new(BTreeMap::new()),
            events: events.clone(),
            started: Instant::now(),
            started_at: now_rfc3339(),
            manager_port: config.manager_port,
            shutdown_requested: CancellationToken::new(),
            stopping: CancellationToken::new(),
            manager_lock: Mutex::new(Some(manager_lock)),
            reload_lock: tokio::sync::Mutex::new(()),
            config: RwLock::new(config.clone()),
        });
        {
            let events = events.clone();
            sessions.set_on_change(Arc::new(move |target: &str, count| {
                let _ = events.send(HostEvent::Sessions {
                    target: target.to_owned(),
                    count,
                });
            }));
        }
        sessions.spawn_sweeper(inner.stopping.clone());

        for target in config.targets.values() {
            inner.add_slot(target.clone());
        }
        let router = crate::manager_api::router(inner.clone() as crate::control::HostRef);
        let manager_task = mcp_http::spawn_server(listener, router, inner.stopping.clone());
        tracing::info!(
            port = inner.manager_port,
            pid = std::process::id(),
            "host started; manager API at http://127.0.0.1:{}",
            inner.manager_port
        );

        let eager: Vec<String> = config
            .targets
            .values()
            .filter(|t| t.enabled && t.is_served_by_host())
            .filter(|t| options.only.is_empty() || options.only.contains(&t.name))
            .map(|t| t.name.clone())
            .collect();
        for name in options
            .only
            .iter()
            .filter(|n| !config.targets.contains_key(*n))
        {
            tracing::warn!("--only {name}: no such target in config.toml");
        }
        for name in eager {
            let inner = inner.clone();
            tokio::spawn(async move {
                let _ = inner.start_target(&name).await;
            });
        }
        if options.watch_config {
            crate::reload::spawn_watcher(inner.clone());
        }
        Ok(HostHandle {
            inner,
            manager_task: Arc::new(Mutex::new(Some(manager_task))),
        })
    }
}

impl HostHandle {
    /// `http://127.0.0.1:<manager port>`.
    pub fn manager_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inner.manager_port)
    }

    /// The bearer token the manager API and every target require.
    pub fn token(&self) -> &Token {
        &self.inner.token
    }

    /// A snapshot of every target (remote targets' reachability from their last probe).
    pub fn status(&self) -> HostStatus {
        self.inner.status()
    }

    /// Probes remote targets, then returns the status.
    pub async fn status_probed(&self) -> HostStatus {
        self.inner.probe_remotes().await;
        self.inner.status()
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.inner.sessions.list()
    }

    /// State changes, as they happen.
    pub fn events(&self) -> broadcast::Receiver<HostEvent> {
        self.inner.events.subscribe()
    }

    pub async fn start_target(&self, name: &str) -> Result<(), TargetError> {
        self.inner.start_target(name).await
    }
    pub async fn stop_target(&self, name: &str) -> Result<(), TargetError> {
        self.inner.stop_target(name).await
    }
    pub async fn restart_target(&self, name: &str) -> Result<(), TargetError> {
        self.inner.restart_target(name).await
    }

    /// Re-reads config.toml and applies only what changed.
    pub async fn reload_config(
        &self,
    ) -> Result<crate::reload::ReloadSummary, msm_core::ConfigError> {
        crate::reload::reload(&(self.inner.clone() as crate::control::HostRef)).await
    }

    /// Resolves when someone asked this host to stop (`POST /shutdown`).
    pub async fn shutdown_requested(&self) {
        self.inner.shutdown_requested.cancelled().await
    }

    /// Asks the host's owner to stop (what `POST /shutdown` does).
    pub fn request_shutdown(&self) {
        self.inner.shutdown_requested.cancel();
    }

    /// Stops every target, closes the DBs, removes the lock files, closes the manager port.
    pub async fn shutdown(self) {
        let _ = self.inner.events.send(HostEvent::ShuttingDown);
        self.inner.stopping.cancel();
        let slots: Vec<Arc<TargetSlot>> = self.inner.targets.read().values().cloned().collect();
        futures::future::join_all(slots.iter().map(|slot| self.inner.stop_slot(slot))).await;
        let task = self.manager_task.lock().take();
        if let Some(task) = task {
            mcp_http::join_server(task, Duration::from_secs(2)).await;
        }
        self.inner.launch_ctx.memory.close();
        self.inner.manager_lock.lock().take();
        tracing::info!("host stopped");
    }
}

impl HostInner {
    pub(crate) fn config(&self) -> Config {
        self.config.read().clone()
    }

    pub(crate) fn set_config(&self, config: Config) {
        self.sessions
            .set_idle_timeout(Duration::from_secs(config.session_idle_timeout_secs));
        *self.config.write() = config;
    }

    pub(crate) fn memory(&self) -> &crate::MemoryBackend {
        &self.launch_ctx.memory
    }

    pub(crate) fn events(&self) -> &broadcast::Sender<HostEvent> {
        &self.events
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    pub(crate) fn stopping_token(&self) -> CancellationToken {
        self.stopping.clone()
    }

    pub(crate) fn add_slot(&self, config: TargetConfig) {
        let (state_tx, _) = watch::channel(TargetState::Stopped);
        let slot = Arc::new(TargetSlot {
            name: config.name.clone(),
            running: tokio::sync::Mutex::new(None),
            record: Mutex::new(TargetRecord {
                config,
                state: TargetState::Stopped,
                pid: None,
                restarts: 0,
                child_restarts: 0,
                last_error: None,
                started_at: None,
                reachable: None,
                on_demand: None,
            }),
            state_tx,
            stops: watch::channel(0).0,
        });
        self.targets.write().insert(slot.name.clone(), slot);
    }

    pub(crate) fn target_names(&self) -> Vec<String> {
        self.targets.read().keys().cloned().collect()
    }

    pub(crate) fn target_config(&self, name: &str) -> Option<TargetConfig> {
        self.targets
            .read()
            .get(name)
            .map(|s| s.record.lock().config.clone())
    }

    pub(crate) fn set_target_config(&self, config: TargetConfig) {
        if let Some(slot) = self.targets.read().get(&config.name) {
            slot.record.lock().config = config;
        }
    }

    pub(crate) async fn remove_slot(&self, name: &str) {
        let slot = self.targets.write().remove(name);
        if let Some(slot) = slot {
            self.stop_slot(&slot).await;
        }
    }

    fn slot(&self, name: &str) -> Result<Arc<TargetSlot>, TargetError> {
        self.targets.read().get(name).cloned().ok_or_else(|| {
            TargetError::Unknown(msm_core::config::UnknownTarget {
                name: name.to_owned(),
                known: self.target_names(),
            })
        })
    }

    fn set_state(&self, slot: &TargetSlot, state: TargetState, last_error: Option<String>) {
        let changed = {
            let mut record = slot.record.lock();
            let changed = record.state != state || last_error.is_some();
            record.state = state;
            if last_error.is_some() || state == TargetState::Running {
                record.last_error = last_error.clone();
            }
            if state == TargetState::Running {
                record.started_at = Some(now_rfc3339());
            }
            changed
        };
        slot.state_tx.send_replace(state);
        if changed {
            match &last_error {
                Some(error) => {
                    tracing::warn!(target_name = %slot.name, state = state.as_str(), "{error}")
                }
                None => tracing::info!(target_name = %slot.name, state = state.as_str()),
            }
            let _ = self.events.send(HostEvent::Target {
                name: slot.name.clone(),
                state,
                last_error,
            });
        }
    }

    /// Starts the target if it is not running; answers once it is ready (or has failed).
    pub(crate) async fn start_target(&self, name: &str) -> Result<(), TargetError> {
        let slot = self.slot(name)?;
        self.start_slot(&slot).await
    }

    async fn start_slot(&self, slot: &Arc<TargetSlot>) -> Result<(), TargetError> {
        if self.is_stopping() {
            return Err(TargetError::ShuttingDown);
        }
        // Read before taking `running`: a stop from now on cancels this start.
        let mut stops = slot.stops.subscribe();
        let stops_seen = *stops.borrow_and_update();
        let mut running = slot.running.lock().await;
        if let Some(existing) = running.as_ref() {
            if !self.revive_child(slot, existing).await {
                return Ok(());
            }
            // The wait needs no lock: a stop meanwhile ends it (the state becomes stopped).
            drop(running);
            return self.wait_child_running(slot).await;
        }
        let config = slot.record.lock().config.clone();
        if !config.is_served_by_host() {
            return Err(TargetError::Remote { name: config.name });
        }
        self.set_state(slot, TargetState::Starting, None);
        // A launch may wait for a child to become ready: shutting down must not wait for it.
        let launched = tokio::select! {
            launched = launch::launch(&self.launch_ctx, &config) => launched,
            _ = self.stopping.cancelled() => {
                self.set_state(slot, TargetState::Stopped, None);
                return Err(TargetError::ShuttingDown);
            }
            // Dropping the launch drops its child (killed) and its lock file.
            _ = stops.wait_for(|stops| *stops != stops_seen) => {
                return Err(TargetError::Failed {
                    name: config.name.clone(),
                    reason: "stopped while starting".into(),
                });
            }
        };
        match launched {
            Ok(mut started) => {
                {
                    let mut record = slot.record.lock();
                    record.pid = started.pid();
                    record.on_demand = started.on_demand_bridge();
                }
                if let Some(source) = started.status_source() {
                    started.set_follower(self.follow_child(slot.clone(), source));
                }
                *running = Some(started);
                self.set_state(slot, TargetState::Running, None);
                Ok(())
            }
            Err(error) => {
                let reason = describe_launch_error(&self.state_dir, &config, &error);
                let state = if error.is_crash_loop() {
                    TargetState::CrashLoop
                } else {
                    TargetState::Failed
                };
                self.set_state(slot, state, Some(reason.clone()));
                Err(TargetError::Failed {
                    name: config.name,
                    reason,
                })
            }
        }
    }

    /// A started target whose child crashed: revives it from a crash loop. `false` when it
    /// is running and there is nothing to wait for.
    async fn revive_child(&self, slot: &TargetSlot, existing: &Running) -> bool {
        let state = slot.record.lock().state;
        match state {
            // An idle on-demand target serves: its next session starts the child.
            TargetState::Running | TargetState::Idle => return false,
            TargetState::CrashLoop | TargetState::Failed => {
                existing.restart_child().await;
                self.set_state(slot, TargetState::Starting, None);
            }
            TargetState::Starting | TargetState::Stopped => {}
        }
        true
    }

    /// Waits (bounded) until a revived child runs again or gives up.
    async fn wait_child_running(&self, slot: &TargetSlot) -> Result<(), TargetError> {
        let mut states = slot.state_tx.subscribe();
        let wait = async {
            loop {
                let state = *states.borrow_and_update();
                match state {
                    TargetState::Running | TargetState::Idle => return Ok(()),
                    TargetState::CrashLoop | TargetState::Failed | TargetState::Stopped => {
                        return Err(TargetError::Failed {
                            name: slot.name.clone(),
                            reason: slot
                                .record
                                .lock()
                                .last_error
                                .clone()
                                .unwrap_or_else(|| state.as_str().to_owned()),
                        });
                    }
                    TargetState::Starting => {}
                }
                if states.changed().await.is_err() {
                    return Err(TargetError::ShuttingDown);
                }
            }
        };
        tokio::select! {
            result = tokio::time::timeout(CHILD_READY_TIMEOUT, wait) => result.unwrap_or_else(|_| {
                Err(TargetError::Failed {
                    name: slot.name.clone(),
                    reason: format!("not ready after {}s", CHILD_READY_TIMEOUT.as_secs()),
                })
            }),
            _ = self.stopping.cancelled() => Err(TargetError::ShuttingDown),
        }
    }

    /// Mirrors a supervised child's later changes (crash, restart, crash loop) into the
    /// target's record and the event stream.
    fn follow_child(
        &self,
        slot: Arc<TargetSlot>,
        mut source: launch::StatusSource,
    ) -> tokio::task::JoinHandle<()> {
        let events = self.events.clone();
        tokio::spawn(async move {
            while let Some(child) = source.next().await {
                let changed = {
                    let mut record = slot.record.lock();
                    let changed =
                        record.state != child.state || record.last_error != child.last_error;
                    record.state = child.state;
                    record.pid = child.pid;
                    record.child_restarts = child.restarts;
                    record.last_error = child.last_error.clone();
                    if child.state == TargetState::Running && changed {
                        record.started_at = Some(now_rfc3339());
                    }
                    changed
                };
                slot.state_tx.send_replace(child.state);
                if changed {
                    let _ = events.send(HostEvent::Target {
                        name: slot.name.clone(),
                        state: child.state,
                        last_error: child.last_error,
                    });
                }
            }
        })
    }

    pub(crate) async fn stop_target(&self, name: &str) -> Result<(), TargetError> {
        let slot = self.slot(name)?;
        self.stop_slot(&slot).await;
        Ok(())
    }

    async fn stop_slot(&self, slot: &TargetSlot) {
        slot.stops.send_modify(|stops| *stops += 1);
        let mut running = slot.running.lock().await;
        if let Some(started) = running.take() {
            started.stop().await;
            self.sessions.remove_target(&slot.name);
        }
        {
            // The next child counts its own restarts from zero: keep the total.
            let mut record = slot.record.lock();
            record.pid = None;
            record.on_demand = None;
            record.restarts += std::mem::take(&mut record.child_restarts);
        }
        if slot.record.lock().config.is_served_by_host() {
            self.set_state(slot, TargetState::Stopped, None);
        }
    }

    pub(crate) async fn restart_target(&self, name: &str) -> Result<(), TargetError> {
        let slot = self.slot(name)?;
        self.stop_slot(&slot).await;
        slot.record.lock().restarts += 1;
        self.start_slot(&slot).await
    }

    /// Probes every remote target concurrently and records whether it answered.
    pub(crate) async fn probe_remotes(&self) {
        let remotes: Vec<(Arc<TargetSlot>, String)> = self
            .targets
            .read()
            .values()
            .filter_map(|slot| match &slot.record.lock().config {
                config @ TargetConfig {
                    kind: TargetKind::Remote { url, .. },
                    ..
                } if !config.is_served_by_host() => Some((slot.clone(), url.clone())),
                _ => None,
            })
            .collect();
        futures::future::join_all(remotes.into_iter().map(|(slot, url)| async move {
            let result = launch::probe_remote(&url).await;
            let mut record = slot.record.lock();
            record.reachable = Some(result.is_ok());
            record.state = if result.is_ok() {
                TargetState::Running
            } else {
                TargetState::Failed
            };
            record.last_error = result.err().map(|e| e.to_string());
        }))
        .await;
    }

    pub(crate) fn status(&self) -> HostStatus {
        let targets = self
            .targets
            .read()
            .values()
            .map(|slot| {
                let record = slot.record.lock();
                let config = &record.config;
                let live = record
                    .on_demand
                    .as_ref()
                    .filter(|_| record.state == TargetState::Running)
                    .map(|bridge| bridge.snapshot());
                let (kind, log_path) = match &config.kind {
                    TargetKind::Builtin(_) => {
                        ("builtin", Some(self.state_dir.log_path(&config.name)))
                    }
                    TargetKind::Process { .. } => {
                        ("process", Some(self.state_dir.log_path(&config.name)))
                    }
                    TargetKind::Remote { .. } => ("remote", None),
                };
                TargetStatus {
                    name: config.name.clone(),
                    kind,
                    transport: config.transport.as_str(),
                    port: config.port,
                    url: config.endpoint_url(),
                    enabled: config.enabled,
                    state: live.as_ref().map_or(record.state, |l| l.state),
                    pid: live.as_ref().map_or(record.pid, |l| l.pid),
                    sessions: self.sessions.count(&config.name),
                    restarts: record.restarts + record.child_restarts,
                    last_error: record.last_error.clone(),
                    log_path: log_path.map(|p| p.display().to_string()),
                    started_at: record.started_at.clone(),
                    reachable: record.reachable,
                    guarded: launch::is_guarded(config),
                }
            })
            .collect();
        HostStatus {
            version: msm_core::VERSION,
            pid: std::process::id(),
            uptime_secs: self.started.elapsed().as_secs(),
            started_at: self.started_at.clone(),
            manager_port: self.manager_port,
            state_dir: self.state_dir.root().display().to_string(),
            targets,
        }
    }
}

fn describe_launch_error(
    state_dir: &StateDir,
    config: &TargetConfig,
    error: &LaunchError,
) -> String {
    match error {
        LaunchError::Bind(BindError::InUse { port }) => {
            match LockFile::read_live(&state_dir.lock_path(&config.name)) {
                Some(owner) if owner.pid != std::process::id() => format!(
                    "port {port} is in use: pid {} serves `{}` there (see {})",
                    owner.pid,
                    config.name,
                    state_dir.lock_path(&config.name).display()
                ),
                _ => format!(
                    "port {port} on 127.0.0.1 is already in use by another process; free it or change `port` of [targets.{}] in config.toml",
                    config.name
                ),
            }
        }
        other => other.to_string(),
    }
}

impl crate::control::HostControl for HostInner {
    fn state_dir(&self) -> &StateDir {
        &self.state_dir
    }
    fn token(&self) -> &Token {
        &self.token
    }
    fn guard(&self) -> Arc<Guard> {
        self.guard_manager.clone()
    }
    fn sessions(&self) -> &SessionRegistry {
        &self.sessions
    }
    fn memory(&self) -> &crate::MemoryBackend {
        HostInner::memory(self)
    }
    fn events(&self) -> &broadcast::Sender<HostEvent> {
        HostInner::events(self)
    }
    fn status(&self) -> HostStatus {
        HostInner::status(self)
    }
    fn config(&self) -> Config {
        HostInner::config(self)
    }
    fn set_config(&self, config: Config) {
        HostInner::set_config(self, config);
    }
    fn target_config(&self, name: &str) -> Option<TargetConfig> {
        HostInner::target_config(self, name)
    }
    fn set_target_config(&self, config: TargetConfig) {
        HostInner::set_target_config(self, config);
    }
    fn add_slot(&self, config: TargetConfig) {
        HostInner::add_slot(self, config);
    }
    fn stopping_token(&self) -> CancellationToken {
        HostInner::stopping_token(self)
    }
    fn request_shutdown(&self) {
        self.shutdown_requested.cancel();
    }
    fn reload_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.reload_lock
    }
    fn remove_slot<'a>(&'a self, name: &'a str) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(HostInner::remove_slot(self, name))
    }
    fn start_target<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(HostInner::start_target(self, name))
    }
    fn stop_target<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(HostInner::stop_target(self, name))
    }
    fn restart_target<'a>(
        &'a self,
        name: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(HostInner::restart_target(self, name))
    }
    fn probe_remotes(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(HostInner::probe_remotes(self))
    }
}
