//! `status`, `start|stop|restart NAME` and `logs NAME`: clients of the manager API (and of the
//! log files in the state dir).
//!
//! Exit codes scripts can rely on: 0 done, 1 an error (unknown target, a target that failed to
//! start, a bad answer), 3 the manager is not running (the message says how to start it).

use std::io::{Read, Seek, SeekFrom, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use msm_core::{Config, LockFile, StateDir, Token};
use msm_host::api_types;
use serde_json::Value;

/// The manager is not running.
const EXIT_NOT_RUNNING: u8 = 3;

pub fn status(args: crate::StatusArgs) -> anyhow::Result<ExitCode> {
    let manager = match Manager::find()? {
        Ok(manager) => manager,
        Err(not_running) => return Ok(not_running.report()),
    };
    let body = match manager.call(reqwest::Method::GET, "/status")? {
        Ok((_, body)) => body,
        Err(not_running) => return Ok(not_running.report()),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let status: api_types::Status = serde_json::from_value(body)
        .context("the manager's /status answer does not fit this version's API types")?;
    print!("{}", render_status(&status, &manager.dashboard_url()));
    Ok(ExitCode::SUCCESS)
}

pub fn daemon_action(name: &str, action: &str) -> anyhow::Result<ExitCode> {
    let manager = match Manager::find()? {
        Ok(manager) => manager,
        Err(not_running) => return Ok(not_running.report()),
    };
    let path = format!("/daemons/{name}/{action}");
    let (status, body) = match manager.call(reqwest::Method::POST, &path)? {
        Ok(answer) => answer,
        Err(not_running) => return Ok(not_running.report()),
    };
    if status.is_success() {
        let answer: api_types::DaemonAction = serde_json::from_value(body)
            .context("the manager's answer does not fit this version's API types")?;
        println!("{name}: {} {}", answer.state.as_str(), answer.url);
        return Ok(ExitCode::SUCCESS);
    }
    let error = serde_json::from_value::<api_types::ErrorBody>(body.clone())
        .map(|e| e.error)
        .unwrap_or_else(|_| body.to_string());
    eprintln!("mcp-session-manager: {action} {name}: {error}");
    Ok(ExitCode::FAILURE)
}

pub fn logs(args: crate::LogsArgs) -> anyhow::Result<ExitCode> {
    let state = StateDir::from_env()?;
    if !msm_core::config::is_valid_target_name(&args.name) && args.name != msm_core::MANAGER_NAME {
        bail!("`{}` is not a target name", args.name);
    }
    let path = state.log_path(&args.name);
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "no log for `{}` at {} (has it ever run?)",
                args.name,
                path.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut stdout = std::io::stdout().lock();
    let mut buffer = Vec::new();
    file.read_to_end(&mut buffer)?;
    if stdout.write_all(&buffer).is_err() {
        // A closed pipe (`| head`) means the reader has had enough.
        return Ok(ExitCode::SUCCESS);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    let _ = stdout.flush();
    let mut position = buffer.len() as u64;
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let length = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if length < position {
            // Truncated or replaced: start again from the top.
            file = std::fs::File::open(&path)?;
            position = 0;
        }
        if length > position {
            file.seek(SeekFrom::Start(position))?;
            buffer.clear();
            file.read_to_end(&mut buffer)?;
            position += buffer.len() as u64;
            if stdout
                .write_all(&buffer)
                .and_then(|_| stdout.flush())
                .is_err()
            {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// The host line, the dashboard's address, a table of the targets, then each target's last
/// error.
fn render_status(status: &api_types::Status, dashboard_url: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "host {} (pid {}), manager on 127.0.0.1:{}, up {}\nDashboard: {dashboard_url}\n\n",
        status.version,
        status.pid,
        status.manager_port,
        humane_duration(status.uptime_secs)
    ));
    let header = [
        "TARGET",
        "STATE",
        "PORT",
        "PID",
        "SESSIONS",
        "RESTARTS",
        "TRANSPORT",
    ];
    let mut rows: Vec<[String; 7]> = vec![header.map(str::to_owned)];
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    for t in &status.targets {
        let mut state = t.state.as_str().to_owned();
        if state == "idle" {
            state.push_str(" (starts on demand)");
        }
        if !t.enabled {
            state.push_str(" (disabled)");
        }
        rows.push([
            t.name.clone(),
            state,
            or_dash(t.port.map(|p| p.to_string())),
            or_dash(t.pid.map(|p| p.to_string())),
            t.sessions.to_string(),
            t.restarts.to_string(),
            t.transport.as_str().to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for t in &status.targets {
        if let Some(error) = &t.last_error {
            out.push_str(&format!("\n{}: {}", t.name, error));
        }
    }
    if status.targets.iter().any(|t| t.last_error.is_some()) {
        out.push('\n');
    }
    out
}

fn humane_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// Where the manager should be, and the token to talk to it.
pub(crate) struct Manager {
    port: u16,
    token: Token,
}

/// The manager does not answer; `report` says how to start it.
pub(crate) struct NotRunning {
    port: u16,
    detail: String,
}

impl NotRunning {
    fn report(self) -> ExitCode {
        eprintln!(
            "mcp-session-manager: the manager is not running on 127.0.0.1:{} ({}).\nStart it with `mcp-session-manager daemon` (headless) or by opening the tray app.",
            self.port, self.detail
        );
        ExitCode::from(EXIT_NOT_RUNNING)
    }
}

impl Manager {
    /// The web UI's one-click address: `?token=` opens it (the manager swaps the token for a
    /// cookie and takes it out of the address bar). Whoever can run `status` as this user can
    /// read the token file anyway.
    fn dashboard_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/?token={}",
            self.port,
            self.token.as_str()
        )
    }

    /// The port from a live `manager.lock`, else from config.toml.
    pub(crate) fn find() -> anyhow::Result<Result<Manager, NotRunning>> {
        let state = StateDir::from_env()?;
        let port = match LockFile::read_live(&state.lock_path(msm_core::MANAGER_NAME)) {
            Some(owner) => owner.port,
            None => Config::load(&state.config_path())?.manager_port,
        };
        Ok(match Token::load(&state) {
            Ok(token) => Ok(Manager { port, token }),
            Err(_) => Err(NotRunning {
                port,
                detail: format!("no token in {}", state.root().display()),
            }),
        })
    }

    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> anyhow::Result<Result<(reqwest::StatusCode, Value), NotRunning>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()?;
            let response = match client
                .request(method, &url)
                .bearer_auth(self.token.as_str())
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) if e.is_connect() => {
                    return Ok(Err(NotRunning {
                        port: self.port,
                        detail: "connection refused".into(),
                    }));
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("calling {url}"))),
            };
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                bail!(
                    "the process on 127.0.0.1:{} refused our token: is it another user's host?",
                    self.port
                );
            }
            let body = response.json::<Value>().await.unwrap_or(Value::Null);
            Ok(Ok((status, body)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_lists_targets_and_errors() {
        // The documented example of `/status` (docs/manager-api.json), not a hand-made shape.
        let mut body: api_types::Status = api_types::route_examples()
            .into_iter()
            .find(|r| r.path == "/status")
            .map(|r| serde_json::from_value(r.answer).unwrap())
            .unwrap();
        body.pid = 7;
        body.uptime_secs = 65;
        body.targets.truncate(2);
        body.targets[0].pid = Some(7);
        body.targets[0].sessions = 2;
        body.targets[1].last_error = Some("exited with status 1".into());
        let table = render_status(&body, "http://127.0.0.1:3199/?token=ab12");
        assert!(table.starts_with("host 0.1.0 (pid 7), manager on 127.0.0.1:3199, up 1m5s\n"));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[1], "Dashboard: http://127.0.0.1:3199/?token=ab12");
        assert_eq!(lines[2], "");
        let lines = &lines[1..];
        assert_eq!(
            lines[2],
            "TARGET      STATE       PORT  PID  SESSIONS  RESTARTS  TRANSPORT"
        );
        assert_eq!(
            lines[3],
            "memory      running     3100  7    2         0         streamable-http"
        );
        assert!(lines[4].starts_with("everything  crash-loop  3103  -    0         5"));
        assert!(table.contains("everything: exited with status 1"));
    }
}
