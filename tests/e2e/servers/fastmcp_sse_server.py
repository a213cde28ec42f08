"""A FastMCP server on the legacy HTTP+SSE transport (2024-11-05), for the proxy's tests.

Usage: python fastmcp_sse_server.py PORT
Tools: echo, slow_echo (sleeps, for in-flight requests), progress (reports progress),
notify (sends a log notification), ask (elicits a value from the client).
"""

import asyncio
import sys

from fastmcp import Context, FastMCP

mcp = FastMCP("proxy-test-fastmcp")


@mcp.tool
def echo(message: str) -> str:
    """Echoes the message."""
    return f"Echo: {message}"


@mcp.tool
async def slow_echo(message: str, seconds: float = 0.5) -> str:
    """Echoes the message after a pause."""
    await asyncio.sleep(seconds)
    return f"Echo: {message}"


@mcp.tool
async def progress(steps: int, ctx: Context, interval: float = 0.02) -> str:
    """Reports `steps` progress notifications, `interval` seconds apart."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps)
        await asyncio.sleep(interval)
    return f"done {steps}"


@mcp.tool
async def notify(text: str, ctx: Context) -> str:
    """Sends a log notification, then answers."""
    await ctx.info(text)
    return "notified"


@mcp.tool
async def ask(question: str, ctx: Context) -> str:
    """Asks the client (elicitation) and returns its answer."""
    answer = await ctx.elicit(question, str)
    if answer.action == "accept":
        return f"client said: {answer.data}"
    return f"client {answer.action}"


if __name__ == "__main__":
    mcp.run(transport="sse", host="127.0.0.1", port=int(sys.argv[1]), show_banner=False)
