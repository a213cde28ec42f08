"""The manager API's routes and their JSON shapes, and the CLI that calls them."""

from __future__ import annotations

import http.client
import json
import subprocess
import time

from conftest import MANAGER_BIN, wait_until


def cli(home, *args, timeout=60):
    return subprocess.run([str(MANAGER_BIN), *args], env=home.env, capture_output=True, text=True, timeout=timeout)


def test_status_shape(host):
    status, body = host.api("GET", "/status")
    assert status == 200
    for key in ("version", "pid", "uptime_secs", "manager_port", "targets"):
        assert key in body, key
    assert body["manager_port"] == host.manager_port
    (memory,) = [t for t in body["targets"] if t["name"] == "memory"]
    assert memory["kind"] == "builtin"
    assert memory["transport"] == "streamable-http"
    assert memory["port"] == host.ports["memory"]
    assert memory["state"] == "running"
    assert memory["pid"] == host.proc.pid
    assert memory["sessions"] == 0
    assert memory["restarts"] == 0
    assert memory["last_error"] is None
    assert memory["log_path"].endswith("memory.log")
    assert memory["url"] == host.url()


def test_sessions_shape(host):
    status, body = host.api("GET", "/sessions")
    assert status == 200
    assert body == {"sessions": []}


def test_daemon_actions(host):
    status, body = host.api("POST", "/daemons/memory/restart")
    assert status == 200, body
    assert body["state"] == "running" and body["target"]["restarts"] == 1
    status, body = host.api("POST", "/daemons/memory/stop")
    assert status == 200 and body["state"] == "stopped"
    assert not (host.home.state / "memory.lock").exists()
    wait_until(lambda: not _health(host.ports["memory"]), timeout=5, what="memory port closed")
    status, body = host.api("POST", "/daemons/memory/ensure")
    assert status == 200 and body["state"] == "running"
    assert _health(host.ports["memory"]), "ensure answers only once the target is ready"
    status, body = host.api("POST", "/daemons/nope/ensure")
    assert status == 404
    assert "nope" in body["error"] and "memory" in body["error"]
    status, body = host.api("POST", "/daemons/memory/explode")
    assert status == 404 and "error" in body


def test_config_reload_and_generate(host):
    status, body = host.api("POST", "/config/reload")
    assert status == 200
    assert body["added"] == [] and body["removed"] == [] and body["restarted"] == []
    status, body = host.api("POST", "/config/generate", {"client": "claude-code", "dry_run": True})
    assert status == 200, body
    assert body["dry_run"] is True and body["written"] is False
    assert body["file"].endswith(".claude.json")
    assert "memory" in body["diff"]
    assert not (host.home.home / ".claude.json").exists(), "a dry run writes nothing"
    status, body = host.api("POST", "/config/generate", {"client": "no-such-client"})
    assert status == 400 and "no-such-client" in body["error"]


def test_memory_dbs_and_graph_after_a_write(host, tmp_path):
    import anyio

    from _host_util import mcp_client

    project = tmp_path / "proj"
    project.mkdir()

    async def write():
        async with mcp_client(host.url(), host.headers(project), "legacy") as client:
            result = await client.call_tool("create_entities", {"entities": [
                {"name": "Ada", "entityType": "person", "observations": ["wrote notes"]},
                {"name": "Engine", "entityType": "machine", "observations": []},
            ]})
            assert not result.is_error
            await client.call_tool("create_relations", {"relations": [{"from": "Ada", "to": "Engine", "relationType": "designed"}]})

    anyio.run(write)
    status, body = host.api("GET", "/memory/dbs")
    assert status == 200
    (db,) = [d for d in body["dbs"] if d["project"] == str(project)]
    assert db["path"] == str(project / ".claude" / "memory.db")
    assert db["exists"] is True and db["size_bytes"] > 0
    assert (db["entities"], db["relations"], db["observations"]) == (2, 1, 1)
    assert db["last_write"]
    status, page = host.api("GET", f"/memory/dbs/{db['id']}/graph?q=ada&offset=0&limit=10")
    assert status == 200
    assert [e["name"] for e in page["entities"]] == ["Ada"] and page["total"] == 1
    assert page["relations"] == [{"from": "Ada", "to": "Engine", "relationType": "designed"}]
    status, body = host.api("GET", "/memory/dbs/does-not-exist/graph?q=x")
    assert status == 404 and "does-not-exist" in body["error"]


def test_events_stream_reports_state_changes(host):
    conn = http.client.HTTPConnection("127.0.0.1", host.manager_port, timeout=10)
    conn.request("GET", "/events", headers=host.headers() | {"Accept": "text/event-stream"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type").startswith("text/event-stream")
    first = _read_event(response)
    assert first[0] == "status" and isinstance(first[1]["targets"], list)
    host.api("POST", "/daemons/memory/restart")
    states = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "running" not in states:
        kind, data = _read_event(response)
        if kind == "change" and data.get("type") == "target" and data.get("name") == "memory":
            states.append(data["state"])
    conn.close()
    assert states[:1] == ["stopped"] and "running" in states, states


def test_cli_status_start_stop_logs(host):
    result = cli(host.home, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["targets"][0]["name"] == "memory"
    result = cli(host.home, "status")
    assert result.returncode == 0
    assert "TARGET" in result.stdout and "memory" in result.stdout and "running" in result.stdout
    dashboard = [line for line in result.stdout.splitlines() if line.startswith("Dashboard: ")]
    assert dashboard == [f"Dashboard: {host.manager_url}/?token={host.home.token}"], result.stdout
    assert "Dashboard" not in cli(host.home, "status", "--json").stdout, "the JSON is the API's answer"
    result = cli(host.home, "stop", "memory")
    assert result.returncode == 0 and "stopped" in result.stdout
    result = cli(host.home, "start", "memory")
    assert result.returncode == 0 and "running" in result.stdout
    result = cli(host.home, "restart", "nope")
    assert result.returncode == 1 and "nope" in result.stderr
    result = cli(host.home, "logs", "manager")
    assert result.returncode == 0 and "host started" in result.stdout
    result = cli(host.home, "logs", "never-ran")
    assert result.returncode == 1 and "no log" in result.stderr


def test_cli_says_how_to_start_a_missing_manager(home):
    from conftest import free_port

    home.write_config(f"[manager]\nport = {free_port()}\n")
    (home.state / "token").write_text("0" * 64)
    for args in (("status",), ("status", "--json"), ("start", "memory")):
        result = cli(home, *args)
        assert result.returncode == 3, (args, result)
        assert "not running" in result.stderr and "mcp-session-manager daemon" in result.stderr


def test_shutdown_hands_over_cleanly(host):
    status, body = host.api("POST", "/shutdown")
    assert status == 202
    assert host.proc.wait(15) == 0
    for name in ("manager.lock", "memory.lock"):
        assert not (host.home.state / name).exists(), name


def _health(port):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/health")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _read_event(response):
    kind, data = "message", []
    while True:
        line = response.fp.readline().decode().rstrip("\r\n")
        if line == "":
            if data:
                return kind, json.loads("\n".join(data))
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.lstrip(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)


def test_remote_targets_are_only_probed(home):
    from conftest import free_port, start_host

    dead = free_port()
    host = start_host(home, f'[targets.up]\nurl = "http://127.0.0.1:{{port:memory}}/health"\n[targets.down]\nurl = "http://127.0.0.1:{dead}/mcp"\n')
    try:
        _, body = host.api("GET", "/status")
        targets = {t["name"]: t for t in body["targets"]}
        assert targets["up"]["kind"] == "remote" and targets["up"]["reachable"] is True
        assert targets["up"]["state"] == "running" and targets["up"]["pid"] is None
        assert targets["down"]["reachable"] is False and targets["down"]["state"] == "failed"
        assert "unreachable" in targets["down"]["last_error"]
        status, body = host.api("POST", "/daemons/up/start")
        assert status == 400 and "remote" in body["error"]
    finally:
        assert host.stop() == 0


def test_cli_logs_follow_prints_what_is_appended(home):
    log = home.state / "memory.log"
    log.write_text("first line\n")
    proc = subprocess.Popen([str(MANAGER_BIN), "logs", "memory", "--follow"], env=home.env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "first line\n"
        with log.open("a") as f:
            f.write("appended later\n")
        assert proc.stdout.readline() == "appended later\n"
    finally:
        proc.kill()
        proc.wait()
