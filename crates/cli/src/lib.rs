//! The `mcp-session-manager` command line: argument parsing and one module per subcommand.
//! The tray app (no subcommand) lives in the root crate; everything here runs headless.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod adopt;
mod daemon;
mod generate_config;
mod memory_import;
mod status;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-session-manager",
    version,
    about = "Keeps Claude Code's MCP servers alive across sessions: one shared daemon per server, a SIGINT-proof proxy per session."
)]
pub struct Cli {
    /// With no command: the tray app (tray, daemons and manager API).
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemons and the manager API headless, in the foreground.
    Daemon(DaemonArgs),
    /// Show daemons, ports, states and sessions.
    Status(StatusArgs),
    /// Start a target through the manager API.
    Start(NameArg),
    /// Stop a target through the manager API.
    Stop(NameArg),
    /// Restart a target through the manager API.
    Restart(NameArg),
    /// Print a target's log (`manager` for the host's own).
    Logs(LogsArgs),
    /// Point an MCP client (Claude Code by default) at the proxy, merging into its config file.
    GenerateConfig(GenerateConfigArgs),
    /// Host the MCP servers of Claude Code, Claude Desktop and Cursor (shared, per project or
    /// per session), rewriting each entry to run the proxy under the same name; `--undo` puts
    /// the entries back byte for byte.
    Adopt(AdoptArgs),
    /// The memory store.
    #[command(subcommand)]
    Memory(MemoryCommand),
}

#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Server names as the clients call them (every entry of that name in any file).
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Every server that can be adopted (or, with --undo, every adopted one).
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    /// List the servers found, with the proposed hosting and its reason; change nothing.
    #[arg(long, conflicts_with_all = ["all", "undo", "dry_run"])]
    pub list: bool,
    /// With --list: print JSON.
    #[arg(long, requires = "list")]
    pub json: bool,
    /// Print the diffs (config.toml and each client file) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Put adopted entries back as they were and remove their targets.
    #[arg(long)]
    pub undo: bool,
    /// The project whose `.mcp.json` and `.cursor/mcp.json` are read (default: the current
    /// directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Host NAME as MODE (shared, per-project, per-session, leave) instead of the proposal.
    #[arg(long = "share", value_name = "NAME=MODE")]
    pub share: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Start only these targets eagerly; the others start on demand.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The target's name in config.toml.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The target's name, or `manager`.
    pub name: String,
    /// Keep printing as the log grows.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct GenerateConfigArgs {
    /// Which client's file to write.
    #[arg(long, default_value = "claude-code", value_parser = ["claude-code", "claude-code-project", "mcp-json", "claude-desktop", "cursor"])]
    pub client: String,
    /// Print the diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these targets (comma-separated); default: every enabled target.
    #[arg(long, value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Claude Code scope: `user` (top-level mcpServers) or `local` (this directory's project).
    #[arg(long, default_value = "user", value_parser = ["user", "local"])]
    pub scope: String,
    /// Overwrite same-named entries that are not ours.
    #[arg(long)]
    pub force: bool,
    /// Take our entries out again.
    #[arg(long)]
    pub remove: bool,
}

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// Load a reference server's memory.jsonl, idempotently.
    Import {
        file: PathBuf,
        /// The project whose DB receives the data (default: ~/.claude/memory.db).
        #[arg(long)]
        project: Option<PathBuf>,
    },
}

/// Runs a headless subcommand; every error is reported here, once, and becomes the exit code.
pub fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Daemon(args) => daemon::run(args),
        Command::Status(args) => status::status(args),
        Command::Start(n) => status::daemon_action(&n.name, "start"),
        Command::Stop(n) => status::daemon_action(&n.name, "stop"),
        Command::Restart(n) => status::daemon_action(&n.name, "restart"),
        Command::Logs(args) => status::logs(args),
        Command::GenerateConfig(args) => generate_config::run(args),
        Command::Adopt(args) => adopt::run(args),
        Command::Memory(MemoryCommand::Import { file, project }) => {
            memory_import::run(&file, project.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mcp-session-manager: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses `args`; `--help`/`--version` and usage errors exit here, as clap does.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Cli {
    Cli::parse_from(args)
}
