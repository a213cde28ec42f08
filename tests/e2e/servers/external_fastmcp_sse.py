"""A small FastMCP server on the legacy HTTP+SSE transport (2024-11-05), started by the host as
an external `transport = "sse"` target in the test_external_*.py tests.

Usage: python external_fastmcp_sse.py PORT
Tools: echo, whoami (the server's pid, to tell a restarted server from the old one).
"""

import os
import sys

from fastmcp import FastMCP

mcp = FastMCP("external-fastmcp-sse")


@mcp.tool
def echo(message: str) -> str:
    """Echoes the message."""
    return f"Echo: {message}"


@mcp.tool
def whoami() -> str:
    """The pid of this server process."""
    return str(os.getpid())


if __name__ == "__main__":
    mcp.run(transport="sse", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False)
