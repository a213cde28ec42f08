//! Hot reload of config.toml: a file watcher (debounced) and `POST /config/reload` both call
//! `reload`, which adds, removes or restarts only the targets whose configuration changed. A
//! bad file is refused (the running targets stay as they are) and reported as an event.

use std::time::Duration;

use msm_core::Config;
use notify::Watcher;
use serde::Serialize;

use crate::control::HostRef;
use crate::status::HostEvent;

/// What a reload changed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    /// Settings that need a host restart to take effect (e.g. the manager port).
    pub needs_host_restart: Vec<String>,
}

/// Re-reads config.toml and applies the difference.
pub(crate) async fn reload(host: &HostRef) -> Result<ReloadSummary, msm_core::ConfigError> {
    let _serial = host.reload_lock().lock().await;
    let new = match Config::load(&host.state_dir().config_path()) {
        Ok(config) => config,
        Err(error) => {
            tracing::warn!("config.toml not reloaded: {error}");
            let _ = host.events().send(HostEvent::ConfigError {
                message: error.to_string(),
            });
            return Err(error);
        }
    };
    let old = host.config();
    let mut summary = ReloadSummary::default();
    if new.manager_port != old.manager_port {
        summary.needs_host_restart.push("manager.port".into());
    }
    for name in old.targets.keys().filter(|n| !new.targets.contains_key(*n)) {
        host.remove_slot(name).await;
        summary.removed.push(name.clone());
    }
    let mut to_start = Vec::new();
    for (name, target) in &new.targets {
        match host.target_config(name) {
            None => {
                host.add_slot(target.clone());
                summary.added.push(name.clone());
                if target.enabled {
                    to_start.push(name.clone());
                }
            }
            Some(current) if current != *target => {
                let was_running = host
                    .status()
                    .targets
                    .iter()
                    .any(|t| t.name == *name && t.state != crate::status::TargetState::Stopped);
                host.stop_target(name).await.ok();
                host.set_target_config(target.clone());
                summary.restarted.push(name.clone());
                if target.enabled && (was_running || !current.enabled) {
                    to_start.push(name.clone());
                }
            }
            Some(_) => {}
        }
    }
    host.set_config(new);
    for name in to_start {
        let reached_only = host
            .target_config(&name)
            .is_some_and(|t| !t.is_served_by_host());
        if reached_only {
            continue;
        }
        let host = host.clone();
        tokio::spawn(async move {
            let _ = host.start_target(&name).await;
        });
    }
    if summary != ReloadSummary::default() {
        tracing::info!(?summary, "config.toml reloaded");
    }
    let _ = host.events().send(HostEvent::ConfigReloaded {
        added: summary.added.clone(),
        removed: summary.removed.clone(),
        restarted: summary.restarted.clone(),
    });
    Ok(summary)
}

/// Watches the state dir for changes to config.toml; reloads 300 ms after the last one.
pub(crate) fn spawn_watcher(host: HostRef) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let config_path = host.state_dir().config_path();
    let file_name = config_path.file_name().map(|n| n.to_owned());
    let mut watcher =
        match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                let touches_config = event
                    .paths
                    .iter()
                    .any(|p| p.file_name() == file_name.as_deref());
                let is_change = !matches!(event.kind, notify::EventKind::Access(_));
                if touches_config && is_change {
                    let _ = tx.send(());
                }
            }
        }) {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!("config.toml will not be watched: {error}");
                return;
            }
        };
    // Watch the directory: editors replace the file rather than write it in place.
    if let Err(error) = watcher.watch(host.state_dir().root(), notify::RecursiveMode::NonRecursive)
    {
        tracing::warn!("config.toml will not be watched: {error}");
        return;
    }
    let stopping = host.stopping_token();
    tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = stopping.cancelled() => return,
                got = rx.recv() => if got.is_none() { return },
            }
            // Debounce: wait until the file has been quiet for a moment.
            loop {
                tokio::select! {
                    _ = stopping.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(300)) => break,
                    got = rx.recv() => if got.is_none() { return },
                }
            }
            let _ = reload(&host).await;
        }
    });
}

impl From<&ReloadSummary> for crate::api_types::Reload {
    fn from(s: &ReloadSummary) -> Self {
        crate::api_types::Reload {
            added: s.added.clone(),
            removed: s.removed.clone(),
            restarted: s.restarted.clone(),
            needs_host_restart: s.needs_host_restart.clone(),
        }
    }
}
