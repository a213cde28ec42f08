//! `config.toml`: the manager port and the targets. A missing file means memory alone on its
//! default port; a bad file is refused with the file, line and reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_MANAGER_PORT: u16 = 3199;
pub const DEFAULT_MEMORY_PORT: u16 = 3100;

/// The file beside config.toml that holds targets' env values (mode 0600): adopted servers'
/// tokens live here, not in config.toml, which is shown and shared more freely.
pub const SECRETS_FILE: &str = "secrets.toml";

/// The file written on first run: memory enabled, the seed's other servers as disabled examples.
pub const DEFAULT_CONFIG_TOML: &str = include_str!("default-config.toml");

/// A refused config file, with enough detail for the user to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}:{line}:{column}: {reason}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The parsed, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub manager_port: u16,
    /// A session idle for longer than this expires and its resources are freed.
    pub session_idle_timeout_secs: u64,
    /// The ports `adopt` gives adopted servers (each written once into the target).
    pub adopt_ports: std::ops::RangeInclusive<u16>,
    pub proxy: ProxySettings,
    pub targets: BTreeMap<String, TargetConfig>,
}

/// Bounds the proxy applies; defaults suit Claude Code.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// How long a proxy waits for a daemon to become ready, queueing requests meanwhile.
    pub ready_timeout_secs: u64,
    /// Per-request timeout, extended by progress notifications.
    pub request_timeout_secs: u64,
    /// A stdin line longer than this is refused without being read into memory.
    pub max_line_bytes: usize,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            ready_timeout_secs: 30,
            request_timeout_secs: 300,
            max_line_bytes: 64 << 20,
        }
    }
}

/// One MCP server the host serves (or, for `Remote`, only reaches).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    pub name: String,
    pub kind: TargetKind,
    pub transport: Transport,
    /// The loopback port the target is served on (`None` only for `Remote`).
    pub port: Option<u16>,
    pub enabled: bool,
    pub share: ShareMode,
    /// When the target's children run; see [`StartMode`].
    pub start: StartMode,
    /// An on-demand child (or a per-project one) that no session has used for this long is
    /// stopped; the next session starts it again.
    pub idle_stop_secs: u64,
}

impl TargetConfig {
    /// Whether a child runs only while sessions use it: `start = "on-demand"`, and always for
    /// per-project children (a project is known only once a session names it).
    pub fn starts_on_demand(&self) -> bool {
        self.start == StartMode::OnDemand || self.share == ShareMode::PerProject
    }

    /// A `url` target with a `port`: the host serves that port and forwards to the URL, so
    /// every window shares its connection (and https needs no TLS in the proxy).
    pub fn is_fronted_remote(&self) -> bool {
        matches!(self.kind, TargetKind::Remote { .. }) && self.port.is_some()
    }

    /// Whether the host serves this target on its port: everything but a `url` target
    /// without a port, which clients reach directly.
    pub fn is_served_by_host(&self) -> bool {
        !matches!(self.kind, TargetKind::Remote { .. }) || self.port.is_some()
    }

    /// The URL a client of this target posts MCP messages to.
    pub fn endpoint_url(&self) -> String {
        match (&self.kind, self.port) {
            (TargetKind::Remote { url, .. }, None) => url.clone(),
            (_, Some(port)) => match self.transport {
                Transport::Sse => format!("http://127.0.0.1:{port}/sse"),
                _ => format!("http://127.0.0.1:{port}/mcp"),
            },
            (_, None) => unreachable!("validated: only remote targets lack a port"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    /// In-process server; only `memory` exists.
    Builtin(Builtin),
    /// A child process the host starts and supervises. For an HTTP transport, `args` and `env`
    /// values may contain [`PORT_PLACEHOLDER`] (`{port}`): the host then starts the child on an
    /// internal loopback port put in its place, and serves the target's `port` itself behind
    /// its guard (loopback, Origin, token), proxying to the child. Without it the child binds
    /// `port` itself, unguarded.
    Process {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    /// A server someone else runs: reached, never started. With a `port`, the host fronts it
    /// (see [`TargetConfig::is_fronted_remote`]).
    Remote {
        url: String,
        headers: BTreeMap<String, String>,
        /// PEM certificates trusted for an https `url` besides the platform's roots (a
        /// company's or a test's own CA).
        ca_file: Option<PathBuf>,
    },
}

/// The placeholder for the internal port in a `command` target's `args` and `env` values.
pub const PORT_PLACEHOLDER: &str = "{port}";

/// The placeholder for the session's project directory in a per-project or per-session stdio
/// target's `args`, `cwd` and `env` values.
pub const PROJECT_PLACEHOLDER: &str = "{project}";

/// `value` with every `{port}` replaced by `port` (an arg or env value of a `command` target).
pub fn substitute_port(value: &str, port: u16) -> String {
    value.replace(PORT_PLACEHOLDER, &port.to_string())
}

impl TargetKind {
    /// Whether a `command` target asks for an internal port (`{port}` in an arg or env value).
    pub fn uses_port_placeholder(&self) -> bool {
        match self {
            TargetKind::Process { args, env, .. } => args
                .iter()
                .chain(env.values())
                .any(|value| value.contains(PORT_PLACEHOLDER)),
            _ => false,
        }
    }

    /// Whether a `command` target's args, env values or cwd name the session's project.
    pub fn uses_project_placeholder(&self) -> bool {
        match self {
            TargetKind::Process { args, env, cwd, .. } => {
                args.iter()
                    .chain(env.values())
                    .any(|value| value.contains(PROJECT_PLACEHOLDER))
                    || cwd
                        .as_ref()
                        .is_some_and(|c| c.to_string_lossy().contains(PROJECT_PLACEHOLDER))
            }
            _ => false,
        }
    }

    /// A `command` target's args and env with `{port}` replaced by `port`; `None` for other kinds.
    pub fn process_args_with_port(
        &self,
        port: u16,
    ) -> Option<(Vec<String>, BTreeMap<String, String>)> {
        let TargetKind::Process { args, env, .. } = self else {
            return None;
        };
        let substitute = |value: &String| substitute_port(value, port);
        Some((
            args.iter().map(substitute).collect(),
            env.iter()
                .map(|(key, value)| (key.clone(), substitute(value)))
                .collect(),
        ))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Memory,
}

/// How the target speaks MCP. For `Stdio` the host serves it over streamable HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    StreamableHttp,
    /// Legacy HTTP+SSE (2024-11-05).
    Sse,
    /// Plain JSON POST, one response per request.
    Http,
    Stdio,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable-http",
            Transport::Sse => "sse",
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        }
    }
    /// What a client of the target speaks: stdio targets are served as streamable HTTP.
    pub fn served_as(self) -> Transport {
        match self {
            Transport::Stdio => Transport::StreamableHttp,
            other => other,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShareMode {
    /// One child for every session.
    #[default]
    Shared,
    /// A child per session, reaped when the session ends.
    PerSession,
    /// A child per project directory (the session's `Mcp-Project-Path`), started by that
    /// project's first session and stopped once idle; `{project}` in args, cwd and env values
    /// names the directory. For code indexers and servers rooted at the project.
    PerProject,
}

impl ShareMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareMode::Shared => "shared",
            ShareMode::PerSession => "per-session",
            ShareMode::PerProject => "per-project",
        }
    }
}

/// When a target's children are started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartMode {
    /// With the host (and restarted by it): ready before the first session.
    #[default]
    WithHost,
    /// By the first session that needs it, and stopped after `idle_stop_secs` unused: nothing
    /// runs for a server nobody uses. Adopted servers start this way.
    OnDemand,
}

/// How long an on-demand child may idle by default: 30 minutes.
pub const DEFAULT_IDLE_STOP_SECS: u64 = 30 * 60;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    manager: RawManager,
    #[serde(default)]
    proxy: ProxySettings,
    #[serde(default)]
    targets: BTreeMap<String, toml::Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManager {
    #[serde(default = "default_manager_port")]
    port: u16,
    #[serde(default = "default_idle")]
    session_idle_timeout_secs: u64,
    #[serde(default = "default_adopt_ports")]
    adopt_ports: [u16; 2],
}

impl Default for RawManager {
    fn default() -> Self {
        Self {
            port: DEFAULT_MANAGER_PORT,
            session_idle_timeout_secs: default_idle(),
            adopt_ports: default_adopt_ports(),
        }
    }
}

/// The ports adopted servers get unless `[manager] adopt_ports` says otherwise.
pub const DEFAULT_ADOPT_PORTS: [u16; 2] = [3110, 3189];

fn default_adopt_ports() -> [u16; 2] {
    DEFAULT_ADOPT_PORTS
}

fn default_manager_port() -> u16 {
    DEFAULT_MANAGER_PORT
}
fn default_idle() -> u64 {
    30 * 60
}
fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    builtin: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    ca_file: Option<PathBuf>,
    transport: Option<Transport>,
    port: Option<u16>,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default)]
    share: ShareMode,
    #[serde(default)]
    start: StartMode,
    #[serde(default = "default_idle_stop")]
    idle_stop_secs: u64,
}

fn default_idle_stop() -> u64 {
    DEFAULT_IDLE_STOP_SECS
}

impl Default for Config {
    /// Memory alone, on its default port.
    #[expect(
        clippy::expect_used,
        reason = "the empty config is valid (the default_config test)"
    )]
    fn default() -> Self {
        Config::parse(Path::new("config.toml"), "").expect("the empty config is valid")
    }
}

impl Config {
    /// Reads `path`, then the env values kept in [`SECRETS_FILE`] beside it; a missing file
    /// is the default config.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let secrets_path = path.with_file_name(SECRETS_FILE);
        match std::fs::read_to_string(&secrets_path) {
            Ok(text) => config.add_secrets(&secrets_path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ConfigError::Io {
                    path: secrets_path,
                    source,
                });
            }
        }
        Ok(config)
    }

    /// Merges `secrets.toml` (`[targets.NAME.env] KEY = "value"`, and `[targets.NAME.headers]`
    /// for a `url` target) into the targets; a value there wins over config.toml's. Secrets of targets that no longer exist are kept
    /// in the file and ignored.
    pub fn add_secrets(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawSecrets {
            #[serde(default)]
            targets: BTreeMap<String, RawSecretTarget>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawSecretTarget {
            #[serde(default)]
            env: BTreeMap<String, String>,
            #[serde(default)]
            headers: BTreeMap<String, String>,
        }
        let raw: RawSecrets = toml::from_str(text).map_err(|e| {
            // Never echo the file's text: it holds secrets.
            let (line, column) = line_column(text, e.span().map_or(0, |s| s.start));
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                reason: e.message().to_owned(),
            }
        })?;
        for (name, secret) in raw.targets {
            match self.targets.get_mut(&name).map(|target| &mut target.kind) {
                Some(TargetKind::Process { env, .. }) => env.extend(secret.env),
                Some(TargetKind::Remote { headers, .. }) => headers.extend(secret.headers),
                _ => {}
            }
        }
        Ok(())
    }

    /// Reads `path`, first writing the commented default there if no file exists.
    pub fn load_or_init(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            let io = |source| ConfigError::Io {
                path: path.to_owned(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    std::io::Write::write_all(&mut file, DEFAULT_CONFIG_TOML.as_bytes())
                        .map_err(io)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Config::load(path)
    }

    /// Parses and validates; errors name `path`, the line and the reason.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |offset: usize, reason: String| {
            let (line, column) = line_column(text, offset);
            ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                reason,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            invalid(offset, e.message().to_owned())
        })?;
        let mut targets = BTreeMap::new();
        for (name, spanned) in raw.targets {
            let at = spanned.span().start;
            let target = validate_target(&name, spanned.into_inner())
                .map_err(|reason| invalid(at, format!("target `{name}`: {reason}")))?;
            targets.insert(name, target);
        }
        if !targets.contains_key("memory") {
            targets.insert("memory".into(), default_memory());
        }
        let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
        ports.insert(raw.manager.port, "manager");
        for t in targets.values().filter(|t| t.enabled) {
            if let Some(port) = t
                .port
                .filter(|_| !matches!(t.kind, TargetKind::Remote { .. }))
                && let Some(other) = ports.insert(port, &t.name)
            {
                return Err(invalid(
                    0,
                    format!("port {port} is used by both `{other}` and `{}`", t.name),
                ));
            }
        }
        let [low, high] = raw.manager.adopt_ports;
        if low == 0 || low > high {
            return Err(invalid(
                0,
                format!("[manager] adopt_ports = [{low}, {high}] is not a range of ports"),
            ));
        }
        Ok(Config {
            manager_port: raw.manager.port,
            session_idle_timeout_secs: raw.manager.session_idle_timeout_secs,
            adopt_ports: low..=high,
            proxy: raw.proxy,
            targets,
        })
    }

    /// The target called `name`, or an error listing the configured ones.
    pub fn target(&self, name: &str) -> Result<&TargetConfig, UnknownTarget> {
        self.targets.get(name).ok_or_else(|| UnknownTarget {
            name: name.to_owned(),
            known: self.targets.keys().cloned().collect(),
        })
    }
}

/// A target name that config.toml does not define.
#[derive(Debug, thiserror::Error)]
#[error("unknown target `{name}`; configured targets: {}", known.join(", "))]
pub struct UnknownTarget {
    pub name: String,
    pub known: Vec<String>,
}

fn default_memory() -> TargetConfig {
    TargetConfig {
        name: "memory".into(),
        kind: TargetKind::Builtin(Builtin::Memory),
        transport: Transport::StreamableHttp,
        port: Some(DEFAULT_MEMORY_PORT),
        enabled: true,
        share: ShareMode::Shared,
        start: StartMode::WithHost,
        idle_stop_secs: DEFAULT_IDLE_STOP_SECS,
    }
}

/// Target names become file names and URL segments: keep them plain.
pub fn is_valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name != crate::MANAGER_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn validate_target(name: &str, raw: RawTarget) -> Result<TargetConfig, String> {
    if !is_valid_target_name(name) {
        return Err("names may use only letters, digits, `-` and `_` (and not `manager`)".into());
    }
    let has_url_keys = raw.ca_file.is_some() || !raw.headers.is_empty();
    let kind = match (raw.builtin, raw.command, raw.url) {
        (Some(b), None, None) if b == "memory" => TargetKind::Builtin(Builtin::Memory),
        (Some(b), None, None) => return Err(format!("unknown builtin `{b}` (only `memory`)")),
        (None, Some(command), None) if !command.trim().is_empty() => TargetKind::Process {
            command,
            args: raw.args,
            env: raw.env,
            cwd: raw.cwd,
        },
        (None, None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            TargetKind::Remote {
                url,
                headers: raw.headers,
                ca_file: raw.ca_file,
            }
        }
        (None, None, Some(url)) => return Err(format!("url `{url}` is not http(s)")),
        (None, None, None) => return Err("set one of `builtin`, `command` or `url`".into()),
        _ => return Err("set only one of `builtin`, `command` or `url`".into()),
    };
    if has_url_keys && !matches!(kind, TargetKind::Remote { .. }) {
        return Err("`ca_file` and `headers` are for `url` targets".into());
    }
    let transport = match (&kind, raw.transport) {
        (TargetKind::Builtin(_), None | Some(Transport::StreamableHttp)) => {
            Transport::StreamableHttp
        }
        (TargetKind::Builtin(_), Some(t)) => {
            return Err(format!(
                "the builtin memory server speaks streamable-http, not {}",
                t.as_str()
            ));
        }
        (TargetKind::Remote { .. }, Some(Transport::Stdio)) => {
            return Err("a `url` target cannot use transport stdio".into());
        }
        (TargetKind::Remote { .. }, t) => t.unwrap_or(Transport::StreamableHttp),
        (TargetKind::Process { .. }, Some(Transport::Stdio)) if kind.uses_port_placeholder() => {
            return Err(format!(
                "`{PORT_PLACEHOLDER}` in args or env is for HTTP transports (the host serves a stdio server itself)"
            ));
        }
        (TargetKind::Process { .. }, Some(t)) => t,
        (TargetKind::Process { .. }, None) => {
            return Err(
                "set `transport` (stdio, streamable-http, sse or http) for a `command`".into(),
            );
        }
    };
    let port = match (&kind, raw.port) {
        (TargetKind::Remote { .. }, None) => None,
        (TargetKind::Builtin(_), None) => Some(DEFAULT_MEMORY_PORT),
        (_, Some(0)) => return Err("port 0 is not a fixed port".into()),
        (_, Some(p)) => Some(p),
        (_, None) => return Err("set `port`".into()),
    };
    let is_stdio_process =
        matches!(kind, TargetKind::Process { .. }) && transport == Transport::Stdio;
    if raw.share != ShareMode::Shared && !is_stdio_process {
        return Err(format!(
            "share = \"{}\" is for stdio `command` targets (the host runs their children)",
            raw.share.as_str()
        ));
    }
    if raw.start == StartMode::OnDemand && !is_stdio_process {
        return Err("start = \"on-demand\" is for stdio `command` targets".into());
    }
    if kind.uses_project_placeholder() && raw.share == ShareMode::Shared {
        return Err(format!(
            "`{PROJECT_PLACEHOLDER}` names a session's project: set share = \"per-project\" (or \"per-session\")"
        ));
    }
    if raw.idle_stop_secs == 0 {
        return Err("idle_stop_secs must be at least 1".into());
    }
    Ok(TargetConfig {
        name: name.to_owned(),
        kind,
        transport,
        port,
        enabled: raw.enabled,
        share: raw.share,
        start: raw.start,
        idle_stop_secs: raw.idle_stop_secs,
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("config.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn empty_means_memory_alone() {
        let c = parse("").unwrap();
        assert_eq!(c.manager_port, 3199);
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets["memory"].port, Some(3100));
        assert_eq!(
            c.targets["memory"].endpoint_url(),
            "http://127.0.0.1:3100/mcp"
        );
    }

    #[test]
    fn default_file_parses_with_examples_disabled() {
        let c = parse(DEFAULT_CONFIG_TOML).unwrap();
        let enabled: Vec<_> = c.targets.values().filter(|t| t.enabled).collect();
        assert_eq!(enabled.len(), 1);
        assert_eq!(enabled[0].name, "memory");
        assert!(c.targets.len() >= 4, "examples present");
        assert_eq!(c.targets["code-index"].port, Some(3101));
    }

    #[test]
    fn every_kind_parses() {
        let c = parse(
            r#"
[manager]
port = 4000
[targets.memory]
builtin = "memory"
port = 4001
[targets.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
transport = "stdio"
port = 4002
share = "per-session"
[targets.fast]
command = "python3"
args = ["server.py"]
transport = "sse"
port = 4003
[targets.team]
url = "http://127.0.0.1:3300/mcp"
headers = { Authorization = "Bearer x" }
"#,
        )
        .unwrap();
        assert_eq!(c.manager_port, 4000);
        assert_eq!(c.targets["everything"].share, ShareMode::PerSession);
        assert_eq!(
            c.targets["fast"].endpoint_url(),
            "http://127.0.0.1:4003/sse"
        );
        assert_eq!(
            c.targets["team"].endpoint_url(),
            "http://127.0.0.1:3300/mcp"
        );
        assert_eq!(c.targets["team"].port, None);
    }

    #[test]
    fn port_placeholder_is_found_and_substituted() {
        let c = parse(
            r#"
[targets.guarded]
command = "server"
args = ["--port", "{port}", "--host=127.0.0.1:{port}"]
env = { PORT = "{port}", OTHER = "x" }
transport = "streamable-http"
port = 4010
[targets.plain]
command = "server"
args = ["--port", "4011"]
transport = "sse"
port = 4011
"#,
        )
        .unwrap();
        assert!(c.targets["guarded"].kind.uses_port_placeholder());
        assert!(!c.targets["plain"].kind.uses_port_placeholder());
        let (args, env) = c.targets["guarded"]
            .kind
            .process_args_with_port(45678)
            .unwrap();
        assert_eq!(args, ["--port", "45678", "--host=127.0.0.1:45678"]);
        assert_eq!(env["PORT"], "45678");
        assert_eq!(env["OTHER"], "x");
        let stdio = parse(
            "[targets.a]\ncommand = \"x\"\nargs = [\"{port}\"]\ntransport = \"stdio\"\nport = 5\n",
        );
        assert!(stdio.unwrap_err().contains("is for HTTP transports"));
    }

    #[test]
    fn bad_files_name_line_and_reason() {
        let check = |text: &str, expected: &str| {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check("[manager]\nport = \"x\"\n", "config.toml:2:");
        check("[manager]\nport = 3199\nbogus = 1\n", "config.toml:3:");
        check(
            "[targets.a]\nbuiltin = \"nope\"\nport = 1\n",
            "unknown builtin",
        );
        check(
            "[targets.a]\ncommand = \"x\"\nport = 5\n",
            "set `transport`",
        );
        check(
            "[targets.a]\ncommand = \"x\"\ntransport = \"stdio\"\n",
            "set `port`",
        );
        check(
            "\n\n[targets.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
            "config.toml:3:",
        );
        check("[targets.\"a b\"]\nbuiltin = \"memory\"\n", "names may use");
        check(
            "[targets.a]\ncommand = \"x\"\ntransport = \"stdio\"\nport = 3100\n",
            "port 3100 is used by both",
        );
        check("[targets.a]\nurl = \"ftp://x\"\n", "not http");
        check("[targets.a\n", "config.toml:1:");
    }

    #[test]
    fn per_project_and_on_demand_targets_parse() {
        let c = parse(
            r#"
[targets.fs]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "{project}"]
cwd = "{project}"
transport = "stdio"
port = 4002
share = "per-project"
[targets.fetch]
command = "uvx"
args = ["mcp-server-fetch"]
transport = "stdio"
port = 4003
start = "on-demand"
idle_stop_secs = 60
"#,
        )
        .unwrap();
        let fs = &c.targets["fs"];
        assert_eq!(fs.share, ShareMode::PerProject);
        assert!(fs.kind.uses_project_placeholder());
        assert!(
            fs.starts_on_demand(),
            "per-project children start on demand"
        );
        assert_eq!(fs.idle_stop_secs, DEFAULT_IDLE_STOP_SECS);
        let fetch = &c.targets["fetch"];
        assert!(fetch.starts_on_demand());
        assert_eq!(fetch.idle_stop_secs, 60);
        assert!(!c.targets["memory"].starts_on_demand());
    }

    #[test]
    fn sharing_modes_are_refused_where_they_cannot_apply() {
        let check = |text: &str, expected: &str| {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        };
        check(
            "[targets.a]\ncommand = \"x\"\nargs = [\"{project}\"]\ntransport = \"stdio\"\nport = 5\n",
            "set share = \"per-project\"",
        );
        check(
            "[targets.a]\ncommand = \"x\"\ntransport = \"sse\"\nport = 5\nshare = \"per-project\"\n",
            "is for stdio `command` targets",
        );
        check(
            "[targets.a]\nurl = \"http://h/mcp\"\nstart = \"on-demand\"\n",
            "is for stdio `command` targets",
        );
        check(
            "[targets.a]\ncommand = \"x\"\ntransport = \"stdio\"\nport = 5\nidle_stop_secs = 0\n",
            "at least 1",
        );
    }

    #[test]
    fn secrets_beside_the_config_fill_in_env_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[targets.gh]\ncommand = \"gh-mcp\"\ntransport = \"stdio\"\nport = 4010\nenv = { MODE = \"ro\" }\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            "[targets.gh.env]\nTOKEN = \"s3cret\"\n[targets.gone.env]\nX = \"1\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let TargetKind::Process { env, .. } = &c.targets["gh"].kind else {
            panic!("a command target")
        };
        assert_eq!(env["TOKEN"], "s3cret");
        assert_eq!(env["MODE"], "ro");
        std::fs::write(
            dir.path().join(SECRETS_FILE),
            "[targets.gh]\nenv = 3\nTOKEN = \"s3cret\"\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("secrets.toml:"), "{err}");
        assert!(
            !err.contains("s3cret"),
            "an error never echoes a secret: {err}"
        );
    }

    #[test]
    fn unknown_target_lists_known() {
        let c = parse("").unwrap();
        let err = c.target("nope").unwrap_err().to_string();
        assert!(err.contains("unknown target `nope`") && err.contains("memory"));
    }

    #[test]
    fn load_or_init_writes_default_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let c = Config::load_or_init(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG_TOML);
        std::fs::write(&path, "[manager]\nport = 4999\n").unwrap();
        assert_eq!(Config::load_or_init(&path).unwrap().manager_port, 4999);
        assert_eq!(c.manager_port, 3199);
        assert!(Config::load(&dir.path().join("missing.toml")).is_ok());
    }
}
