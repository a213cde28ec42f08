//! The contract every binary of MCP Session Manager shares: where the state dir is and what
//! lives in it (`config.toml`, `token`, `NAME.lock`, `NAME.log`), the header names, header
//! value codec and proxy error codes on the wire, and how logging is set up. Nothing here
//! knows HTTP, SQLite or a GUI.

pub mod config;
pub mod header_codec;
pub mod headers;
pub mod jsonrpc_codes;
pub mod lockfile;
pub mod logging;
pub mod meta_keys;
pub mod state_dir;
pub mod token;

pub use config::{Config, ConfigError, ShareMode, StartMode, TargetConfig, TargetKind, Transport};
pub use lockfile::{LockError, LockFile, LockInfo};
pub use state_dir::StateDir;
pub use token::Token;

/// The version written into lock files and reported by `/status` and `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An error and its causes on one line. HTTP and TLS libraries keep the useful part (refused,
/// reset, an unknown issuer) in `source()`, which `Display` leaves out.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The name of the manager API in lock files and logs (`manager.lock`, `manager.log`).
pub const MANAGER_NAME: &str = "manager";
