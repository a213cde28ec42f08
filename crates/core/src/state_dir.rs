//! The per-user state dir: `$MCP_SESSION_MANAGER_HOME`, default `~/.mcp-session-manager`.

use std::io;
use std::path::{Path, PathBuf};

/// The environment variable that moves the state dir (every test sets it).
pub const ENV_HOME: &str = "MCP_SESSION_MANAGER_HOME";

/// The state dir and the names of the files in it; creating it is explicit (`ensure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Wraps an explicit directory (tests, `--state-dir`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$MCP_SESSION_MANAGER_HOME`, else `~/.mcp-session-manager`.
    pub fn from_env() -> io::Result<Self> {
        if let Some(dir) = std::env::var_os(ENV_HOME).filter(|v| !v.is_empty()) {
            return Ok(Self::new(PathBuf::from(dir)));
        }
        let home = home_dir().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no home directory: set {ENV_HOME} to choose a state dir"),
            )
        })?;
        Ok(Self::new(home.join(".mcp-session-manager")))
    }

    /// Creates the directory (0700 on Unix) if it does not exist.
    pub fn ensure(&self) -> io::Result<&Self> {
        std::fs::create_dir_all(&self.root)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.root)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        Ok(self)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn token_path(&self) -> PathBuf {
        self.root.join("token")
    }
    /// `NAME.lock`: who serves target `NAME` (or `manager`), on which port.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.lock"))
    }
    /// `NAME.log`: the log of target `NAME` (or `manager`).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
    }
    /// Held by a proxy while it starts a daemon, so that N proxies start one.
    pub fn start_lock_path(&self) -> PathBuf {
        self.root.join("start.lock")
    }
    /// The memory DBs the host has ever opened (for `GET /memory/dbs`).
    pub fn memory_dbs_path(&self) -> PathBuf {
        self.root.join("memory-dbs.json")
    }
    /// What `adopt` changed (each client entry's original text), for an exact undo; mode 0600,
    /// since originals hold env values.
    pub fn adoption_record_path(&self) -> PathBuf {
        self.root.join("adoptions.json")
    }
    /// Env values of targets (adopted servers' tokens), mode 0600.
    pub fn secrets_path(&self) -> PathBuf {
        self.root.join(crate::config::SECRETS_FILE)
    }
}

/// The user's home directory: `$HOME` first (tests set it; Git Bash and MSYS set it on
/// Windows), then `%USERPROFILE%` on Windows (where client-config looks too), then the
/// platform's answer.
pub fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .or_else(|| {
            cfg!(windows)
                .then(|| std::env::var_os("USERPROFILE"))
                .flatten()
                .filter(|v| !v.is_empty())
        })
        .map(PathBuf::from)
        .or_else(|| directories::BaseDirs::new().map(|d| d.home_dir().to_path_buf()))
}
