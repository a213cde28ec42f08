//! The tray app shell: takes over or starts this user's host, shows the tray menu (or, where
//! no tray can be seen, the dashboard window), follows the host's events to keep the menu
//! true, and stops the host cleanly on Quit. The host runs in this process (`msm_host`); the
//! logic lives in the libraries and the manager API, this module only wires them to the GUI.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tauri::{
    AppHandle, Builder, Context, Manager, RunEvent, Runtime, WebviewUrl, WebviewWindowBuilder,
    WindowEvent,
};
use tauri_plugin_autostart::{MacosLauncher, ManagerExt as _};

use msm_core::{Config, StateDir, Token};

use msm_host::HostHandle;

use crate::host_runner::{
    host_ports, start_host as start_in_process_host, take_over_headless_host,
};
use crate::manager_client::ManagerClient;
use crate::status_notifier::{TrayVisibility, tray_visibility};
use crate::tray;
use crate::tray_model::{HostSnapshot, MenuAction, TargetAction, notification_for};
use msm_host::api_types::Status;

/// The label of the dashboard window.
pub const DASHBOARD_WINDOW: &str = "dashboard";

/// The menu is also refreshed this often without an event (session counts, remote probes).
const IDLE_REFRESH: Duration = Duration::from_secs(5);

/// Everything the shell keeps between events; managed as Tauri state.
pub struct Shell {
    state_dir: StateDir,
    config: Config,
    client: ManagerClient,
    host: Mutex<Option<HostHandle>>,
    snapshot: Mutex<HostSnapshot>,
    quitting: AtomicBool,
}

impl Shell {
    /// The shell for this state dir; the host is started later, in `setup`.
    pub fn new(state_dir: StateDir, config: Config, token: &Token) -> Shell {
        let client = ManagerClient::new(config.manager_port, token.as_str());
        Shell {
            state_dir,
            config,
            client,
            host: Mutex::new(None),
            snapshot: Mutex::new(HostSnapshot::Starting),
            quitting: AtomicBool::new(false),
        }
    }
}

/// `mcp-session-manager` with no arguments.
pub fn run() -> ExitCode {
    match try_run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mcp-session-manager: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_run() -> anyhow::Result<ExitCode> {
    let state_dir = StateDir::from_env()?;
    state_dir.ensure()?;
    // The host runs in this process: its logs go where the headless host's go.
    let _log_guards = msm_core::logging::init_host(state_dir.root(), true)?;
    let config_path = state_dir.config_path();
    let config = match Config::load_or_init(&config_path) {
        Ok(config) => config,
        Err(err) => {
            // Still start: the host refuses the file again and the tray menu shows why,
            // which a user who launched the app from a menu can see (stderr they cannot).
            tracing::error!("{err}");
            Config::parse(&config_path, "")?
        }
    };
    let token = Token::load_or_create(&state_dir)?;
    let shell = Shell::new(state_dir, config, &token);
    let code = run_app(tauri::Builder::default(), tauri::generate_context!(), shell)?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Builds and runs the app on any runtime (tests can pass a mock builder); returns the exit code.
pub fn run_app<R: Runtime>(
    builder: Builder<R>,
    context: Context<R>,
    shell: Shell,
) -> tauri::Result<i32> {
    let app = builder
        // First, so that a second instance exits before it touches anything.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            tracing::info!("another instance was started: showing the dashboard");
            open_dashboard(app, None);
        }))
        .plugin(tauri_plugin_autostart::init(
            MacosLauncher::LaunchAgent,
            None,
        ))
        .manage(Arc::new(shell))
        .setup(|app| {
            setup(app.handle());
            Ok(())
        })
        .build(context)?;
    Ok(app.run_return(on_run_event))
}

fn shell<R: Runtime>(app: &AppHandle<R>) -> Arc<Shell> {
    app.state::<Arc<Shell>>().inner().clone()
}

fn setup<R: Runtime>(app: &AppHandle<R>) {
    let shell = shell(app);
    let mut no_tray = match tray_visibility() {
        TrayVisibility::Visible => None,
        TrayVisibility::Invisible(reason) => {
            tracing::warn!(
                "the tray icon cannot be shown: {reason}; opening the dashboard window instead"
            );
            Some(format!("The tray icon cannot be shown: {reason}."))
        }
    };
    if let Err(err) = tray::create_tray(app, &HostSnapshot::Starting) {
        tracing::warn!(error = %err, "could not create the tray icon; opening the dashboard window instead");
        no_tray = Some(format!("The tray icon could not be created: {err}."));
    }
    #[cfg(unix)]
    spawn_signal_handler(app.clone());
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let host = start_host(&app, &shell).await;
        if let Some(reason) = no_tray {
            // The window is the whole app now: it says why, and offers Quit.
            open_dashboard_at(&app, Some(format!("no-tray={}", percent_encode(&reason))));
        }
        if let Some(host) = host {
            watch_host(app, shell, host).await;
        }
    });
}

/// Takes over from a headless host if one runs, then starts ours in this process.
async fn start_host<R: Runtime>(app: &AppHandle<R>, shell: &Shell) -> Option<HostHandle> {
    let ports = host_ports(&shell.config);
    if let Err(err) = take_over_headless_host(&shell.state_dir, &shell.client, &ports).await {
        tracing::error!("{err}");
        set_snapshot(app, shell, HostSnapshot::Unreachable(err.to_string()));
        return None;
    }
    match start_in_process_host(&shell.state_dir).await {
        Ok(host) => {
            tracing::info!(url = %host.manager_url(), "host running in the tray app");
            *shell.host.lock() = Some(host.clone());
            Some(host)
        }
        Err(err) => {
            tracing::error!("could not start the host: {err}");
            set_snapshot(app, shell, HostSnapshot::Unreachable(err.to_string()));
            None
        }
    }
}

/// Keeps the menu true: refreshes it on each host event (debounced) and every few seconds;
/// quits when someone asks the host to stop (`POST /shutdown`, e.g. a hand-over).
async fn watch_host<R: Runtime>(app: AppHandle<R>, shell: Arc<Shell>, host: HostHandle) {
    let mut events = host.events();
    loop {
        refresh_menu(&app, &shell, &host);
        tokio::select! {
            received = events.recv() => match received {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // A burst of events costs one rebuild.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while events.try_recv().is_ok() {}
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tokio::time::sleep(IDLE_REFRESH) => {}
            _ = host.shutdown_requested() => {
                tracing::info!("the host was asked to stop: quitting");
                quit(&app);
                return;
            }
        }
        if shell.quitting.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn refresh_menu<R: Runtime>(app: &AppHandle<R>, shell: &Shell, host: &HostHandle) {
    let status = Status::from(&host.status());
    if let HostSnapshot::Running(before) = &*shell.snapshot.lock() {
        for (title, body) in notification_for(before, &status) {
            notify(app, &title, &body);
        }
    }
    set_snapshot(app, shell, HostSnapshot::Running(status));
}

/// A desktop notification about a target (crash loop, recovery). The notification plugin is
/// not in this build, so it goes to the log, which the dashboard and `logs` show.
fn notify<R: Runtime>(_app: &AppHandle<R>, title: &str, body: &str) {
    tracing::warn!(title, body, "notification");
}

fn set_snapshot<R: Runtime>(app: &AppHandle<R>, shell: &Shell, snapshot: HostSnapshot) {
    let mut current = shell.snapshot.lock();
    if *current == snapshot {
        return;
    }
    *current = snapshot.clone();
    drop(current);
    if let Err(err) = tray::update_tray(app, &snapshot) {
        tracing::warn!(error = %err, "could not update the tray menu");
    }
}

/// A click in the tray menu; each action delegates to one function.
pub fn on_menu_action<R: Runtime>(app: &AppHandle<R>, action: MenuAction) {
    match action {
        MenuAction::Target { name, action } => spawn_target_action(app, name, action),
        MenuAction::StartAll => spawn_all(app, TargetAction::Start),
        MenuAction::StopAll => spawn_all(app, TargetAction::Stop),
        MenuAction::OpenLog { name } => {
            open_dashboard_at(app, Some(format!("log={}", percent_encode(&name))))
        }
        // The dashboard's dialog shows the diff first; nothing is written without a look.
        MenuAction::ConfigureClaudeCode => {
            open_dashboard_at(app, Some("configure-claude".to_owned()))
        }
        MenuAction::AdoptServers => open_dashboard_at(app, Some("servers-adopt".to_owned())),
        MenuAction::OpenDashboard => open_dashboard(app, None),
        MenuAction::ToggleAutostart => toggle_autostart(app),
        MenuAction::Quit => quit(app),
    }
}

fn spawn_target_action<R: Runtime>(app: &AppHandle<R>, name: String, action: TargetAction) {
    let (app, shell) = (app.clone(), shell(app));
    let Some(host) = shell.host.lock().clone() else {
        return;
    };
    tauri::async_runtime::spawn(async move {
        let result = match action {
            TargetAction::Start => host.start_target(&name).await,
            TargetAction::Stop => host.stop_target(&name).await,
            TargetAction::Restart => host.restart_target(&name).await,
        };
        if let Err(err) = result {
            tracing::warn!("{} {name}: {err}", action.verb());
            open_dashboard(
                &app,
                Some(&format!("Could not {} {name}: {err}", action.verb())),
            );
        }
        refresh_menu(&app, &shell, &host);
    });
}

/// Start all / Stop all: every target this host runs (remote ones are not ours to start),
/// one after the other, so that a failure names its target.
fn spawn_all<R: Runtime>(app: &AppHandle<R>, action: TargetAction) {
    let (app, shell) = (app.clone(), shell(app));
    let Some(host) = shell.host.lock().clone() else {
        return;
    };
    tauri::async_runtime::spawn(async move {
        let status = Status::from(&host.status());
        let mut failures = Vec::new();
        for target in status.targets.iter().filter(|t| !t.is_reached_only()) {
            let result = match action {
                TargetAction::Stop if target.state != msm_host::api_types::TargetState::Stopped => {
                    host.stop_target(&target.name).await
                }
                TargetAction::Start if !target.state.is_up() => {
                    host.start_target(&target.name).await
                }
                _ => Ok(()),
            };
            if let Err(err) = result {
                failures.push(format!("{}: {err}", target.name));
            }
        }
        if !failures.is_empty() {
            let notice = format!(
                "Could not {} every server: {}",
                action.verb(),
                failures.join("; ")
            );
            tracing::warn!("{notice}");
            open_dashboard(&app, Some(&notice));
        }
        refresh_menu(&app, &shell, &host);
    });
}

fn toggle_autostart<R: Runtime>(app: &AppHandle<R>) {
    let autolaunch = app.autolaunch();
    let result = if tray::autostart_enabled(app) {
        autolaunch.disable()
    } else {
        ensure_autostart_dir();
        autolaunch.enable()
    };
    if let Err(err) = result {
        tracing::warn!(error = %err, "could not change start at login");
        open_dashboard(
            app,
            Some(&format!("Could not change “Start at login”: {err}")),
        );
    }
    let snapshot = shell(app).snapshot.lock().clone();
    if let Err(err) = tray::update_tray(app, &snapshot) {
        tracing::warn!(error = %err, "could not update the tray menu");
    }
}

/// auto-launch writes `~/.config/autostart/NAME.desktop` but creates only the last directory
/// level, so a home without `~/.config` (a fresh account) fails; create the whole path first.
fn ensure_autostart_dir() {
    #[cfg(target_os = "linux")]
    if let Some(home) = msm_core::state_dir::home_dir() {
        let _ = std::fs::create_dir_all(home.join(".config").join("autostart"));
    }
}

/// Shows (creating if needed) the window with the manager's web UI; `notice` is shown there
/// as a message (passed in the URL fragment, which never leaves the window).
pub fn open_dashboard<R: Runtime>(app: &AppHandle<R>, notice: Option<&str>) {
    open_dashboard_at(app, notice.map(|n| format!("notice={}", percent_encode(n))));
}

/// Shows the dashboard window at `#fragment`: `notice=TEXT`, `log=NAME` (a target's log),
/// `configure-claude` (the config dialog, diff first), `servers-adopt`, `no-tray=REASON`.
///
/// The window loads `/?token=<token>`: the manager answers with a redirect to `/` that sets an
/// HttpOnly cookie holding the token (the webview keeps it, as any browser does, and carries
/// the fragment over the redirect); the page then works from that cookie alone.
pub fn open_dashboard_at<R: Runtime>(app: &AppHandle<R>, fragment: Option<String>) {
    let shell = shell(app);
    let mut url = shell.client.dashboard_url();
    if let Some(fragment) = &fragment {
        url.push('#');
        url.push_str(fragment);
    }
    let Ok(url) = url.parse::<tauri::Url>() else {
        return;
    };
    if let Some(window) = app.get_webview_window(DASHBOARD_WINDOW) {
        if fragment.is_some() {
            let _ = window.navigate(url);
        }
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        return;
    }
    let placement = app
        .primary_monitor()
        .ok()
        .flatten()
        .map(|m| {
            let area = m.work_area();
            fit_in_work_area(
                (
                    area.position.x,
                    area.position.y,
                    area.size.width,
                    area.size.height,
                ),
                m.scale_factor(),
            )
        })
        .unwrap_or(Placement {
            x: None,
            y: None,
            width: 1200.0,
            height: 820.0,
        });
    let mut builder = WebviewWindowBuilder::new(app, DASHBOARD_WINDOW, WebviewUrl::External(url))
        .title("MCP Session Manager")
        .inner_size(placement.width, placement.height)
        .min_inner_size(
            640.0_f64.min(placement.width),
            480.0_f64.min(placement.height),
        );
    if let (Some(x), Some(y)) = (placement.x, placement.y) {
        builder = builder.position(x, y);
    }
    match builder.build() {
        Ok(window) => {
            let hide_target = window.clone();
            // Closing the window hides it: the app keeps hosting the daemons from the tray.
            window.on_window_event(move |event| {
                if let WindowEvent::CloseRequested { api, .. } = event {
                    api.prevent_close();
                    let _ = hide_target.hide();
                }
            });
        }
        Err(err) => tracing::warn!(error = %err, "could not open the dashboard window"),
    }
}

/// Where the dashboard window goes, in logical pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Placement {
    x: Option<f64>,
    y: Option<f64>,
    width: f64,
    height: f64,
}

/// Room kept for the window manager's title bar and borders, which the inner size excludes.
const DECORATION_ALLOWANCE: f64 = 48.0;

/// 1200 x 820 (or less), centred in the monitor's work area (the screen without panels), so
/// that the whole window, title bar included, is visible. `area` is physical (x, y, w, h).
fn fit_in_work_area(area: (i32, i32, u32, u32), scale: f64) -> Placement {
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let (x, y) = (area.0 as f64 / scale, area.1 as f64 / scale);
    let (w, h) = (area.2 as f64 / scale, area.3 as f64 / scale);
    let width = 1200.0_f64
        .min(w - 2.0 * DECORATION_ALLOWANCE / 3.0)
        .max(320.0);
    let height = 820.0_f64.min(h - DECORATION_ALLOWANCE).max(240.0);
    Placement {
        x: Some((x + (w - width) / 2.0).max(x)),
        y: Some(
            (y + DECORATION_ALLOWANCE + (h - DECORATION_ALLOWANCE - height) / 2.0)
                .max(y + DECORATION_ALLOWANCE),
        ),
        width,
        height,
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a URL fragment.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Stops the host cleanly, then ends the app. Safe to call twice.
pub fn quit<R: Runtime>(app: &AppHandle<R>) {
    let shell = shell(app);
    if shell.quitting.swap(true, Ordering::SeqCst) {
        return;
    }
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let host = shell.host.lock().take();
        if let Some(host) = host {
            host.shutdown().await;
        }
        app.exit(0);
    });
}

fn on_run_event<R: Runtime>(app: &AppHandle<R>, event: RunEvent) {
    if let RunEvent::ExitRequested { code, api, .. } = event {
        // The last window closing is not a reason to stop hosting; Quit (code set) is.
        if code.is_none() && !shell(app).quitting.load(Ordering::SeqCst) {
            api.prevent_exit();
        }
    }
}

/// SIGTERM/SIGINT/SIGHUP stop the tray app as Quit does, so that the host stops cleanly.
#[cfg(unix)]
fn spawn_signal_handler<R: Runtime>(app: AppHandle<R>) {
    use tokio::signal::unix::{SignalKind, signal};
    tauri::async_runtime::spawn(async move {
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {}
        }
        tracing::info!("signal received: stopping the host and quitting");
        quit(&app);
    });
}

#[cfg(test)]
mod tests {
    use super::{Placement, fit_in_work_area, percent_encode};

    #[test]
    fn the_window_fits_inside_the_work_area() {
        // A 1280x800 screen with a 30 px panel at the top.
        let p = fit_in_work_area((0, 30, 1280, 770), 1.0);
        let (x, y) = (p.x.unwrap(), p.y.unwrap());
        assert!(x >= 0.0 && x + p.width <= 1280.0, "{p:?}");
        assert!(y - 48.0 >= 30.0 && y + p.height <= 800.0, "{p:?}");
        // A large HiDPI screen: the default size, centred.
        let p = fit_in_work_area((0, 0, 3840, 2160), 2.0);
        assert_eq!((p.width, p.height), (1200.0, 820.0));
        assert_eq!(p.x, Some((1920.0 - 1200.0) / 2.0));
        assert!(matches!(p, Placement { y: Some(y), .. } if y >= 48.0));
    }

    #[test]
    fn notices_are_percent_encoded_for_the_url_fragment() {
        let check = |input: &str, expected: &str| assert_eq!(percent_encode(input), expected);
        check("plain-text_1.0~", "plain-text_1.0~");
        check("a b#c", "a%20b%23c");
        check("“ok”", "%E2%80%9Cok%E2%80%9D");
    }
}
