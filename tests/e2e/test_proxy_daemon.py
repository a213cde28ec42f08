"""The proxy in front of our own memory daemon (2026-07-28 and session-revision clients of the
official Python SDK), what it sends on the wire, and bad input: malformed and oversized lines,
an unknown target, a port held by a foreign program."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from mcp import Client

from conftest import Home, free_port, start_host, wait_until
from _proxy_util import RawProxy, daemon_pids, pipelined_handshake, port_open, proxy_params, stop_daemons, tool_text, url_target, write_config

PLAIN_SERVER = Path(__file__).parent / "servers" / "plain_json_server.py"
MEMORY_TOOLS = {"create_entities", "create_relations", "add_observations", "delete_entities",
                "delete_observations", "delete_relations", "read_graph", "search_nodes", "open_nodes"}


@pytest.mark.parametrize("mode,version", [("2026-07-28", "2026-07-28"), ("legacy", None)])
def test_memory_daemon_through_the_proxy(home, tmp_path, mode, version):
    host = start_host(home)
    project = tmp_path / f"project-{mode}"
    project.mkdir()
    try:
        async def scenario():
            async with Client(proxy_params(home, "memory", project=project), mode=mode) as client:
                if version:
                    assert client.protocol_version == version
                else:
                    assert client.protocol_version.startswith("2025-")
                names = {t.name for t in (await client.list_tools()).tools}
                assert MEMORY_TOOLS <= names, names
                created = await client.call_tool("create_entities", {"entities": [
                    {"name": f"proxy-{mode}", "entityType": "test", "observations": ["through the proxy"]}]})
                assert not created.is_error, tool_text(created)
                found = await client.call_tool("search_nodes", {"query": "through the proxy"})
                assert f"proxy-{mode}" in tool_text(found)

        asyncio.run(asyncio.wait_for(scenario(), 60))
        # The project header chose the DB: it lives in the project.
        assert (project / ".claude" / "memory.db").exists()
        assert daemon_pids(home) == [host.proc.pid], "the proxy used the running host, started nothing"
    finally:
        host.stop()


def _plain_server(home, initialize_delay: float = 0.0):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(PLAIN_SERVER), str(port), str(initialize_delay)],
                            stdin=subprocess.DEVNULL)
    wait_until(lambda: port_open(port), what="plain JSON server")
    return proc, port


def test_headers_on_the_wire_and_plain_json(home, tmp_path):
    proc, port = _plain_server(home)
    try:
        write_config(home, url_target("plain", f"http://127.0.0.1:{port}/rpc", "http")
                     + 'headers = { X-Team = "blue" }\n')
        project = tmp_path / "proj"
        project.mkdir()
        proxy = RawProxy(home, "plain", extra_env={"CLAUDE_PROJECT_DIR": str(project)})
        try:
            proxy.request(1, "tools/list")
            proxy.request(2, "tools/call", {"name": "héllo tool", "arguments": {}, "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {}}})
            proxy.send({"jsonrpc": "2.0", "method": "notifications/whatever"})
            proxy.request(3, "x/unknown-method", [1, 2])
            answers = proxy.read_answers([1, 2, 3])
            first = answers[1]["result"]["headers"]
            assert first["mcp-project-path"] == str(project)
            uuid.UUID(first["mcp-proxy-instance"])
            assert first["accept"] == "application/json, text/event-stream"
            assert first["content-type"] == "application/json"
            assert first["x-team"] == "blue"
            assert "authorization" not in first, "our token never goes to a foreign url target"
            second = answers[2]["result"]["headers"]
            assert second["mcp-method"] == "tools/call"
            assert second["mcp-name"] == "=?base64?aMOpbGxvIHRvb2w=?="
            assert second["mcp-protocol-version"] == "2026-07-28"
            assert second["mcp-proxy-instance"] == first["mcp-proxy-instance"]
            assert answers[3]["result"]["method"] == "x/unknown-method", "unknown methods pass verbatim"
        finally:
            proxy.kill()
    finally:
        proc.terminate()
        proc.wait()


def test_bad_lines_get_errors_and_the_proxy_carries_on(home):
    proc, port = _plain_server(home)
    try:
        write_config(home, url_target("plain", f"http://127.0.0.1:{port}/rpc", "http"),
                     proxy="[proxy]\nmax_line_bytes = 2000\n")
        log_file = home.root / "logs" / "proxy.log"
        proxy = RawProxy(home, "plain", args=("--log-file", str(log_file)))
        try:
            for bad in ["not json", "{\"jsonrpc\":", "[]", "42"]:
                proxy.send(bad)
                answer = proxy.read()
                assert answer["id"] is None and answer["error"]["code"] == -32700, (bad, answer)
            huge = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                               "params": {"name": "x", "arguments": {"blob": "z" * 500_000}}})
            proxy.send(huge)
            answer = proxy.read()
            assert answer["id"] == 7 and answer["error"]["code"] == -32600, answer
            assert "max_line_bytes" in answer["error"]["message"]
            proxy.request(8, "ping")
            assert proxy.read_answers([8])[8]["result"]["method"] == "ping"
            assert proxy.proc.poll() is None
            proxy.close_stdin()
            assert proxy.wait() == 0
            logged = log_file.read_text()
            assert "refused a line over [proxy] max_line_bytes" in logged, logged
            assert "\x1b[" not in logged, "no terminal colours in the log file"
        finally:
            proxy.kill()
    finally:
        proc.terminate()
        proc.wait()


def test_unknown_target_answers_with_a_clear_error(home):
    write_config(home, "")
    proxy = RawProxy(home, "no-such-target")
    try:
        proxy.request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                        "clientInfo": {"name": "t", "version": "1"}})
        answer = proxy.read_answers([1])[1]
        message = answer["error"]["message"]
        assert "unknown target `no-such-target`" in message and "memory" in message, message
        assert "config.toml" in message
        proxy.request(2, "tools/list")
        assert "unknown target" in proxy.read_answers([2])[2]["error"]["message"]
        assert proxy.proc.poll() is None, "the pipe stays open while stdin is"
        proxy.close_stdin()
        assert proxy.wait() == 0
        assert "unknown target" in proxy.stderr()
    finally:
        proxy.kill()


def test_port_held_by_a_foreign_program_is_named(home):
    foreign_port = free_port()
    foreign = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(foreign_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(home.root))
    try:
        wait_until(lambda: port_open(foreign_port), what="foreign server")
        write_config(home, "", memory_port=foreign_port)
        proxy = RawProxy(home, "memory")
        try:
            started = time.monotonic()
            proxy.request(1, "tools/list")
            message = proxy.read_answers([1])[1]["error"]["message"]
            assert f"port {foreign_port}" in message and "another program" in message, message
            assert time.monotonic() - started < 10
            assert daemon_pids(home) == [], "no daemon is started onto a foreign port"
        finally:
            proxy.kill()
    finally:
        foreign.terminate()
        foreign.wait()
        stop_daemons(home)


def test_a_host_of_another_state_dir_on_our_ports_is_named(home, tmp_path):
    host = start_host(home)
    other_state = tmp_path / "other-state"
    other_state.mkdir()
    other = Home(root=home.root, home=home.home, state=other_state,
                 env=dict(home.env, MCP_SESSION_MANAGER_HOME=str(other_state)))
    write_config(other, "", manager_port=host.manager_port, memory_port=host.ports["memory"])
    try:
        proxy = RawProxy(other, "memory")
        try:
            proxy.request(1, "tools/list")
            message = proxy.read_answers([1])[1]["error"]["message"]
            assert f"a server answers on 127.0.0.1:{host.ports['memory']}" in message, message
            assert "another state dir" in message and str(other_state / "config.toml") in message, message
        finally:
            proxy.kill()
        assert daemon_pids(home) == [host.proc.pid], "nothing else was started"
    finally:
        host.stop()

def test_stdio_target_served_by_the_host_through_the_proxy(home):
    from _proxy_util import EVERYTHING

    host = start_host(
        home,
        extra_targets=f'[targets.everything]\ncommand = "node"\nargs = ["{EVERYTHING}", "stdio"]\n'
        'transport = "stdio"\nport = {port:everything}\n',
        wait_for=(),
    )
    try:
        async def scenario():
            async with Client(proxy_params(home, "everything"), mode="legacy") as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert "echo" in names, names
                assert tool_text(await client.call_tool("echo", {"message": "bridged"})) == "Echo: bridged"

        asyncio.run(asyncio.wait_for(scenario(), 60))
        assert daemon_pids(home) == [host.proc.pid]
    finally:
        host.stop()


def test_mcp_param_headers_for_a_2026_server(home):
    """A 2026-07-28 server that checks `Mcp-Param-*` against the body accepts calls made
    through the proxy (which learns the annotations from the tools/list it forwards)."""
    port = free_port()
    script = Path(__file__).parent / "servers" / "sdk_param_header_server.py"
    log = open(home.root / "sdk-server.log", "ab")
    server = subprocess.Popen([sys.executable, str(script), str(port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_until(lambda: server.poll() is not None or port_open(port), what="SDK server")
        write_config(home, url_target("sdk", f"http://127.0.0.1:{port}/mcp"))

        async def scenario():
            async with Client(proxy_params(home, "sdk"), mode="2026-07-28") as client:
                assert client.protocol_version == "2026-07-28"
                await client.list_tools()
                for region in ("eu-west", "süd ost"):
                    result = await client.call_tool("deploy", {"region": region, "size": 3})
                    assert not result.is_error, tool_text(result)
                    assert tool_text(result) == f"deployed 3 to {region}"

        asyncio.run(asyncio.wait_for(scenario(), 60))

        # The server does check: a call before any listing (no header learnt yet) is refused,
        # and the same call after the proxy forwarded a tools/list goes through.
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}
        call = {"name": "deploy", "arguments": {"region": "eu-west"}, "_meta": meta}
        proxy = RawProxy(home, "sdk")
        try:
            proxy.request(1, "tools/call", call)
            first = proxy.read_answers([1])[1]
            assert "error" in first or first["result"].get("isError"), first
            proxy.request(2, "tools/list", {"_meta": meta})
            assert "result" in proxy.read_answers([2])[2]
            proxy.request(3, "tools/call", call)
            third = proxy.read_answers([3])[3]
            assert third["result"]["content"][0]["text"] == "deployed 1 to eu-west", third

            # Cancelling a stateless request closes its POST, which the server sees.
            marker = home.root / "cancelled.marker"
            proxy.request(4, "tools/call", {"name": "slow", "arguments": {"seconds": 5, "marker": str(marker)},
                                            "_meta": meta})
            time.sleep(0.5)
            proxy.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}})
            wait_until(marker.exists, timeout=5, what="the server to see the cancellation")
            proxy.request(5, "tools/call", call)
            assert proxy.read_answers([5])[5]["result"]["content"][0]["text"] == "deployed 1 to eu-west"
        finally:
            proxy.kill()
    finally:
        server.terminate()
        server.wait()


def test_requests_wait_for_a_slow_initialize(home):
    """Longer than the 5 s a notifications/initialized POST may hold later messages: the
    request written right after initialize still goes out only once initialize is answered."""
    proc, port = _plain_server(home, initialize_delay=6)
    try:
        write_config(home, url_target("plain", f"http://127.0.0.1:{port}/rpc", "http"))
        proxy = RawProxy(home, "plain")
        try:
            proxy.request(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                            "clientInfo": {"name": "eager", "version": "1"}})
            proxy.request(2, "tools/list")
            answers = proxy.read_answers([1, 2])
            assert answers[1]["result"]["answered_before"] == 0
            assert answers[2]["result"]["answered_before"] == 1, "tools/list overtook initialize"
        finally:
            proxy.kill()
    finally:
        proc.terminate()
        proc.wait()


def test_a_client_that_does_not_wait_for_the_initialize_answer(home):
    """Our own daemon, the case found by hand: the pipelined request got `400 Session ID is
    required` because it left before initialize's answer brought the session id."""
    host = start_host(home)
    try:
        pipelined_handshake(home, "memory")
    finally:
        host.stop()
