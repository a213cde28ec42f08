//! Header names that the proxy, the daemons and the manager API agree on.

/// The absolute project directory of the session; selects the memory DB.
pub const PROJECT_PATH: &str = "mcp-project-path";
/// A uuid per proxy process, so that stateless (2026-07-28) sessions can be counted.
pub const PROXY_INSTANCE: &str = "mcp-proxy-instance";
/// The streamable HTTP session id of the session revisions.
pub const SESSION_ID: &str = "mcp-session-id";
/// The negotiated protocol revision.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// The 2026-07-28 revision's copy of the body's method (SEP-2243).
pub const MCP_METHOD: &str = "mcp-method";
/// The 2026-07-28 revision's copy of the tool, prompt or resource the body names.
pub const MCP_NAME: &str = "mcp-name";
/// The prefix of the `Mcp-Param-TOKEN` headers that mirror `x-mcp-header` tool arguments.
pub const MCP_PARAM_PREFIX: &str = "mcp-param-";
