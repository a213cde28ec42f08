//! The child-process supervisor: runs one external MCP server (a `command` target) as a child of
//! the host, waits until it is ready, restarts it with exponential backoff when it dies, gives
//! up with state `crash-loop` when it keeps dying, and stops it with SIGTERM then SIGKILL.
//!
//! The child runs in its own process group, so a Ctrl-C in the host's terminal does not reach
//! it, and the whole group (e.g. `npx` and the `node` it starts) is signalled on stop. Its
//! stdout and stderr are appended to the target's log file (`StateDir::log_path`), except for
//! stdio children ([`ChildIo::Piped`]), whose stdin/stdout are handed to the stdio bridge on
//! every (re)spawn and only stderr goes to the log. On Linux the child also gets SIGTERM when
//! the host dies (parent-death signal), and a dropped [`SupervisedChild`] kills its group.
//!
//! ```text
//! let child = SupervisedChild::spawn(spec, Readiness::Http { .. }, events);
//! child.wait_ready(Duration::from_secs(30)).await?;   // running, or why not
//! child.snapshot();                                    // ChildStatus for /status
//! child.restart().await; child.stop().await;
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use msm_core::{TargetConfig, TargetKind, Transport};

use crate::status::TargetState;

pub mod windows_command;
#[cfg(windows)]
mod windows_job;

/// How long a stopped child gets between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// What to run and how to watch it.
#[derive(Debug, Clone)]
pub struct ChildSpec {
    /// The target name (for logs and events).
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// Where stdout/stderr are appended.
    pub log_path: PathBuf,
    /// Restart policy and timings.
    pub policy: RestartPolicy,
    /// Between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Set when `args`/`env` contain `{port}`: before each spawn a free loopback port is picked
    /// (the previous one if still free), put in place of `{port}`, and stored here for the
    /// readiness probe and the guarded front that forwards to the child.
    pub internal_port: Option<Arc<AtomicU16>>,
}

impl ChildSpec {
    /// The spec of a `command` target; `None` for other kinds.
    pub fn from_target(target: &TargetConfig, log_path: PathBuf) -> Option<ChildSpec> {
        match &target.kind {
            TargetKind::Process {
                command,
                args,
                env,
                cwd,
            } => Some(ChildSpec {
                name: target.name.clone(),
                command: command.clone(),
                args: args.clone(),
                env: env.clone(),
                cwd: cwd.clone(),
                log_path,
                policy: RestartPolicy::default(),
                stop_grace: DEFAULT_STOP_GRACE,
                internal_port: None,
            }),
            _ => None,
        }
    }
}

/// When to restart and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    /// First delay before a restart; doubled after each crash, up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A child that ran this long before dying starts the backoff afresh.
    pub stable_after: Duration,
    /// `crash_loop_crashes` crashes within `crash_loop_window` mean a crash loop: no more
    /// restarts until someone asks for one.
    pub crash_loop_crashes: usize,
    pub crash_loop_window: Duration,
    /// How long an HTTP child may take to answer MCP after each spawn.
    pub ready_timeout: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            crash_loop_crashes: 5,
            crash_loop_window: Duration::from_secs(60),
            ready_timeout: Duration::from_secs(60),
        }
    }
}

/// When a freshly spawned child counts as running.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// As soon as it is spawned (the stdio bridge does its own handshake).
    Spawned,
    /// Once `127.0.0.1:port` accepts connections and MCP answers there: a POST `initialize`
    /// to `/mcp` (streamable-http, http) or a `GET /sse` that opens an event stream (sse).
    Http { port: u16, transport: Transport },
    /// As `Http`, on the internal port the supervisor picked for this spawn (`{port}` targets).
    HttpInternal {
        port: Arc<AtomicU16>,
        transport: Transport,
    },
}

impl Readiness {
    /// The readiness of a target: HTTP for the HTTP transports, `Spawned` for stdio.
    pub fn for_target(target: &TargetConfig) -> Readiness {
        match (target.transport, target.port) {
            (Transport::Stdio, _) | (_, None) => Readiness::Spawned,
            (transport, Some(port)) => Readiness::Http { port, transport },
        }
    }
}

/// Where the child's stdin/stdout go.
#[derive(Debug, Clone)]
pub enum ChildIo {
    /// Both appended to the log (HTTP servers); stdin is closed.
    Logged,
    /// Piped: each spawn's pipes are sent here (stdio servers; the bridge speaks JSON-RPC).
    Piped(mpsc::UnboundedSender<ChildPipes>),
}

/// The pipes of one spawn of a stdio child.
#[derive(Debug)]
pub struct ChildPipes {
    /// Counts spawns from 1; a bridge uses it to tell a restarted child from the old one.
    pub generation: u64,
    pub pid: Option<u32>,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
}

/// A child's state for `/status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChildStatus {
    pub name: String,
    pub state: TargetState,
    pub pid: Option<u32>,
    /// Spawns after the first (automatic and requested).
    pub restarts: u32,
    pub last_error: Option<String>,
    pub log_path: PathBuf,
}

/// Sent on the host's channel whenever a child's status changes.
#[derive(Debug, Clone)]
pub struct ChildEvent {
    pub status: ChildStatus,
}

/// Why a child is not ready.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SupervisorError {
    #[error("`{name}` is not ready after {waited:?}{}", last.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Timeout {
        name: String,
        waited: Duration,
        last: Option<String>,
    },
    #[error("`{name}` keeps crashing (crash loop): {last}; see {log}")]
    CrashLoop {
        name: String,
        last: String,
        log: String,
    },
    #[error("`{name}` is stopped")]
    Stopped { name: String },
}

/// Why one spawn of a child did not start or did not become ready; its text becomes the
/// target's last error.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a free loopback port: {0}")]
    NoFreePort(std::io::Error),
    #[error("cannot start `{command}`: {source}{}", if source.kind() == std::io::ErrorKind::NotFound { " (not found on PATH)" } else { "" })]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("http client: {0}")]
    HttpClient(reqwest::Error),
    /// A Windows-only step (command resolution, the child's job object).
    #[error("{0}")]
    Windows(String),
    #[error("not answering MCP on 127.0.0.1:{port} after {secs}s ({last})")]
    NotAnswering {
        port: u16,
        secs: u64,
        last: ProbeError,
    },
}

/// Why one readiness probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer yet")]
    NoAnswerYet,
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("{request} answered {status}")]
    Status {
        request: &'static str,
        status: reqwest::StatusCode,
    },
}

enum Control {
    Restart(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// A supervised child process; dropping it kills the child's process group.
pub struct SupervisedChild {
    name: String,
    status: watch::Receiver<ChildStatus>,
    control: mpsc::UnboundedSender<Control>,
    current_pid: Arc<Mutex<Option<u32>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl SupervisedChild {
    /// Starts supervising: spawns the child now and keeps it alive until `stop`.
    /// `events` receives every status change (the host turns them into `HostEvent`s).
    pub fn spawn(
        spec: ChildSpec,
        readiness: Readiness,
        io: ChildIo,
        events: Option<broadcast::Sender<ChildEvent>>,
    ) -> SupervisedChild {
        let initial = ChildStatus {
            name: spec.name.clone(),
            state: TargetState::Starting,
            pid: None,
            restarts: 0,
            last_error: None,
            log_path: spec.log_path.clone(),
        };
        let (status_tx, status) = watch::channel(initial);
        let (control, control_rx) = mpsc::unbounded_channel();
        let current_pid = Arc::new(Mutex::new(None));
        let runner = Runner {
            spec: spec.clone(),
            readiness,
            io,
            events,
            status_tx,
            control: control_rx,
            current_pid: current_pid.clone(),
            crashes: VecDeque::new(),
            spawns: 0,
        };
        let task = tokio::spawn(runner.run());
        SupervisedChild {
            name: spec.name,
            status,
            control,
            current_pid,
            task: Mutex::new(Some(task)),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current status.
    pub fn snapshot(&self) -> ChildStatus {
        self.status.borrow().clone()
    }

    /// Follows status changes.
    pub fn watch(&self) -> watch::Receiver<ChildStatus> {
        self.status.clone()
    }

    /// Waits until the child is running; errors at once on a crash loop or a stop.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), SupervisorError> {
        let mut rx = self.status.clone();
        let outcome = tokio::time::timeout(timeout, async {
            loop {
                let status = rx.borrow_and_update().clone();
                match status.state {
                    TargetState::Running | TargetState::Idle => return Ok(()),
                    TargetState::CrashLoop => {
                        return Err(SupervisorError::CrashLoop {
                            name: status.name.clone(),
                            last: status.last_error.clone().unwrap_or_default(),
                            log: status.log_path.display().to_string(),
                        });
                    }
                    TargetState::Stopped => {
                        return Err(SupervisorError::Stopped {
                            name: status.name.clone(),
                        });
                    }
                    TargetState::Starting | TargetState::Failed => {}
                }
                if rx.changed().await.is_err() {
                    return Err(SupervisorError::Stopped {
                        name: self.name.clone(),
                    });
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(SupervisorError::Timeout {
                name: self.name.clone(),
                waited: timeout,
                last: self.status.borrow().last_error.clone(),
            })
        })
    }

    /// Stops the child (if it runs) and spawns it again; also leaves a crash loop. Returns once
    /// the new spawn has begun (use `wait_ready` for readiness).
    pub async fn restart(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Restart(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops the child: SIGTERM to its group, SIGKILL after the grace period. Idempotent.
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for SupervisedChild {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        if let Some(pid) = self.current_pid.lock().take() {
            signal_group(pid, Signal::Kill);
        }
    }
}

struct Runner {
    spec: ChildSpec,
    readiness: Readiness,
    io: ChildIo,
    events: Option<broadcast::Sender<ChildEvent>>,
    status_tx: watch::Sender<ChildStatus>,
    control: mpsc::UnboundedReceiver<Control>,
    current_pid: Arc<Mutex<Option<u32>>>,
    crashes: VecDeque<Instant>,
    spawns: u64,
}

/// What ended one run of the child.
enum Ended {
    Crashed {
        error: String,
        ran: Duration,
    },
    Restart(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
    /// The `SupervisedChild` is gone.
    Dropped,
}

impl Runner {
    fn publish(&self, change: impl FnOnce(&mut ChildStatus)) {
        self.status_tx.send_modify(change);
        let status = self.status_tx.borrow().clone();
        if let Some(events) = &self.events {
            let _ = events.send(ChildEvent { status });
        }
    }

    async fn run(mut self) {
        let mut backoff = self.spec.policy.initial_backoff;
        loop {
            let ended = self.run_once().await;
            match ended {
                Ended::Stop(done) => {
                    self.publish(|s| {
                        s.state = TargetState::Stopped;
                        s.pid = None;
                    });
                    let _ = done.send(());
                    return;
                }
                Ended::Dropped => return,
                Ended::Restart(done) => {
                    self.crashes.clear();
                    backoff = self.spec.policy.initial_backoff;
                    self.publish(|s| {
                        s.restarts += 1;
                        s.state = TargetState::Starting;
                        s.pid = None;
                    });
                    let _ = done.send(());
                }
                Ended::Crashed { error, ran } => {
                    let policy = self.spec.policy;
                    let now = Instant::now();
                    if ran >= policy.stable_after {
                        backoff = policy.initial_backoff;
                    }
                    self.crashes.push_back(now);
                    while self
                        .crashes
                        .front()
                        .is_some_and(|t| now.duration_since(*t) > policy.crash_loop_window)
                    {
                        self.crashes.pop_front();
                    }
                    tracing::warn!(target_name = %self.spec.name, "child ended: {error}");
                    if self.crashes.len() >= policy.crash_loop_crashes {
                        let message = format!(
                            "{error} ({} crashes within {}s; not restarting until asked)",
                            self.crashes.len(),
                            policy.crash_loop_window.as_secs()
                        );
                        self.publish(|s| {
                            s.state = TargetState::CrashLoop;
                            s.pid = None;
                            s.last_error = Some(message);
                        });
                        // Wait for someone to ask for a restart or a stop.
                        match self.control.recv().await {
                            Some(Control::Restart(done)) => {
                                self.crashes.clear();
                                backoff = policy.initial_backoff;
                                self.publish(|s| {
                                    s.restarts += 1;
                                    s.state = TargetState::Starting;
                                });
                                let _ = done.send(());
                                continue;
                            }
                            Some(Control::Stop(done)) => {
                                self.publish(|s| s.state = TargetState::Stopped);
                                let _ = done.send(());
                                return;
                            }
                            None => return,
                        }
                    }
                    self.publish(|s| {
                        s.state = TargetState::Starting;
                        s.pid = None;
                        s.last_error = Some(error);
                    });
                    let delay = backoff;
                    backoff = (backoff * 2).min(policy.max_backoff);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        control = self.control.recv() => match control {
                            Some(Control::Restart(done)) => { let _ = done.send(()); }
                            Some(Control::Stop(done)) => {
                                self.publish(|s| s.state = TargetState::Stopped);
                                let _ = done.send(());
                                return;
                            }
                            None => return,
                        }
                    }
                    self.publish(|s| s.restarts += 1);
                }
            }
        }
    }

    /// Spawns the child once, waits for readiness, then for its end or a control message.
    async fn run_once(&mut self) -> Ended {
        self.publish(|s| s.state = TargetState::Starting);
        let mut child = match self.spawn_child().await {
            Ok(child) => child,
            Err(error) => {
                return Ended::Crashed {
                    error: error.to_string(),
                    ran: Duration::ZERO,
                };
            }
        };
        let started = Instant::now();
        let pid = child.id();
        *self.current_pid.lock() = pid;
        self.publish(|s| s.pid = pid);

        // Readiness, raced against the child's exit and control messages.
        let ready = wait_http_ready(&self.readiness, self.spec.policy.ready_timeout);
        tokio::pin!(ready);
        let ended = tokio::select! {
            result = &mut ready => match result {
                Ok(()) => None,
                Err(error) => Some(Ended::Crashed { error: error.to_string(), ran: started.elapsed() }),
            },
            exit = child.wait() => Some(Ended::Crashed {
                error: describe_exit(exit, &self.spec.log_path),
                ran: started.elapsed(),
            }),
            control = self.control.recv() => Some(control_to_ended(control)),
        };
        let ended = match ended {
            Some(ended) => ended,
            None => {
                self.publish(|s| {
                    s.state = TargetState::Running;
                    s.last_error = None;
                });
                tracing::info!(target_name = %self.spec.name, pid = ?pid, "child running");
                tokio::select! {
                    exit = child.wait() => Ended::Crashed {
                        error: describe_exit(exit, &self.spec.log_path),
                        ran: started.elapsed(),
                    },
                    control = self.control.recv() => control_to_ended(control),
                }
            }
        };
        if !matches!(ended, Ended::Crashed { .. }) {
            terminate(&mut child, self.spec.stop_grace).await;
        }
        *self.current_pid.lock() = None;
        #[cfg(windows)]
        if let Some(pid) = pid {
            windows_job::release(pid);
        }
        ended
    }

    async fn spawn_child(&mut self) -> Result<Child, StartError> {
        let spec = &self.spec;
        let log_error = |source| StartError::Log {
            path: spec.log_path.clone(),
            source,
        };
        let log_std = open_log(&spec.log_path, &spec.command, &spec.args).map_err(log_error)?;
        let stderr = log_std.try_clone().map_err(log_error)?;

        let (args, env) = match &spec.internal_port {
            Some(cell) => {
                let port = pick_internal_port(cell.load(Ordering::Acquire))
                    .map_err(StartError::NoFreePort)?;
                cell.store(port, Ordering::Release);
                let substitute = |value: &String| msm_core::config::substitute_port(value, port);
                let args: Vec<String> = spec.args.iter().map(substitute).collect();
                let env: BTreeMap<String, String> = spec
                    .env
                    .iter()
                    .map(|(key, value)| (key.clone(), substitute(value)))
                    .collect();
                (args, env)
            }
            None => (spec.args.clone(), spec.env.clone()),
        };
        let mut command = program_command(&spec.command, &args).map_err(StartError::Windows)?;
        command
            .envs(&env)
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        match &self.io {
            ChildIo::Logged => {
                command.stdin(Stdio::null()).stdout(Stdio::from(log_std));
            }
            ChildIo::Piped(_) => {
                command.stdin(Stdio::piped()).stdout(Stdio::piped());
            }
        }
        #[cfg(unix)]
        {
            command.process_group(0);
            #[cfg(target_os = "linux")]
            // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
            unsafe {
                let host_pid = std::process::id();
                command.pre_exec(move || {
                    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
                    // The host died between fork and prctl: do not outlive it.
                    if nix::unistd::getppid().as_raw() as u32 != host_pid {
                        return Err(std::io::Error::other("host exited"));
                    }
                    Ok(())
                });
            }
        }
        let mut child = command.spawn().map_err(|source| StartError::Spawn {
            command: spec.command.clone(),
            source,
        })?;
        #[cfg(windows)]
        if let Some(pid) = child.id()
            && let Err(e) = windows_job::adopt(pid)
        {
            let _ = child.start_kill();
            return Err(StartError::Windows(e));
        }
        self.spawns += 1;
        if let ChildIo::Piped(sender) = &self.io
            && let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take())
        {
            // Both are piped just above, so both are there.
            let _ = sender.send(ChildPipes {
                generation: self.spawns,
                pid: child.id(),
                stdin,
                stdout,
            });
        }
        Ok(child)
    }
}

/// A free loopback port for a `{port}` child: `previous` while nobody holds it, else a new one.
/// (Another process may still take it before the child binds; the child then dies and the
/// restart picks another.)
pub fn pick_internal_port(previous: u16) -> std::io::Result<u16> {
    if previous != 0 && std::net::TcpListener::bind(("127.0.0.1", previous)).is_ok() {
        return Ok(previous);
    }
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn control_to_ended(control: Option<Control>) -> Ended {
    match control {
        Some(Control::Restart(done)) => Ended::Restart(done),
        Some(Control::Stop(done)) => Ended::Stop(done),
        None => Ended::Dropped,
    }
}

/// Opens the log for appending and writes a line marking this spawn.
fn open_log(path: &Path, command: &str, args: &[String]) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(
        file,
        "--- {} starting `{command}` {args:?} ---",
        crate::status::now_rfc3339()
    )?;
    Ok(file)
}

fn describe_exit(exit: std::io::Result<std::process::ExitStatus>, log: &Path) -> String {
    match exit {
        Ok(status) => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(signal) = status.signal() {
                    return format!("exited on signal {signal}; see {}", log.display());
                }
            }
            match status.code() {
                Some(code) => format!("exited with code {code}; see {}", log.display()),
                None => format!("exited; see {}", log.display()),
            }
        }
        Err(e) => format!("cannot wait for the child: {e}"),
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Signals the child's whole process group (it leads its own).
fn signal_group(pid: u32, signal: Signal) {
    #[cfg(unix)]
    {
        use nix::sys::signal::{Signal as S, killpg};
        let sig = match signal {
            Signal::Term => S::SIGTERM,
            Signal::Kill => S::SIGKILL,
        };
        let _ = killpg(nix::unistd::Pid::from_raw(pid as i32), sig);
    }
    #[cfg(windows)]
    match signal {
        Signal::Term => {
            windows_job::ctrl_break(pid);
        }
        Signal::Kill => {
            windows_job::terminate(pid);
        }
    }
}

/// `command args` as the OS starts it: on Windows resolved through PATH and PATHEXT, batch
/// files through `cmd.exe`, created suspended until it is in its job (`windows_job`).
fn program_command(command: &str, args: &[String]) -> Result<Command, String> {
    #[cfg(windows)]
    {
        windows_job::command(command, args)
    }
    #[cfg(not(windows))]
    {
        let mut cmd = Command::new(command);
        cmd.args(args);
        Ok(cmd)
    }
}

/// SIGTERM to the group, SIGKILL after `grace` if the child is still there.
async fn terminate(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        return;
    };
    signal_group(pid, Signal::Term);
    // Without a shared console no Ctrl-Break arrives, so there is nothing to wait for.
    #[cfg(windows)]
    if !windows_job::ctrl_break_possible() {
        signal_group(pid, Signal::Kill);
        let _ = child.start_kill();
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, Signal::Kill);
        let _ = child.kill().await;
    }
    // Whatever else the child left in its group.
    signal_group(pid, Signal::Kill);
}

/// Waits until an HTTP child answers MCP on its port (or returns at once for `Spawned`).
async fn wait_http_ready(readiness: &Readiness, timeout: Duration) -> Result<(), StartError> {
    let (fixed_port, internal_port, transport) = match readiness {
        Readiness::Spawned => return Ok(()),
        Readiness::Http { port, transport } => (*port, None, *transport),
        Readiness::HttpInternal { port, transport } => (0, Some(port), *transport),
    };
    let port_now = || internal_port.map_or(fixed_port, |cell| cell.load(Ordering::Acquire));
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .no_proxy()
        .build()
    {
        Ok(client) => client,
        Err(e) => return Err(StartError::HttpClient(e)),
    };
    let deadline = Instant::now() + timeout;
    let mut last = ProbeError::NoAnswerYet;
    let mut delay = Duration::from_millis(50);
    while Instant::now() < deadline {
        match probe_mcp(&client, port_now(), transport).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    Err(StartError::NotAnswering {
        port: port_now(),
        secs: timeout.as_secs(),
        last,
    })
}

/// One readiness probe: does MCP answer on the port?
pub async fn probe_mcp(
    client: &reqwest::Client,
    port: u16,
    transport: Transport,
) -> Result<(), ProbeError> {
    if transport == Transport::Sse {
        let url = format!("http://127.0.0.1:{port}/sse");
        let response = client
            .get(&url)
            .header("accept", "text/event-stream")
            .send()
            .await?;
        let event_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        return if response.status().is_success() && event_stream {
            Ok(())
        } else {
            Err(ProbeError::Status {
                request: "GET /sse",
                status: response.status(),
            })
        };
    }
    let url = format!("http://127.0.0.1:{port}/mcp");
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "mcp-session-manager-readiness", "version": msm_core::VERSION}
        }
    });
    let response = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .json(&body)
        .send()
        .await?;
    let status = response.status();
    let session = response
        .headers()
        .get(msm_core::headers::SESSION_ID)
        .cloned();
    drop(response);
    if let Some(session) = session {
        // Do not leave the probe's session behind.
        let _ = client
            .delete(&url)
            .header(msm_core::headers::SESSION_ID, session)
            .send()
            .await;
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(ProbeError::Status {
            request: "POST /mcp initialize",
            status,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
