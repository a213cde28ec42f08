//! The tray menu as plain data: a pure function of the host's state (parsed from the manager
//! API's `/status`), so that what the menu shows is unit-tested without a display.

use serde_json::Value;

/// What the tray knows about the host: filled from `GET /status`, or `Unreachable`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HostSnapshot {
    /// The host is being started or taken over; nothing to show yet.
    #[default]
    Starting,
    /// The manager API does not answer (the reason is shown in the menu).
    Unreachable(String),
    Running(HostStatus),
}

/// The parts of `/status` the menu shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostStatus {
    pub targets: Vec<TargetSummary>,
}

/// One target's line in the menu.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSummary {
    pub name: String,
    /// `running`, `starting`, `stopped`, `failed`, `crash-loop`, ... as the host says it.
    pub state: String,
    pub port: Option<u64>,
    pub sessions: u64,
    /// A server someone else runs (`url = ...`): reached, never started or stopped here.
    pub remote: bool,
}

impl TargetSummary {
    fn is_up(&self) -> bool {
        matches!(
            self.state.as_str(),
            "running" | "starting" | "restarting" | "reachable" | "backoff"
        )
    }
}

impl HostStatus {
    /// Reads `/status` defensively: `targets` as an array or a name-keyed map; unknown or
    /// missing fields become defaults rather than errors, so a newer host never breaks the tray.
    pub fn from_status_json(status: &Value) -> HostStatus {
        let targets = match status.get("targets").or_else(|| status.get("daemons")) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|t| target_from_json(None, t))
                .collect(),
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(name, t)| target_from_json(Some(name), t))
                .collect(),
            _ => Vec::new(),
        };
        HostStatus { targets }
    }

    /// Targets in the `running` state (the status line's first number).
    pub fn running_count(&self) -> usize {
        self.targets.iter().filter(|t| t.state == "running").count()
    }

    /// Sessions across every target.
    pub fn session_count(&self) -> u64 {
        self.targets.iter().map(|t| t.sessions).sum()
    }
}

fn target_from_json(name: Option<&String>, target: &Value) -> Option<TargetSummary> {
    let name = name.cloned().or_else(|| {
        target
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })?;
    let state = match target.get("state").or_else(|| target.get("status")) {
        Some(Value::String(s)) => s.to_lowercase().replace(['_', ' '], "-"),
        Some(Value::Object(o)) => o
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_lowercase(),
        _ => "unknown".to_owned(),
    };
    let sessions = match target.get("sessions") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(Value::Array(a)) => a.len() as u64,
        _ => 0,
    };
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    Some(TargetSummary {
        name,
        state,
        port: target.get("port").and_then(Value::as_u64),
        sessions,
        remote: kind == "remote" || kind == "url",
    })
}

/// What a menu item does when clicked; its id is `MenuAction::id()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    Target { name: String, action: TargetAction },
    ConfigureClaudeCode,
    OpenDashboard,
    ToggleAutostart,
    Quit,
}

/// What a target's submenu can do to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetAction {
    Start,
    Stop,
    Restart,
}

impl TargetAction {
    /// The manager API's verb: `POST /daemons/{name}/{verb}`.
    pub fn verb(self) -> &'static str {
        match self {
            TargetAction::Start => "start",
            TargetAction::Stop => "stop",
            TargetAction::Restart => "restart",
        }
    }

    fn label(self) -> &'static str {
        match self {
            TargetAction::Start => "Start",
            TargetAction::Stop => "Stop",
            TargetAction::Restart => "Restart",
        }
    }

    fn from_verb(verb: &str) -> Option<TargetAction> {
        [
            TargetAction::Start,
            TargetAction::Stop,
            TargetAction::Restart,
        ]
        .into_iter()
        .find(|a| a.verb() == verb)
    }
}

impl MenuAction {
    /// The menu item id; `parse` reads it back. Target names cannot hold `:` (config rule).
    pub fn id(&self) -> String {
        match self {
            MenuAction::Target { name, action } => format!("target:{}:{name}", action.verb()),
            MenuAction::ConfigureClaudeCode => "configure-claude-code".into(),
            MenuAction::OpenDashboard => "open-dashboard".into(),
            MenuAction::ToggleAutostart => "autostart".into(),
            MenuAction::Quit => "quit".into(),
        }
    }

    pub fn parse(id: &str) -> Option<MenuAction> {
        if let Some(rest) = id.strip_prefix("target:") {
            let (verb, name) = rest.split_once(':')?;
            return Some(MenuAction::Target {
                name: name.to_owned(),
                action: TargetAction::from_verb(verb)?,
            });
        }
        match id {
            "configure-claude-code" => Some(MenuAction::ConfigureClaudeCode),
            "open-dashboard" => Some(MenuAction::OpenDashboard),
            "autostart" => Some(MenuAction::ToggleAutostart),
            "quit" => Some(MenuAction::Quit),
            _ => None,
        }
    }
}

/// One entry of the tray menu, independent of any GUI toolkit.
#[derive(Debug, Clone, PartialEq)]
pub enum MenuEntry {
    /// A line of text that cannot be clicked.
    Info(String),
    Item {
        action: MenuAction,
        label: String,
        enabled: bool,
    },
    Check {
        action: MenuAction,
        label: String,
        checked: bool,
    },
    Submenu {
        label: String,
        entries: Vec<MenuEntry>,
    },
    Separator,
}

/// The one-line summary used as the first menu line and the tray tooltip.
pub fn status_line(snapshot: &HostSnapshot) -> String {
    match snapshot {
        HostSnapshot::Starting => "MCP Session Manager: starting…".to_owned(),
        HostSnapshot::Unreachable(reason) => format!("Manager not reachable: {reason}"),
        HostSnapshot::Running(status) => {
            let sessions = status.session_count();
            format!(
                "{} of {} servers running · {} session{}",
                status.running_count(),
                status.targets.len(),
                sessions,
                if sessions == 1 { "" } else { "s" }
            )
        }
    }
}

/// Whether the tray icon should carry its warning dot: the host is unreachable, or a target
/// it manages has failed (a remote target that does not answer is shown in the menu only).
pub fn needs_attention(snapshot: &HostSnapshot) -> bool {
    match snapshot {
        HostSnapshot::Starting => false,
        HostSnapshot::Unreachable(_) => true,
        HostSnapshot::Running(status) => status
            .targets
            .iter()
            .any(|t| !t.remote && matches!(t.state.as_str(), "failed" | "crash-loop")),
    }
}

fn target_label(target: &TargetSummary) -> String {
    let mut label = format!("{}: {}", target.name, target.state);
    if let Some(port) = target.port {
        label.push_str(&format!(" · :{port}"));
    }
    if target.sessions > 0 {
        label.push_str(&format!(
            " · {} session{}",
            target.sessions,
            if target.sessions == 1 { "" } else { "s" }
        ));
    }
    label
}

fn target_entries(target: &TargetSummary) -> Vec<MenuEntry> {
    if target.remote {
        return vec![MenuEntry::Info(
            "Run elsewhere: not started or stopped here".into(),
        )];
    }
    let up = target.is_up();
    [
        (TargetAction::Start, !up),
        (TargetAction::Stop, target.state != "stopped"),
        (TargetAction::Restart, true),
    ]
    .into_iter()
    .map(|(action, enabled)| MenuEntry::Item {
        label: action.label().to_owned(),
        action: MenuAction::Target {
            name: target.name.clone(),
            action,
        },
        enabled,
    })
    .collect()
}

/// The whole tray menu for `snapshot`; `autostart` is the "Start at login" checkbox's state.
pub fn menu_model(snapshot: &HostSnapshot, autostart: bool) -> Vec<MenuEntry> {
    let mut entries = vec![MenuEntry::Info(status_line(snapshot)), MenuEntry::Separator];
    if let HostSnapshot::Running(status) = snapshot {
        entries.extend(status.targets.iter().map(|target| MenuEntry::Submenu {
            label: target_label(target),
            entries: target_entries(target),
        }));
        if !status.targets.is_empty() {
            entries.push(MenuEntry::Separator);
        }
    }
    let reachable = matches!(snapshot, HostSnapshot::Running(_));
    entries.extend([
        MenuEntry::Item {
            action: MenuAction::ConfigureClaudeCode,
            label: "Configure Claude Code".into(),
            enabled: reachable,
        },
        MenuEntry::Item {
            action: MenuAction::OpenDashboard,
            label: "Open dashboard".into(),
            enabled: true,
        },
        MenuEntry::Separator,
        MenuEntry::Check {
            action: MenuAction::ToggleAutostart,
            label: "Start at login".into(),
            checked: autostart,
        },
        MenuEntry::Separator,
        MenuEntry::Item {
            action: MenuAction::Quit,
            label: "Quit".into(),
            enabled: true,
        },
    ]);
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(name: &str, state: &str, sessions: u64) -> TargetSummary {
        TargetSummary {
            name: name.into(),
            state: state.into(),
            port: Some(3100),
            sessions,
            remote: false,
        }
    }

    fn enabled_actions(entries: &[MenuEntry]) -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| match e {
                MenuEntry::Item {
                    action,
                    enabled: true,
                    ..
                } => Some(action.id()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn status_json_is_read_from_an_array_or_a_map_with_missing_fields() {
        let check = |status: Value, expected: Vec<TargetSummary>| {
            assert_eq!(
                HostStatus::from_status_json(&status).targets,
                expected,
                "{status}"
            );
        };
        check(
            json!({"targets": [{"name": "memory", "state": "running", "port": 3100, "sessions": 2}]}),
            vec![target("memory", "running", 2)],
        );
        check(
            json!({"targets": {"memory": {"state": "Crash_Loop", "port": 3100, "sessions": [{}, {}, {}]}}}),
            vec![target("memory", "crash-loop", 3)],
        );
        check(
            json!({"targets": [{"name": "team", "kind": "remote", "state": "reachable"}, {"state": "running"}]}),
            vec![TargetSummary {
                name: "team".into(),
                state: "reachable".into(),
                port: None,
                sessions: 0,
                remote: true,
            }],
        );
        check(json!({"version": "0.1.0"}), vec![]);
    }

    #[test]
    fn status_line_counts_running_targets_and_sessions() {
        let check =
            |snapshot: HostSnapshot, expected: &str| assert_eq!(status_line(&snapshot), expected);
        check(HostSnapshot::Starting, "MCP Session Manager: starting…");
        check(
            HostSnapshot::Unreachable("connection refused".into()),
            "Manager not reachable: connection refused",
        );
        check(
            HostSnapshot::Running(HostStatus {
                targets: vec![target("memory", "running", 1), target("x", "stopped", 0)],
            }),
            "1 of 2 servers running · 1 session",
        );
        check(
            HostSnapshot::Running(HostStatus {
                targets: vec![target("memory", "running", 3)],
            }),
            "1 of 1 servers running · 3 sessions",
        );
    }

    #[test]
    fn the_icon_warns_about_failed_targets_and_a_missing_host() {
        let with = |targets: Vec<TargetSummary>| HostSnapshot::Running(HostStatus { targets });
        let mut remote_down = target("team", "failed", 0);
        remote_down.remote = true;
        let check = |snapshot: HostSnapshot, expected: bool| {
            assert_eq!(needs_attention(&snapshot), expected, "{snapshot:?}")
        };
        check(HostSnapshot::Starting, false);
        check(HostSnapshot::Unreachable("refused".into()), true);
        check(
            with(vec![
                target("memory", "running", 0),
                target("x", "stopped", 0),
            ]),
            false,
        );
        check(
            with(vec![
                target("memory", "running", 0),
                target("x", "crash-loop", 0),
            ]),
            true,
        );
        check(with(vec![target("x", "failed", 0)]), true);
        check(
            with(vec![target("memory", "running", 0), remote_down]),
            false,
        );
    }

    #[test]
    fn each_target_offers_the_actions_that_fit_its_state() {
        let check = |state: &str, expected: &[&str]| {
            let entries = target_entries(&target("memory", state, 0));
            let expected: Vec<String> = expected
                .iter()
                .map(|v| format!("target:{v}:memory"))
                .collect();
            assert_eq!(enabled_actions(&entries), expected, "state {state}");
        };
        check("running", &["stop", "restart"]);
        check("stopped", &["start", "restart"]);
        check("crash-loop", &["start", "stop", "restart"]);
        check("starting", &["stop", "restart"]);
    }

    #[test]
    fn remote_targets_have_no_actions() {
        let mut remote = target("team", "reachable", 0);
        remote.remote = true;
        assert!(enabled_actions(&target_entries(&remote)).is_empty());
    }

    #[test]
    fn menu_without_a_host_still_offers_dashboard_autostart_and_quit() {
        let entries = menu_model(&HostSnapshot::Unreachable("refused".into()), true);
        assert_eq!(enabled_actions(&entries), vec!["open-dashboard", "quit"]);
        assert!(entries.contains(&MenuEntry::Check {
            action: MenuAction::ToggleAutostart,
            label: "Start at login".into(),
            checked: true
        }));
        assert!(
            !entries
                .iter()
                .any(|e| matches!(e, MenuEntry::Submenu { .. }))
        );
    }

    #[test]
    fn menu_with_a_host_has_a_submenu_per_target_and_configure() {
        let status = HostStatus {
            targets: vec![
                target("memory", "running", 2),
                target("everything", "stopped", 0),
            ],
        };
        let entries = menu_model(&HostSnapshot::Running(status), false);
        let submenus: Vec<&str> = entries
            .iter()
            .filter_map(|e| match e {
                MenuEntry::Submenu { label, .. } => Some(label.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            submenus,
            vec![
                "memory: running · :3100 · 2 sessions",
                "everything: stopped · :3100"
            ]
        );
        assert_eq!(
            enabled_actions(&entries),
            vec!["configure-claude-code", "open-dashboard", "quit"]
        );
    }

    #[test]
    fn menu_ids_round_trip() {
        for action in [
            MenuAction::Target {
                name: "code-index".into(),
                action: TargetAction::Restart,
            },
            MenuAction::ConfigureClaudeCode,
            MenuAction::OpenDashboard,
            MenuAction::ToggleAutostart,
            MenuAction::Quit,
        ] {
            assert_eq!(MenuAction::parse(&action.id()), Some(action.clone()));
        }
        assert_eq!(MenuAction::parse("target:explode:memory"), None);
        assert_eq!(MenuAction::parse("nonsense"), None);
    }
}
