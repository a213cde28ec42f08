"""External servers the host starts and watches: readiness, restart after a kill, crash loop
reported while the other targets stay up, children stopped with the host."""

from __future__ import annotations

import os
import signal

import anyio

from conftest import NODE_MODULES, start_host, wait_until, http_ok
from mcp import Client

EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def target(host, name):
    status, body = host.api("GET", "/status")
    assert status == 200
    (t,) = [t for t in body["targets"] if t["name"] == name]
    return t


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_crash_loop_is_reported_and_others_stay_up(home):
    host = start_host(home, '[targets.broken]\ncommand = "sh"\nargs = ["-c", "echo boom >&2; exit 3"]\ntransport = "streamable-http"\nport = {port:broken}\n')
    try:
        broken = wait_until(lambda: (t := target(host, "broken"))["state"] == "crash-loop" and t, timeout=30, what="crash-loop")
        assert broken["last_error"] and "crash" in broken["last_error"]
        assert broken["log_path"].endswith("broken.log")
        assert "boom" in open(broken["log_path"]).read()
        assert target(host, "memory")["state"] == "running"
        assert http_ok(f"http://127.0.0.1:{host.ports['memory']}/health")
        status, body = host.api("POST", "/daemons/broken/ensure", timeout=60)
        assert status == 503 and "broken" in body["error"]
    finally:
        assert host.stop() == 0


def test_external_http_server_is_started_restarted_after_a_kill_and_stopped_with_the_host(home):
    host = start_host(
        home,
        f'[targets.everything]\ncommand = "node"\nargs = ["{EVERYTHING}", "streamableHttp"]\n'
        'transport = "streamable-http"\nport = {port:everything}\nenv = { PORT = "{port:everything}" }\n',
        wait_for=("memory",),
    )
    try:
        first = wait_until(lambda: (t := target(host, "everything"))["state"] == "running" and t, timeout=60, what="everything running")
        assert first["pid"] and first["pid"] != host.proc.pid
        assert first["kind"] == "process" and first["transport"] == "streamable-http"

        async def use():
            async with Client(f"http://127.0.0.1:{host.ports['everything']}/mcp", mode="legacy") as client:
                tools = await client.list_tools()
                assert any(t.name == "echo" for t in tools.tools)

        anyio.run(use)
        os.kill(first["pid"], signal.SIGKILL)
        second = wait_until(
            lambda: (t := target(host, "everything"))["state"] == "running" and t["pid"] not in (None, first["pid"]) and t,
            timeout=60, what="everything restarted",
        )
        assert second["restarts"] >= 1
        anyio.run(use)
    finally:
        assert host.stop() == 0
    wait_until(lambda: not pid_alive(second["pid"]), timeout=10, what="child stopped with the host")
    assert not (home.state / "everything.lock").exists()
