"""An official Python SDK server (streamable HTTP, stateless, so 2026-07-28 is served) with a
tool whose `region` argument is mirrored into an `Mcp-Param-Region` header, which the SDK's
server checks against the body, and a slow tool that notes when it is cancelled. For the
proxy's tests.

Usage: python sdk_param_header_server.py PORT
"""

import asyncio
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field

from mcp.server.mcpserver import MCPServer

server = MCPServer("param-header-test")


@server.tool()
def deploy(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})], size: int = 1) -> str:
    """Pretends to deploy `size` units to `region`."""
    return f"deployed {size} to {region}"


@server.tool()
async def slow(seconds: float, marker: str) -> str:
    """Sleeps; if cancelled meanwhile (its connection closed), writes `marker`."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        Path(marker).write_text("cancelled")
        raise
    return "slept"


if __name__ == "__main__":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[1]), stateless_http=True)
