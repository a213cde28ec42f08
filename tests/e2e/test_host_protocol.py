"""The memory target over streamable HTTP, with the official Python SDK in both protocol
families: the stateless 2026-07-28 revision and the initialize/session revisions."""

from __future__ import annotations

import anyio
import pytest

from _host_util import jsonrpc, mcp_client, raw_request


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_sdk_client_lists_tools_and_is_counted_as_a_session(host, tmp_path, mode):
    project = tmp_path / "project"
    project.mkdir()
    headers = host.headers(project) | {"Mcp-Proxy-Instance": "e2e-instance-1"}

    async def go():
        async with mcp_client(host.url(), headers, mode) as client:
            tools = await client.list_tools()
            assert isinstance(tools.tools, list)
            status, body = host.api("GET", "/sessions")
            assert status == 200
            mine = [s for s in body["sessions"] if s["target"] == "memory"]
            assert len(mine) == 1, body
            session = mine[0]
            assert session["project_path"] == str(project)
            assert session["requests"] >= 1
            assert session["kind"] == ("stateless" if mode == "2026-07-28" else "session")
            if mode == "2026-07-28":
                assert session["id"] == "proxy:e2e-instance-1"

    anyio.run(go)
    if mode == "legacy":
        # The SDK DELETEs its session on close: the registry forgets it.
        status, body = host.api("GET", "/sessions")
        assert [s for s in body["sessions"] if s["kind"] == "session"] == []


def test_session_revision_wire_details(host):
    auth = host.headers()
    base = auth | {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = jsonrpc("initialize", {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}})
    status, headers, _ = raw_request(host.ports["memory"], "POST", "/mcp", base, init)
    assert status == 200
    session = headers["mcp-session-id"]
    with_session = base | {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-03-26"}
    status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", with_session, jsonrpc("notifications/initialized", id=None))
    assert status == 202
    # An unknown protocol version is refused.
    status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", with_session | {"MCP-Protocol-Version": "1999-01-01"}, jsonrpc("tools/list", id=2))
    assert status == 400
    # GET without a session cannot be a stream: 405.
    status, _, _ = raw_request(host.ports["memory"], "GET", "/mcp", auth | {"Accept": "text/event-stream"})
    assert status == 405
    status, _, _ = raw_request(host.ports["memory"], "DELETE", "/mcp", with_session)
    assert status == 200, "the SDKs log a 202 as a failed termination"
    status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", with_session, jsonrpc("tools/list", id=3))
    assert status == 404, "a gone session is 404 so that clients re-initialize"


def test_idle_session_expires_and_its_id_is_gone(home):
    from conftest import start_host, wait_until

    host = start_host(home)
    config = home.state / "config.toml"
    config.write_text(config.read_text().replace("[manager]\n", "[manager]\nsession_idle_timeout_secs = 1\n"))
    try:
        status, body = host.api("POST", "/config/reload")
        assert status == 200, body
        base = host.headers() | {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        init = jsonrpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "idle", "version": "0"}})
        status, headers, _ = raw_request(host.ports["memory"], "POST", "/mcp", base, init)
        session = headers["mcp-session-id"]
        assert [s["id"] for s in host.api("GET", "/sessions")[1]["sessions"]] == [session]
        # Idle for 1 s, swept every second: waited for, not slept on (a loaded machine is slower).
        wait_until(lambda: host.api("GET", "/sessions")[1]["sessions"] == [], timeout=30, what="the idle session to expire")
        status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", base | {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-06-18"}, jsonrpc("tools/list", id=2))
        assert status == 404, "the expired session's resources were freed"
    finally:
        assert host.stop() == 0
