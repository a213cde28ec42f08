//! `adopt`: lists, adopts and un-adopts the user's MCP servers (logic in
//! msm-client-config's `adopt`). With a host running, the new targets are loaded through its
//! manager API before any client file changes.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use msm_client_config::adopt::{self, AdoptRequest, Hosting};
use msm_client_config::{ClientDirs, find_proxy_for_current_exe};

use crate::status::Manager;

pub fn run(args: crate::AdoptArgs) -> anyhow::Result<ExitCode> {
    let state = msm_core::StateDir::from_env().context("finding the state dir")?;
    let dirs = ClientDirs::from_env()?;
    let project = match args.project {
        Some(dir) => std::path::absolute(&dir)
            .with_context(|| format!("the project directory {}", dir.display()))?,
        None => dirs.cwd.clone(),
    };
    if args.list {
        let found = adopt::list(&dirs, &project, &state.adoption_record_path())?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&found)?);
        } else {
            print!("{}", render_list(&found));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.names.is_empty() && !args.all {
        bail!("name the servers to adopt, or pass --all (see `adopt --list`)");
    }
    let mut share = BTreeMap::new();
    for item in &args.share {
        let Some((name, mode)) = item.split_once('=') else {
            bail!("--share takes NAME=MODE, not `{item}`");
        };
        share.insert(
            name.to_owned(),
            mode.parse::<Hosting>().map_err(anyhow::Error::msg)?,
        );
    }
    let request = AdoptRequest {
        names: args.names,
        all: args.all,
        dry_run: args.dry_run,
        share,
        project,
        dirs,
        config_path: state.config_path(),
        record_path: state.adoption_record_path(),
        // Undo needs no proxy, even a missing one.
        proxy: if args.undo {
            std::path::PathBuf::new()
        } else {
            find_proxy_for_current_exe()?
        },
        environment: std::env::vars().collect(),
    };
    let report = if args.undo {
        let report = adopt::undo(&request)?;
        if !request.dry_run && !report.targets.is_empty() {
            reload_running_host(&[])?;
        }
        report
    } else {
        adopt::adopt(&request, &mut |targets| {
            reload_running_host(targets).map_err(|e| format!("{e:#}"))
        })?
    };
    for diff in report.diffs.iter().filter(|d| !d.diff.is_empty()) {
        print!("{}", diff.diff);
    }
    print!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// A running host reloads config.toml and must then list `targets`; with none running, the
/// first proxy starts one that reads the new file.
fn reload_running_host(targets: &[String]) -> anyhow::Result<()> {
    let Ok(manager) = Manager::find()? else {
        return Ok(());
    };
    let (status, body) = match manager.call(reqwest::Method::POST, "/config/reload")? {
        Ok(answer) => answer,
        Err(_not_running) => return Ok(()),
    };
    if !status.is_success() {
        bail!(
            "the host refused the new config.toml: {}",
            body["error"].as_str().unwrap_or("no reason given")
        );
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = match manager.call(reqwest::Method::GET, "/status")? {
            Ok((_, body)) => body["targets"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t["name"].as_str().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
            Err(_) => return Ok(()),
        };
        if targets.iter().all(|t| listed.contains(t)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the host did not list the new targets within 15 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn render_list(found: &adopt::Discovery) -> String {
    let mut out = String::new();
    for server in &found.servers {
        let launch = match (&server.command, &server.url) {
            (Some(command), _) => format!("{command} {}", server.args.join(" ")),
            (None, Some(url)) => url.clone(),
            (None, None) => String::new(),
        };
        let state = if server.adopted {
            "adopted"
        } else if server.through_proxy {
            "through our proxy"
        } else {
            server.proposal.share.as_str()
        };
        out.push_str(&format!(
            "{name}  [{scope}] {file}\n    {transport:?}: {launch}\n",
            name = server.name,
            scope = server.scope.as_str(),
            file = server.file.display(),
            transport = server.transport,
        ));
        if !server.env_names.is_empty() {
            out.push_str(&format!("    env: {}\n", server.env_names.join(", ")));
        }
        out.push_str(&format!("    → {state}: {}\n", server.proposal.reason));
    }
    for skipped in &found.skipped_files {
        out.push_str(&format!(
            "skipped {}: {}\n",
            skipped.file.display(),
            skipped.reason
        ));
    }
    if found.servers.is_empty() {
        out.push_str("no MCP servers found in the client files\n");
    }
    out
}
