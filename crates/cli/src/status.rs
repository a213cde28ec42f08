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
    print!("{}", render_status(&body, &manager.dashboard_url()));
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
        let state = body["state"].as_str().unwrap_or("?");
        let url = body["url"].as_str().unwrap_or("");
        println!("{name}: {state} {url}");
        return Ok(ExitCode::SUCCESS);
    }
    let error = body["error"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| body.to_string());
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
fn render_status(body: &Value, dashboard_url: &str) -> String {
    let mut out = String::new();
    let uptime = body["uptime_secs"].as_u64().unwrap_or(0);
    out.push_str(&format!(
        "host {} (pid {}), manager on 127.0.0.1:{}, up {}\nDashboard: {dashboard_url}\n\n",
        body["version"].as_str().unwrap_or("?"),
        body["pid"],
        body["manager_port"],
        humane_duration(uptime)
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
    let empty = Vec::new();
    let targets = body["targets"].as_array().unwrap_or(&empty);
    for t in targets {
        let text = |v: &Value| match v {
            Value::Null => "-".to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut state = text(&t["state"]);
        if state == "idle" {
            state.push_str(" (starts on demand)");
        }
        if t["enabled"] == Value::Bool(false) {
            state.push_str(" (disabled)");
        }
        rows.push([
            text(&t["name"]),
            state,
            text(&t["port"]),
            text(&t["pid"]),
            text(&t["sessions"]),
            text(&t["restarts"]),
            text(&t["transport"]),
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
    for t in targets {
        if let Some(error) = t["last_error"].as_str() {
            out.push_str(&format!(
                "\n{}: {}",
                t["name"].as_str().unwrap_or("?"),
                error
            ));
        }
    }
    if targets.iter().any(|t| t["last_error"].is_string()) {
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
        let body = serde_json::json!({
            "version": "0.1.0", "pid": 7, "manager_port": 3199, "uptime_secs": 65,
            "targets": [
                {"name": "memory", "state": "running", "port": 3100, "pid": 7, "sessions": 2,
                 "restarts": 0, "transport": "streamable-http", "enabled": true, "last_error": null},
                {"name": "everything", "state": "crash-loop", "port": 3103, "pid": null,
                 "sessions": 0, "restarts": 5, "transport": "stdio", "enabled": true,
                 "last_error": "exited with status 1"}
            ]
        });
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
