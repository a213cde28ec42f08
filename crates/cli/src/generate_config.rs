//! `generate-config`: points an MCP client at the bundled proxy (logic in msm-client-config).

use std::process::ExitCode;

use anyhow::Context as _;
use msm_client_config::{
    Action, ClientDirs, ClientKind, GenerateRequest, Scope, find_proxy_for_current_exe,
    select_targets,
};

pub fn run(args: crate::GenerateConfigArgs) -> anyhow::Result<ExitCode> {
    let client: ClientKind = args.client.parse()?;
    let scope: Scope = args.scope.parse()?;
    let dirs = ClientDirs::from_env()?;
    let action = if args.remove {
        Action::Remove {
            targets: (!args.targets.is_empty()).then_some(args.targets),
        }
    } else {
        let state = msm_core::StateDir::from_env().context("finding the state dir")?;
        let config = msm_core::Config::load(&state.config_path())?;
        let targets = select_targets(&config, &args.targets)?;
        let proxy = find_proxy_for_current_exe()?;
        Action::Write {
            proxy,
            targets,
            force: args.force,
        }
    };
    let report = msm_client_config::generate(&GenerateRequest {
        client,
        scope,
        dirs,
        action,
        dry_run: args.dry_run,
    })?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}
