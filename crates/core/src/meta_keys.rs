//! `_meta` keys of the stateless revision (2026-07-28, SEP-2575) that the host reads and writes,
//! in one place so that the bridge and the session registry cannot drift apart.

/// The request's protocol revision (mirrors the `MCP-Protocol-Version` header).
pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The client's `{name, version}`, which a session revision sends once in `initialize`.
pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// The client's capabilities, per request.
pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// The log level the client wants on this request's stream.
pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// Marks the notifications that belong to one `subscriptions/listen` stream.
pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
/// The server's `{name, version}` in a `server/discover` result.
pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
