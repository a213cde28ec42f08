//! The stdio bridge: serves a stdio-only MCP server over streamable HTTP (work in progress).
