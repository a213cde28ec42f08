//! The daemon host: one process per user that serves every configured MCP target on its own
//! loopback port and the manager API (status, sessions, memory DBs, start/stop, config, the web
//! UI) on the manager port. Both the headless `mcp-session-manager daemon` and the tray app run
//! it through [`Host::start`].
//!
//! ```text
//! let host = Host::start(HostOptions::new(StateDir::from_env()?)).await?;
//! host.status(); host.events(); host.manager_url();      // for a UI or tray
//! host.shutdown_requested().await;                        // POST /shutdown, if you honour it
//! host.shutdown().await;                                  // targets stopped, DBs closed, locks gone
//! ```
//!
//! Module map:
//! - `host`: the runtime (`Host`, `HostHandle`): manager.lock, target lifecycle, events.
//! - `launch`: starting one target by kind: the in-process memory server, a supervised child
//!   serving HTTP itself, a stdio child behind the bridge, the front of a remote with a port;
//!   other remote targets are only probed.
//! - `mcp_http`: an rmcp handler at `/mcp` over streamable HTTP, loopback binding, the guarded
//!   router every target port gets.
//! - `security`: loopback Host/Origin and bearer token checks for every port.
//! - `sessions`: the session registry and idle expiry.
//! - `api_types`: the manager API's answers as types, the contract the CLI, tray and UI read.
//! - `manager_api`: the manager routes and their `AppError`; `ui`: the embedded web UI.
//! - `target_facts`: CPU %, RSS and a missing command, added to `/status`.
//! - `reload`: hot reload of config.toml. `log_tail`: a target's log in chunks (tail, follow).
//! - `memory` (the memory MCP tools) and `memory_backend` (the host's one `StoreRegistry`).
//! - `http_front`: the guarded front of an external HTTP server started with `{port}` or of a
//!   remote `url` target with a `port`: a streaming reverse proxy. `tls`: its https client.
//! - `supervisor` (child processes: readiness, backoff, crash loop) and `stdio_bridge` (a stdio
//!   server over streamable HTTP, shared or per session).

pub mod api_types;
mod control;
mod host;
pub mod http_front;
mod launch;
mod log_tail;
pub mod manager_api;
pub mod mcp_http;
pub mod memory;
mod memory_backend;
mod reload;
pub mod security;
pub mod sessions;
mod status;
pub mod stdio_bridge;
pub mod supervisor;
mod target_facts;
#[cfg(test)]
mod tests;
pub mod tls;
mod ui;

pub use host::{Host, HostError, HostHandle, HostOptions, TargetError};
pub use launch::LaunchError;
pub(crate) use memory_backend::memory_handler_factory;
pub use memory_backend::{MemoryApiError, MemoryBackend};
pub use reload::ReloadSummary;
pub use sessions::{SessionInfo, SessionKind};
pub use status::{HostEvent, HostStatus, TargetState, TargetStatus};
