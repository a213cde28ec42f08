//! Header names that the proxy, the daemons and the manager API agree on.

/// The absolute project directory of the session; selects the memory DB.
pub const PROJECT_PATH: &str = "mcp-project-path";
/// A uuid per proxy process, so that stateless (2026-07-28) sessions can be counted.
pub const PROXY_INSTANCE: &str = "mcp-proxy-instance";
/// The streamable HTTP session id of the session revisions.
pub const SESSION_ID: &str = "mcp-session-id";
/// The negotiated protocol revision.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
