"""External servers that speak HTTP themselves, started and watched by the host: a FastMCP server
on the legacy `sse` transport and server-everything on streamable HTTP. Both are started, used
with the official SDK, killed (and restarted by the host), and stopped with the host."""

from __future__ import annotations

import os
import signal

import anyio
from mcp import Client
from mcp.client.sse import sse_client

from _external_util import fastmcp_sse, http_everything, pid_alive, target, wait_state
from conftest import start_host, wait_until


def text_of(result) -> str:
    return "".join(c.text for c in result.content if getattr(c, "text", None))


async def use_fastmcp(port: int) -> str:
    """Echo through the legacy SSE transport; answers the server's pid."""
    async with Client(sse_client(f"http://127.0.0.1:{port}/sse"), mode="legacy") as c:
        assert text_of(await c.call_tool("echo", {"message": "sse"})) == "Echo: sse"
        return text_of(await c.call_tool("whoami", {}))


async def use_everything(port: int) -> None:
    async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as c:
        assert text_of(await c.call_tool("echo", {"message": "http"})) == "Echo: http"


def test_sse_and_streamable_http_children_started_restarted_and_stopped(home):
    host = start_host(home, fastmcp_sse() + "\n" + http_everything(), wait_for=("memory",))
    pids = {}
    try:
        fast = wait_state(host, "fastmcp", "running")
        every = wait_state(host, "everything-http", "running")
        assert fast["transport"] == "sse" and fast["url"].endswith("/sse")
        assert fast["log_path"].endswith("fastmcp.log")
        for t in (fast, every):
            assert t["pid"] and t["pid"] != host.proc.pid
            # Each child leads its own process group: a Ctrl-C to the host's group misses it.
            assert os.getpgid(t["pid"]) == t["pid"]
            assert os.getpgid(t["pid"]) != os.getpgid(host.proc.pid)

        served_by = anyio.run(use_fastmcp, host.ports["fastmcp"])
        assert int(served_by) == fast["pid"]
        anyio.run(use_everything, host.ports["everything-http"])

        for name, t in (("fastmcp", fast), ("everything-http", every)):
            os.kill(t["pid"], signal.SIGKILL)
            again = wait_state(host, name, "running", extra=lambda n, old=t["pid"]: n["pid"] not in (None, old))
            assert again["restarts"] >= 1, again
            pids[name] = again["pid"]
            assert not pid_alive(t["pid"])

        served_by = anyio.run(use_fastmcp, host.ports["fastmcp"])
        assert int(served_by) == pids["fastmcp"]
        anyio.run(use_everything, host.ports["everything-http"])
        assert target(host, "memory")["state"] == "running"
    finally:
        assert host.stop() == 0
    for pid in pids.values():
        wait_until(lambda: not pid_alive(pid), timeout=10, what="child stopped with the host")
