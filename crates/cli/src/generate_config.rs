//! `generate-config`: points an MCP client at the bundled proxy (logic in msm-client-config).

use std::process::ExitCode;

use anyhow::Context as _;
use msm_client_config::{ClientDirs, GenerateOptions, find_proxy_for_current_exe};

pub fn run(args: crate::GenerateConfigArgs) -> anyhow::Result<ExitCode> {
    let options = GenerateOptions {
        client: args.client.parse()?,
        scope: args.scope.parse()?,
        targets: args.targets,
        dry_run: args.dry_run,
        force: args.force,
        remove: args.remove,
        cwd: None,
    };
    let state = msm_core::StateDir::from_env().context("finding the state dir")?;
    // Removing needs no targets: a broken config.toml must not keep our entries in place.
    let config = match msm_core::Config::load(&state.config_path()) {
        Err(_) if options.remove => msm_core::Config::default(),
        loaded => loaded?,
    };
    let request =
        options.into_request(&config, ClientDirs::from_env()?, find_proxy_for_current_exe)?;
    let report = msm_client_config::generate(&request)?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}
