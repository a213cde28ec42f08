"""A FastMCP server on streamable HTTP over TLS, standing in for a remote (https) MCP server in
test_remote_tls.py. Its certificate comes from a CA the test made and hands to the host.

Usage: python tls_http_server.py PORT CERT_PEM KEY_PEM
Tools: echo, headers (the request headers it saw, as JSON).
"""

import json
import sys

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_http_headers

mcp = FastMCP("remote-tls")


@mcp.tool
def echo(message: str) -> str:
    """Echoes the message."""
    return f"Echo: {message}"


@mcp.tool
def headers() -> str:
    """The HTTP request headers this call came with."""
    return json.dumps(get_http_headers(include_all=True))


if __name__ == "__main__":
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    mcp.run(
        transport="http",
        host="127.0.0.1",
        port=port,
        show_banner=False,
        uvicorn_config={"ssl_certfile": cert, "ssl_keyfile": key},
    )
