"""`mcp-session-manager adopt` end to end: a realistic fleet in a temp HOME (server-everything,
the reference filesystem server rooted at the project, the reference memory server with its
file, a FastMCP server with a secret, a remote entry, a local-scope entry and a project
`.mcp.json`), adopted in one command, used by real clients (the Claude Code CLI, the official
Python SDK through our proxy), signalled as a new Claude Code window does, and undone."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

from conftest import (
    FASTMCP_PYTHON,
    MANAGER_BIN,
    NODE_BIN,
    PROXY_BIN,
    Home,
    start_host,
    wait_until,
)
from _proxy_util import RawProxy, proxy_params, tool_text

CLAUDE = NODE_BIN / "claude"
NOTES_SERVER = Path(__file__).parent / "servers" / "notes_stdio_server.py"
SECRET = "tok-SECRET-5f1e93"


def run_cli(home: Home, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MANAGER_BIN), *args], env=home.env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def write_fleet(home: Home, project: Path) -> dict[str, dict]:
    """The user's files before adoption; returns the original stdio entries by name."""
    user = {
        "everything": {"type": "stdio", "command": str(NODE_BIN / "mcp-server-everything"), "args": ["stdio"], "env": {}},
        "filesystem": {"command": str(NODE_BIN / "mcp-server-filesystem"), "args": ["."]},
        "memory": {
            "command": str(NODE_BIN / "mcp-server-memory"),
            "args": [],
            "env": {"MEMORY_FILE_PATH": str(home.root / "memory.jsonl")},
        },
        "notes": {"command": str(FASTMCP_PYTHON), "args": [str(NOTES_SERVER)], "env": {"NOTES_TOKEN": SECRET}},
        "remote": {"type": "http", "url": "http://127.0.0.1:9/mcp"},
    }
    local = {"local-everything": dict(user["everything"])}
    claude = {
        "numStartups": 7,
        "mcpServers": user,
        "projects": {
            str(project): {
                "allowedTools": ["mcp__filesystem__list_allowed_directories"],
                "hasTrustDialogAccepted": True,
                "enabledMcpjsonServers": ["proj-fs"],
                "mcpServers": local,
            }
        },
    }
    (home.home / ".claude.json").write_text(json.dumps(claude, indent=2) + "\n")
    project_file = {"mcpServers": {"proj-fs": {"command": str(NODE_BIN / "mcp-server-filesystem"), "args": ["."]}}}
    (project / ".mcp.json").write_text(json.dumps(project_file, indent=4) + "\n")
    stdio = {k: v for k, v in user.items() if "command" in v}
    return {**stdio, **local, **project_file["mcpServers"]}


def files_of(home: Home, project: Path) -> dict[str, bytes | None]:
    paths = [home.home / ".claude.json", project / ".mcp.json", home.state / "config.toml", home.state / "secrets.toml"]
    return {str(p): (p.read_bytes() if p.exists() else None) for p in paths}


def set_adopt_ports(home: Home) -> None:
    """A private port range, so that parallel runs on this machine never meet."""
    base = random.randrange(20000, 60000, 100)
    config = home.state / "config.toml"
    text = config.read_text().replace("[manager]\n", f"[manager]\nadopt_ports = [{base}, {base + 99}]\n", 1)
    config.write_text(text)


async def tool_names_direct(entry: dict, cwd: Path, env: dict) -> set[str]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(
        command=entry["command"], args=entry.get("args", []), env={**env, **entry.get("env", {})}, cwd=str(cwd)
    )
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            return {t.name for t in (await s.list_tools()).tools}


async def call_through_proxy(home: Home, target: str, project: Path, tool: str, arguments: dict | None = None):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with stdio_client(proxy_params(home, target, project=project)) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            result = await s.call_tool(tool, arguments or {}) if tool else None
            return names, result


def status(home: Home, host) -> dict:
    code, body = host.api("GET", "/status")
    assert code == 200, body
    return {t["name"]: t for t in body["targets"]}


def test_a_fleet_is_adopted_in_one_command_survives_new_windows_and_is_undone_exactly(home: Home, tmp_path: Path):
    project = tmp_path / "proj a"
    other = tmp_path / "proj b"
    project.mkdir()
    other.mkdir()
    (project / "a.txt").write_text("a")
    (other / "b.txt").write_text("b")
    originals = write_fleet(home, project)
    host = start_host(home)
    try:
        set_adopt_ports(home)
        # Claude Code has used the file before (it adds its own keys on first use).
        subprocess.run([str(CLAUDE), "mcp", "list"], env=home.env, cwd=project, capture_output=True, timeout=180)
        before = files_of(home, project)

        listed = run_cli(home, "adopt", "--list", "--json", cwd=project)
        assert listed.returncode == 0, listed.stderr
        found = {(s["name"], s["scope"]): s for s in json.loads(listed.stdout)["servers"]}
        assert found[("filesystem", "user")]["proposal"]["share"] == "per-project"
        assert found[("memory", "user")]["proposal"]["share"] == "shared"
        assert found[("everything", "user")]["proposal"]["share"] == "shared"
        assert found[("notes", "user")]["proposal"]["share"] == "per-session"
        assert found[("notes", "user")]["env_names"] == ["NOTES_TOKEN"]
        assert found[("remote", "user")]["proposal"]["share"] == "leave"
        assert ("local-everything", "local") in found and ("proj-fs", "project") in found
        human = run_cli(home, "adopt", "--list", cwd=project)
        assert "NOTES_TOKEN" in human.stdout

        direct_tools = {
            name: asyncio.run(tool_names_direct(originals[name], project, home.env))
            for name in ("everything", "filesystem", "notes")
        }

        dry = run_cli(home, "adopt", "--all", "--dry-run", cwd=project)
        assert dry.returncode == 0, dry.stderr
        assert "[targets.notes]" in dry.stdout and "--target" in dry.stdout
        assert files_of(home, project) == before, "a dry run writes nothing"

        started = time.monotonic()
        adopted = run_cli(home, "adopt", "--all", cwd=project)
        adopt_secs = time.monotonic() - started
        assert adopted.returncode == 0, adopted.stderr
        print(f"adopt --all of 7 entries (6 targets) took {adopt_secs:.2f} s, host reload included")
        again = run_cli(home, "adopt", "--all", cwd=project)
        assert "nothing changed" in again.stdout, again.stdout
        adopted_files = files_of(home, project)

        targets = status(home, host)
        for name in ("everything", "filesystem", "notes"):
            assert targets[name]["state"] == "idle", targets[name]
        memory_target = next(t for t in targets if t.startswith("memory-"))

        # The same tool names as the original commands, through the proxy. (The first session
        # initializes a shared child: server-everything offers tools by that client's capabilities.)
        for name in ("everything", "filesystem", "notes"):
            names, _ = asyncio.run(call_through_proxy(home, name, project, ""))
            assert names == direct_tools[name], name
        # Claude Code sees every adopted server under its own name, connected through us.
        listed = subprocess.run(
            [str(CLAUDE), "mcp", "list"], env=home.env, cwd=project, capture_output=True, text=True, timeout=180
        ).stdout
        for name in ("everything", "filesystem", "memory", "notes", "local-everything", "proj-fs"):
            line = next((l for l in listed.splitlines() if l.startswith(f"{name}:")), "")
            assert str(PROXY_BIN.resolve()) in line and "✔ Connected" in line, listed

        _, has_token = asyncio.run(call_through_proxy(home, "notes", project, "has_token"))
        assert tool_text(has_token).lower() == "true", "the secret reached the hosted server"

        # Two windows on server-everything share one child.
        a = RawProxy(home, "everything", args=("--project", str(project)))
        b = RawProxy(home, "everything", args=("--project", str(other)))
        for p in (a, b):
            p.initialize()
            p.request(2, "tools/call", {"name": "echo", "arguments": {"message": "hi"}})
            assert "hi" in json.dumps(p.read_answers([2])[2])
        everything_pid = status(home, host)["everything"]["pid"]
        assert everything_pid, status(home, host)["everything"]

        # Two projects on the filesystem server: two children, each rooted at its project.
        roots = {}
        for dir_ in (project, other):
            _, result = asyncio.run(call_through_proxy(home, "filesystem", dir_, "list_allowed_directories"))
            roots[dir_] = tool_text(result)
        assert str(project) in roots[project] and str(other) not in roots[project], roots
        assert str(other) in roots[other] and str(project) not in roots[other], roots
        fs_children = subprocess.run(["pgrep", "-f", "mcp-server-filesystem"], capture_output=True, text=True).stdout.split()
        assert len(fs_children) >= 2, fs_children

        # A new Claude Code window: SIGINT to every proxy, SIGTERM 100 ms later, new proxies.
        a.request(3, "tools/call", {"name": "echo", "arguments": {"message": "in flight"}})
        for p in (a, b):
            p.signal(signal.SIGINT)
        time.sleep(0.1)
        b.signal(signal.SIGTERM)
        assert "in flight" in json.dumps(a.read_answers([3])[3])
        a.close_stdin()
        a.wait()
        fresh = RawProxy(home, "everything", args=("--project", str(project)))
        fresh.initialize()
        fresh.request(2, "tools/call", {"name": "echo", "arguments": {"message": "again"}})
        assert "again" in json.dumps(fresh.read_answers([2])[2])
        fresh.close_stdin()
        fresh.wait()
        assert host.proc.poll() is None
        assert status(home, host)["everything"]["pid"] == everything_pid, "the daemon's child was untouched"

        # The secret went nowhere it may not go.
        _, sessions = host.api("GET", "/sessions")
        _, adopt_list = host.api("GET", "/api/adopt?project=" + str(project).replace(" ", "%20"))
        status_json = run_cli(home, "status", "--json", cwd=project)
        page = subprocess.run(
            ["curl", "-s", "-H", f"Authorization: Bearer {home.token}", host.manager_url + "/"],
            capture_output=True, text=True,
        ).stdout
        shown = [listed, dry.stdout, adopted.stdout, human.stdout, json.dumps(sessions), json.dumps(adopt_list), status_json.stdout, page]
        logs = [p.read_text(errors="replace") for p in home.state.glob("*.log")]
        logs.append((home.root / "host.stderr").read_text(errors="replace"))
        for text in shown + logs:
            assert SECRET not in text
        assert SECRET not in (home.state / "config.toml").read_text()
        assert SECRET not in (home.home / ".claude.json").read_text()
        assert oct((home.state / "secrets.toml").stat().st_mode & 0o777) == "0o600"

        undone = run_cli(home, "adopt", "--undo", "--all", cwd=project)
        assert undone.returncode == 0, undone.stderr
        assert SECRET not in undone.stdout
        assert files_of(home, project) == before, "undo leaves every file byte-identical"
        assert adopted_files != before
        wait_until(lambda: memory_target not in status(home, host), what="the adopted targets removed")
    finally:
        assert host.stop() == 0
    assert not subprocess.run(["pgrep", "-f", str(NOTES_SERVER)], capture_output=True).stdout, "no child outlives the host"


def test_on_demand_children_start_with_their_first_session_and_stop_when_idle(home: Home, tmp_path: Path):
    everything = NODE_BIN / "mcp-server-everything"
    host = start_host(
        home,
        f'[targets.everything]\ncommand = "{everything}"\nargs = ["stdio"]\ntransport = "stdio"\n'
        f'port = {{port:everything}}\nstart = "on-demand"\nidle_stop_secs = 1\n\n'
        f'[targets.fs]\ncommand = "{NODE_BIN / "mcp-server-filesystem"}"\nargs = ["{{project}}"]\n'
        f'transport = "stdio"\nport = {{port:fs}}\nshare = "per-project"\n',
        wait_for=("memory", "everything", "fs"),
    )
    try:
        for name in ("everything", "fs"):
            assert status(home, host)[name]["state"] == "idle" and status(home, host)[name]["pid"] is None
        shown = run_cli(home, "status", cwd=tmp_path).stdout
        assert "idle (starts on demand)" in shown, shown

        def use_everything() -> int:
            p = RawProxy(home, "everything")
            p.initialize()
            p.request(2, "tools/call", {"name": "echo", "arguments": {"message": "x"}})
            assert "x" in json.dumps(p.read_answers([2])[2])
            pid = status(home, host)["everything"]["pid"]
            assert status(home, host)["everything"]["state"] == "running" and pid
            p.close_stdin()
            assert p.wait() == 0
            return pid

        first = use_everything()
        wait_until(lambda: status(home, host)["everything"]["state"] == "idle", timeout=30, what="the idle child stopped")
        wait_until(lambda: subprocess.run(["kill", "-0", str(first)], capture_output=True).returncode != 0, what="the child gone")
        assert use_everything() != first, "the next session starts a new child"

        # A per-project server refuses a session that names no usable project, with the reason.
        p = RawProxy(home, "fs", args=("--project", str(tmp_path / "missing")))
        p.request("init", "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}})
        answer = p.read_answers(["init"])["init"]
        assert "error" in answer and "missing" in json.dumps(answer), answer
        p.kill()
    finally:
        assert host.stop() == 0
