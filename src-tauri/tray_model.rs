//! The tray menu as plain data: a pure function of the host's state (the manager API's
//! `/status` answer, `msm_host::api_types::Status`), so that what the menu shows is
//! unit-tested without a display.

use msm_host::api_types::{Status, Target, TargetState};

/// What the tray knows about the host.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum HostSnapshot {
    /// The host is being started or taken over; nothing to show yet.
    #[default]
    Starting,
    /// The manager API does not answer (the reason is shown in the menu).
    Unreachable(String),
    Running(Status),
}

/// A target's state as the menu words it: a remote target is `reachable` or `unreachable`.
pub fn shown_state(target: &Target) -> &'static str {
    match (target.is_reached_only(), target.reachable) {
        (true, Some(true)) => "reachable",
        (true, Some(false)) => "unreachable",
        _ if target.state == TargetState::Idle => "idle (starts on demand)",
        _ => target.state.as_str(),
    }
}

/// Targets in the `running` state (the status line's first number).
pub fn running_count(status: &Status) -> usize {
    status
        .targets
        .iter()
        .filter(|t| matches!(t.state, TargetState::Running | TargetState::Idle))
        .count()
}

/// Sessions across every target.
pub fn session_count(status: &Status) -> usize {
    status.targets.iter().map(|t| t.sessions).sum()
}

/// What a menu item does when clicked; its id is `MenuAction::id()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuAction {
    Target {
        name: String,
        action: TargetAction,
    },
    /// Opens the dashboard's log view of one target.
    OpenLog {
        name: String,
    },
    StartAll,
    StopAll,
    /// Opens the dashboard's Configure Claude Code dialog: the diff first, then Write.
    ConfigureClaudeCode,
    /// Opens the dashboard at the Servers page's adopt section.
    AdoptServers,
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
            MenuAction::OpenLog { name } => format!("log:{name}"),
            MenuAction::StartAll => "start-all".into(),
            MenuAction::StopAll => "stop-all".into(),
            MenuAction::ConfigureClaudeCode => "configure-claude-code".into(),
            MenuAction::AdoptServers => "adopt".into(),
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
        if let Some(name) = id.strip_prefix("log:") {
            return Some(MenuAction::OpenLog {
                name: name.to_owned(),
            });
        }
        match id {
            "start-all" => Some(MenuAction::StartAll),
            "stop-all" => Some(MenuAction::StopAll),
            "configure-claude-code" => Some(MenuAction::ConfigureClaudeCode),
            "adopt" => Some(MenuAction::AdoptServers),
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
            let sessions = session_count(status);
            format!(
                "{} of {} servers running · {} session{}",
                running_count(status),
                status.targets.len(),
                sessions,
                if sessions == 1 { "" } else { "s" }
            )
        }
    }
}

/// Which of the three tray icons to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconState {
    /// Every enabled target this host runs is running (or there is none).
    AllRunning,
    /// Some enabled target is stopped or on its way up (a disabled one, started on demand,
    /// does not count; nor does a remote server).
    SomeStopped,
    /// The host is unreachable, or a target it runs has failed or is in a crash loop.
    Error,
}

pub fn icon_state(snapshot: &HostSnapshot) -> IconState {
    match snapshot {
        HostSnapshot::Starting => IconState::SomeStopped,
        HostSnapshot::Unreachable(_) => IconState::Error,
        HostSnapshot::Running(status) => {
            let managed = status.targets.iter().filter(|t| !t.is_reached_only());
            let mut state = IconState::AllRunning;
            for target in managed {
                match target.state {
                    TargetState::Failed | TargetState::CrashLoop => return IconState::Error,
                    TargetState::Running | TargetState::Idle => {}
                    TargetState::Starting | TargetState::Stopped if target.enabled => {
                        state = IconState::SomeStopped
                    }
                    TargetState::Starting | TargetState::Stopped => {}
                }
            }
            state
        }
    }
}

/// The OS notifications (title, body) due when `before` turns into `after`: a target entered a
/// crash loop, or came back from one (or from a failure); empty when nothing is worth one.
pub fn notification_for(before: &Status, after: &Status) -> Vec<(String, String)> {
    let mut notes = Vec::new();
    for target in &after.targets {
        let Some(old) = before.target(&target.name) else {
            continue;
        };
        let was_bad = matches!(old.state, TargetState::CrashLoop | TargetState::Failed);
        match target.state {
            TargetState::CrashLoop if old.state != TargetState::CrashLoop => notes.push((
                format!("{} keeps crashing", target.name),
                target.last_error.clone().unwrap_or_else(|| {
                    "It exited again and again; it will not be restarted until you start it.".into()
                }),
            )),
            TargetState::Running if was_bad => notes.push((
                format!("{} recovered", target.name),
                "It is running again.".into(),
            )),
            _ => {}
        }
    }
    notes
}

fn target_label(target: &Target) -> String {
    let mut label = format!("{}: {}", target.name, shown_state(target));
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

fn target_entries(target: &Target) -> Vec<MenuEntry> {
    if target.is_reached_only() {
        return vec![MenuEntry::Info(
            "Run elsewhere: not started or stopped here".into(),
        )];
    }
    let up = target.state.is_up();
    let mut entries: Vec<MenuEntry> = [
        (TargetAction::Start, !up),
        (TargetAction::Stop, target.state != TargetState::Stopped),
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
    .collect();
    entries.push(MenuEntry::Separator);
    entries.push(MenuEntry::Item {
        action: MenuAction::OpenLog {
            name: target.name.clone(),
        },
        label: "Open log".into(),
        enabled: target.log_path.is_some(),
    });
    entries
}

/// The whole tray menu for `snapshot`; `autostart` is the "Start at login" checkbox's state.
pub fn menu_model(snapshot: &HostSnapshot, autostart: bool) -> Vec<MenuEntry> {
    let mut entries = vec![MenuEntry::Info(status_line(snapshot)), MenuEntry::Separator];
    if let HostSnapshot::Running(status) = snapshot {
        entries.extend(status.targets.iter().map(|target| MenuEntry::Submenu {
            label: target_label(target),
            entries: target_entries(target),
        }));
        let managed: Vec<&Target> = status
            .targets
            .iter()
            .filter(|t| !t.is_reached_only())
            .collect();
        if !managed.is_empty() {
            entries.push(MenuEntry::Item {
                action: MenuAction::StartAll,
                label: "Start all".into(),
                enabled: managed.iter().any(|t| !t.state.is_up()),
            });
            entries.push(MenuEntry::Item {
                action: MenuAction::StopAll,
                label: "Stop all".into(),
                enabled: managed.iter().any(|t| t.state != TargetState::Stopped),
            });
        }
        if !status.targets.is_empty() {
            entries.push(MenuEntry::Separator);
        }
    }
    let reachable = matches!(snapshot, HostSnapshot::Running(_));
    entries.extend([
        MenuEntry::Item {
            action: MenuAction::ConfigureClaudeCode,
            label: "Configure Claude Code…".into(),
            enabled: reachable,
        },
        MenuEntry::Item {
            action: MenuAction::AdoptServers,
            label: "Adopt servers from Claude Code…".into(),
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
    use msm_host::api_types::{TargetKind, route_examples};

    /// A target out of the documented `/status` example, renamed and put in `state`.
    fn target(name: &str, state: TargetState, sessions: usize) -> Target {
        let status = example_status();
        Target {
            name: name.into(),
            state,
            sessions,
            ..status.targets[0].clone()
        }
    }

    fn example_status() -> Status {
        let answer = route_examples()
            .into_iter()
            .find(|r| r.path == "/status")
            .unwrap()
            .answer;
        serde_json::from_value(answer).unwrap()
    }

    fn with(targets: Vec<Target>) -> HostSnapshot {
        HostSnapshot::Running(Status {
            targets,
            ..example_status()
        })
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
    fn status_line_counts_running_targets_and_sessions() {
        let check =
            |snapshot: HostSnapshot, expected: &str| assert_eq!(status_line(&snapshot), expected);
        check(HostSnapshot::Starting, "MCP Session Manager: starting…");
        check(
            HostSnapshot::Unreachable("connection refused".into()),
            "Manager not reachable: connection refused",
        );
        check(
            with(vec![
                target("memory", TargetState::Running, 1),
                target("x", TargetState::Stopped, 0),
            ]),
            "1 of 2 servers running · 1 session",
        );
        check(
            with(vec![target("memory", TargetState::Running, 3)]),
            "1 of 1 servers running · 3 sessions",
        );
        // The documented example: memory running, everything in a crash loop, team remote.
        check(
            HostSnapshot::Running(example_status()),
            "2 of 4 servers running · 1 session",
        );
    }

    #[test]
    fn three_icon_states() {
        let mut remote_down = target("team", TargetState::Failed, 0);
        remote_down.kind = TargetKind::Remote;
        remote_down.port = None;
        let mut disabled = target("later", TargetState::Stopped, 0);
        disabled.enabled = false;
        let check = |snapshot: HostSnapshot, expected: IconState| {
            assert_eq!(icon_state(&snapshot), expected, "{snapshot:?}")
        };
        check(HostSnapshot::Starting, IconState::SomeStopped);
        check(
            HostSnapshot::Unreachable("refused".into()),
            IconState::Error,
        );
        check(
            with(vec![target("memory", TargetState::Running, 0), disabled]),
            IconState::AllRunning,
        );
        check(
            with(vec![
                target("memory", TargetState::Running, 0),
                target("x", TargetState::Stopped, 0),
            ]),
            IconState::SomeStopped,
        );
        check(
            with(vec![
                target("memory", TargetState::Running, 0),
                target("x", TargetState::CrashLoop, 0),
            ]),
            IconState::Error,
        );
        check(
            with(vec![target("x", TargetState::Failed, 0)]),
            IconState::Error,
        );
        check(
            with(vec![target("memory", TargetState::Running, 0), remote_down]),
            IconState::AllRunning,
        );
    }

    #[test]
    fn notifications_on_entering_and_leaving_a_crash_loop() {
        let before = Status {
            targets: vec![
                target("a", TargetState::Running, 0),
                target("b", TargetState::CrashLoop, 0),
            ],
            ..example_status()
        };
        let mut after = before.clone();
        after.targets[0].state = TargetState::CrashLoop;
        after.targets[0].last_error = Some("exited with status 1".into());
        after.targets[1].state = TargetState::Running;
        assert_eq!(
            notification_for(&before, &after),
            vec![
                ("a keeps crashing".into(), "exited with status 1".into()),
                ("b recovered".into(), "It is running again.".into())
            ]
        );
        assert!(notification_for(&after, &after).is_empty());
    }

    #[test]
    fn each_target_offers_the_actions_that_fit_its_state() {
        let check = |state: TargetState, expected: &[&str]| {
            let entries = target_entries(&target("memory", state, 0));
            let mut expected: Vec<String> = expected
                .iter()
                .map(|v| format!("target:{v}:memory"))
                .collect();
            expected.push("log:memory".into());
            assert_eq!(enabled_actions(&entries), expected, "state {state:?}");
        };
        check(TargetState::Running, &["stop", "restart"]);
        check(TargetState::Stopped, &["start", "restart"]);
        check(TargetState::CrashLoop, &["start", "stop", "restart"]);
        check(TargetState::Starting, &["stop", "restart"]);
    }

    #[test]
    fn remote_targets_have_no_actions_and_say_whether_they_answer() {
        let status = example_status();
        let remote = status.target("team").unwrap();
        assert!(enabled_actions(&target_entries(remote)).is_empty());
        assert_eq!(target_label(remote), "team: reachable");
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
    fn menu_with_a_host_has_a_submenu_per_target_start_stop_all_configure_and_adopt() {
        let entries = menu_model(
            &with(vec![
                target("memory", TargetState::Running, 2),
                target("everything", TargetState::Stopped, 0),
            ]),
            false,
        );
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
            vec![
                "start-all",
                "stop-all",
                "configure-claude-code",
                "adopt",
                "open-dashboard",
                "quit"
            ]
        );
        let all_up = menu_model(
            &with(vec![target("memory", TargetState::Running, 0)]),
            false,
        );
        assert!(!enabled_actions(&all_up).contains(&"start-all".to_owned()));
    }

    #[test]
    fn menu_ids_round_trip() {
        for action in [
            MenuAction::Target {
                name: "code-index".into(),
                action: TargetAction::Restart,
            },
            MenuAction::OpenLog {
                name: "code-index".into(),
            },
            MenuAction::StartAll,
            MenuAction::StopAll,
            MenuAction::ConfigureClaudeCode,
            MenuAction::AdoptServers,
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
