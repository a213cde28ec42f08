"""External HTTP servers started with `{port}`: the child listens on an internal loopback port
and the target's port is the host's guarded front (token, Origin, session tracking), which
streams every request and answer through. server-everything (streamable HTTP, `PORT` env) and a
FastMCP server (legacy SSE, port argument) are used with the official SDK client directly and
through mcp-session-proxy; a child without `{port}` still runs, reported as unguarded."""

from __future__ import annotations

import asyncio
import os
import signal

from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from _external_util import EVERYTHING, SERVERS, http_everything, target, wait_state
from _host_util import raw_request
from _proxy_util import proxy_params, tool_text
from conftest import FASTMCP_PYTHON, start_host

FASTMCP_SERVER = SERVERS / "fastmcp_sse_server.py"


def guarded_everything(name: str = "every") -> str:
    return (
        f'[targets.{name}]\ncommand = "node"\nargs = ["{EVERYTHING}", "streamableHttp"]\n'
        f'transport = "streamable-http"\nport = {{port:{name}}}\nenv = {{ PORT = "{{port}}" }}\n'
    )


def guarded_fastmcp(name: str = "fast") -> str:
    return (
        f'[targets.{name}]\ncommand = "{FASTMCP_PYTHON}"\nargs = ["{FASTMCP_SERVER}", "{{port}}"]\n'
        f'transport = "sse"\nport = {{port:{name}}}\n'
    )


def everything_direct(host):
    def make(on_log) -> Client:
        http = create_mcp_http_client(headers=host.headers())
        return Client(streamable_http_client(host.url("every"), http_client=http), mode="legacy", logging_callback=on_log)

    return make


def everything_proxied(host):
    return lambda on_log: Client(proxy_params(host.home, "every"), mode="legacy", logging_callback=on_log)


async def use_everything(make_client, host=None) -> None:
    got_log = asyncio.Event()

    async def on_log(params):
        got_log.set()

    async with make_client(on_log) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "trigger-long-running-operation"} <= names
        if host is not None:
            # The front tracks the session like any target's.
            status, body = await asyncio.to_thread(host.api, "GET", "/sessions")
            assert status == 200 and any(s["target"] == "every" for s in body["sessions"]), body
        assert tool_text(await client.call_tool("echo", {"message": "guarded"})) == "Echo: guarded"
        progress: list = []

        async def on_progress(value, total, message):
            progress.append(value)

        done = await client.call_tool(
            "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
        )
        assert "completed" in tool_text(done)
        assert progress == [1, 2, 3]
        # A notification the server sends on its own, on the long-lived GET stream.
        await client.call_tool("toggle-simulated-logging", {})
        await asyncio.wait_for(got_log.wait(), 10)


async def use_fastmcp(client: Client, logs: list) -> None:
    async with client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"echo", "progress", "notify"} <= names
        assert tool_text(await client.call_tool("echo", {"message": "sse"})) == "Echo: sse"
        progress: list = []

        async def on_progress(value, total, message):
            progress.append(value)

        assert tool_text(await client.call_tool("progress", {"steps": 3}, progress_callback=on_progress)) == "done 3"
        assert progress == [1, 2, 3]
        assert tool_text(await client.call_tool("notify", {"text": "through the front"})) == "notified"
        assert any("through the front" in str(entry.data) for entry in logs), logs


def fastmcp_client(host, logs: list, direct: bool) -> Client:
    async def on_log(params):
        logs.append(params)

    if direct:
        transport = sse_client(f"http://127.0.0.1:{host.ports['fast']}/sse", headers=host.headers())
        return Client(transport, mode="legacy", logging_callback=on_log)
    return Client(proxy_params(host.home, "fast"), mode="legacy", logging_callback=on_log)


def test_children_with_port_placeholder_are_served_behind_the_guard(home):
    host = start_host(
        home, guarded_everything() + "\n" + guarded_fastmcp() + "\n" + http_everything("plain"), wait_for=("memory",)
    )
    try:
        every = wait_state(host, "every", "running")
        fast = wait_state(host, "fast", "running")
        plain = wait_state(host, "plain", "running")
        assert every["guarded"] is True and fast["guarded"] is True
        assert target(host, "memory")["guarded"] is True
        assert plain["guarded"] is False
        log = (home.root / "host.stderr").read_text()
        assert log.count('"{port}"') >= 1 and "plain" in log, log[-3000:]

        for name, path in (("every", "/mcp"), ("fast", "/sse")):
            port = host.ports[name]
            # The front answers /health itself, like every target port.
            status, _, body = raw_request(port, "GET", "/health")
            assert status == 200, body
            # The child is reached only through the guard: no token, a foreign Origin.
            status, _, body = raw_request(port, "GET", path, {"Accept": "text/event-stream"})
            assert status == 401, (name, status, body)
            status, _, body = raw_request(
                port,
                "POST",
                path,
                {**host.headers(), "Origin": "http://evil.example", "Content-Type": "application/json"},
                b"{}",
            )
            assert status == 403, (name, status, body)

        asyncio.run(
            asyncio.wait_for(use_everything(everything_direct(host), host), 60)
        )
        logs: list = []
        asyncio.run(asyncio.wait_for(use_fastmcp(fastmcp_client(host, logs, direct=True), logs), 60))

        # A killed child is restarted (on an internal port again); the front keeps working.
        os.kill(every["pid"], signal.SIGKILL)
        wait_state(host, "every", "running", extra=lambda t: t["pid"] not in (None, every["pid"]))
        asyncio.run(asyncio.wait_for(use_everything(everything_direct(host)), 60))
    finally:
        assert host.stop() == 0


def test_guarded_children_through_the_session_proxy(home):
    host = start_host(home, guarded_everything() + "\n" + guarded_fastmcp(), wait_for=("memory",))
    try:
        wait_state(host, "every", "running")
        wait_state(host, "fast", "running")
        asyncio.run(asyncio.wait_for(use_everything(everything_proxied(host)), 60))
        logs: list = []
        asyncio.run(asyncio.wait_for(use_fastmcp(fastmcp_client(host, logs, direct=False), logs), 60))
    finally:
        assert host.stop() == 0
