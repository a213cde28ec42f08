"""`mcp-session-manager generate-config` end to end: the real binary in a temp HOME, the file it
writes, a crash at the rename boundary, a concurrent writer in another process, and the
generated entry launched exactly as written by real clients (the Python SDK, `claude mcp list`)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import MANAGER_BIN, NODE_BIN, PROXY_BIN, Home, start_host, wait_until

FIXTURES = Path(__file__).parent / "fixtures" / "client-config"
PAUSE_ENV = "MSM_TEST_PAUSE_BEFORE_RENAME"


def generate_config(home: Home, *args: str, cwd: Path | None = None, env: dict | None = None, binary: Path = MANAGER_BIN):
    return subprocess.run(
        [str(binary), "generate-config", *args],
        env=env or home.env,
        cwd=cwd or home.home,
        capture_output=True,
        text=True,
        timeout=60,
    )


def claude_json(home: Home) -> Path:
    return home.home / ".claude.json"


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".bak.*"))


def our_entry(target: str) -> dict:
    return {"type": "stdio", "command": str(PROXY_BIN.resolve()), "args": ["--target", target]}


def test_writes_claude_json_keeping_everything_else_and_is_idempotent(home: Home):
    original = (FIXTURES / "claude.json").read_bytes()
    claude_json(home).write_bytes(original)
    first = generate_config(home)
    assert first.returncode == 0, first.stderr
    assert "+ memory  added" in first.stdout
    assert "restart Claude Code" in first.stdout and "claude mcp list" in first.stdout
    data = json.loads(claude_json(home).read_text())
    assert data["mcpServers"]["memory"] == our_entry("memory")
    assert list(data["mcpServers"]) == ["github", "filesystem", "sentry", "playwright", "memory"]
    before = json.loads(original)
    for key in before:
        if key != "mcpServers":
            assert data[key] == before[key], key
    (backup,) = backups(claude_json(home))
    assert backup.read_bytes() == original

    second = generate_config(home)
    assert second.returncode == 0, second.stderr
    assert "already up to date" in second.stdout and "Nothing to change" in second.stdout
    assert len(backups(claude_json(home))) == 1

    removed = generate_config(home, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert "- memory  removed" in removed.stdout
    assert claude_json(home).read_bytes() == original


def test_dry_run_prints_a_diff_and_writes_nothing(home: Home):
    result = generate_config(home, "--dry-run", "--client", "cursor")
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing was written" in result.stdout
    assert f"+++ {home.home / '.cursor' / 'mcp.json'}" in result.stdout
    assert '+      "args": [' in result.stdout
    assert not (home.home / ".cursor").exists()


def test_project_file_and_errors(home: Home, tmp_path: Path):
    project = tmp_path / "project"
    project.mkdir()
    result = generate_config(home, "--client", "claude-code-project", cwd=project)
    assert result.returncode == 0, result.stderr
    assert json.loads((project / ".mcp.json").read_text())["mcpServers"]["memory"] == our_entry("memory")

    unknown = generate_config(home, "--targets", "memory,nope")
    assert unknown.returncode != 0
    assert "unknown target `nope`; configured targets: memory" in unknown.stderr

    claude_json(home).write_bytes((FIXTURES / "invalid.json").read_bytes())
    invalid = generate_config(home)
    assert invalid.returncode != 0
    assert f"{claude_json(home)}:5:5: not valid JSON" in invalid.stderr
    assert claude_json(home).read_bytes() == (FIXTURES / "invalid.json").read_bytes()

    scope = generate_config(home, "--client", "cursor", "--scope", "local")
    assert scope.returncode != 0 and "--scope local applies to --client claude-code only" in scope.stderr


def test_missing_proxy_is_an_error_and_writes_nothing(home: Home, tmp_path: Path):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    binary = lonely / "mcp-session-manager"
    _place_binary(MANAGER_BIN, binary)
    env = dict(home.env, PATH=str(tmp_path / "empty-path"))
    result = generate_config(home, env=env, binary=binary)
    assert result.returncode != 0
    assert "mcp-session-proxy was not found" in result.stderr
    assert str(lonely / "mcp-session-proxy") in result.stderr
    assert not claude_json(home).exists()


def test_sidecar_with_target_triple_is_found(home: Home, tmp_path: Path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    binary = bundle / "mcp-session-manager"
    _place_binary(MANAGER_BIN, binary)
    sidecar = bundle / "mcp-session-proxy-x86_64-unknown-linux-gnu"
    _place_binary(PROXY_BIN, sidecar)
    result = generate_config(home, binary=binary)
    assert result.returncode == 0, result.stderr
    entry = json.loads(claude_json(home).read_text())["mcpServers"]["memory"]
    assert entry["command"] == str(sidecar)



def test_a_proxy_inside_a_running_appimage_is_never_written(home: Home, tmp_path: Path):
    """An AppImage runs from a mount that is gone when it exits: its proxy path would point at
    nothing. Refused, unless PATH has a lasting proxy, which is then written."""
    mount = tmp_path / ".mount_msmXYZ"
    (mount / "usr" / "bin").mkdir(parents=True)
    binary = mount / "usr" / "bin" / "mcp-session-manager"
    _place_binary(MANAGER_BIN, binary)
    _place_binary(PROXY_BIN, mount / "usr" / "bin" / "mcp-session-proxy")
    on_path = tmp_path / "path-bin"
    on_path.mkdir()
    env = dict(home.env, APPIMAGE=str(tmp_path / "MCP_Session_Manager.AppImage"), APPDIR=str(mount),
               PATH=str(on_path))
    refused = generate_config(home, env=env, binary=binary)
    assert refused.returncode != 0
    assert "inside an AppImage" in refused.stderr and str(mount) in refused.stderr, refused.stderr
    assert not claude_json(home).exists()

    _place_binary(PROXY_BIN, on_path / "mcp-session-proxy")
    written = generate_config(home, env=env, binary=binary)
    assert written.returncode == 0, written.stderr
    entry = json.loads(claude_json(home).read_text())["mcpServers"]["memory"]
    assert entry["command"] == str(on_path / "mcp-session-proxy")

def _place_binary(source: Path, destination: Path) -> None:
    """A hard link when the file systems allow (the GUI build is hundreds of MB), else a copy.
    Not a symlink: the binary finds the proxy beside its resolved path."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _spawn_paused(home: Home, marker: Path, *args: str) -> subprocess.Popen:
    env = dict(home.env, **{PAUSE_ENV: str(marker)})
    return subprocess.Popen(
        [str(MANAGER_BIN), "generate-config", *args],
        env=env,
        cwd=home.home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_crash_at_the_rename_boundary_leaves_the_old_file(home: Home):
    original = (FIXTURES / "claude.json").read_bytes()
    claude_json(home).write_bytes(original)
    marker = home.root / "paused"
    proc = _spawn_paused(home, marker)
    wait_until(marker.exists, timeout=20, what="the writer to pause before its rename")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert claude_json(home).read_bytes() == original
    # What the killed writer left (a complete temp file, a backup) never replaces the config.
    leftovers = [p.name for p in home.home.iterdir() if ".msm-tmp-" in p.name]
    assert len(leftovers) == 1
    json.loads((home.home / leftovers[0]).read_text())
    marker.unlink()
    again = generate_config(home)
    assert again.returncode == 0, again.stderr
    assert json.loads(claude_json(home).read_text())["mcpServers"]["memory"] == our_entry("memory")


def test_killed_at_any_moment_the_file_is_old_or_new_never_torn(home: Home):
    """SIGKILL at moments spread over a whole run: before, during and after the write."""
    original = (FIXTURES / "claude.json").read_bytes()
    claude_json(home).write_bytes(original)
    started = time.monotonic()
    assert generate_config(home).returncode == 0
    full_run = time.monotonic() - started
    new = claude_json(home).read_bytes()
    seen = set()
    steps = 16
    # Kill moments spread over 1.5 runs; a loaded machine can make later runs slower than the
    # measured one, so the last moments stretch until one run has finished (bounded).
    delays = [full_run * 1.5 * step / (steps - 1) for step in range(steps)]
    while delays:
        delay = delays.pop(0)
        claude_json(home).write_bytes(original)
        proc = subprocess.Popen(
            [str(MANAGER_BIN), "generate-config"], env=home.env, cwd=home.home,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        data = claude_json(home).read_bytes()
        assert data in (original, new), "a torn or foreign file"
        seen.add("new" if data == new else "old")
        if not delays and "new" not in seen and delay < 20:
            delays.append(max(delay * 2, 0.05))
    assert seen == {"old", "new"}


def test_a_concurrent_writers_change_survives(home: Home):
    """Another process rewrites the file while we are paused between our read and our rename:
    we notice, merge again from its version, and both changes end up in the file."""
    original = (FIXTURES / "claude.json").read_text()
    claude_json(home).write_text(original)
    marker = home.root / "paused"
    proc = _spawn_paused(home, marker)
    theirs = original.replace('"numStartups": 412', '"numStartups": 413')
    pauses = 0
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        if marker.exists():
            if pauses == 0:
                claude_json(home).write_text(theirs)  # "Claude Code" writes now
            pauses += 1
            marker.unlink()
        time.sleep(0.01)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert pauses == 2, "one merge abandoned, one written"
    data = json.loads(claude_json(home).read_text())
    assert data["numStartups"] == 413
    assert data["mcpServers"]["memory"] == our_entry("memory")
    (backup,) = backups(claude_json(home))
    assert backup.read_text() == theirs


def _launch_as_written(entry: dict, home: Home, cwd: Path):
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        cwd=str(cwd),
        env={k: home.env[k] for k in ("HOME", "MCP_SESSION_MANAGER_HOME", "TMPDIR", "PATH")},
    )

    async def list_tools():
        async with Client(params, mode="legacy") as client:
            return await client.list_tools()

    return asyncio.run(asyncio.wait_for(list_tools(), 60))


def test_the_generated_entry_answers_tools_list(home: Home, tmp_path: Path):
    host = start_host(home)
    try:
        result = generate_config(home)
        assert result.returncode == 0, result.stderr
        entry = json.loads(claude_json(home).read_text())["mcpServers"]["memory"]
        project = tmp_path / "some-project"
        project.mkdir()
        tools = _launch_as_written(entry, home, project)
        names = {tool.name for tool in tools.tools}
        assert {"create_entities", "read_graph", "search_nodes"} <= names
    finally:
        assert host.stop() == 0


CLAUDE = NODE_BIN / "claude"


def test_claude_mcp_list_shows_our_servers_connected(home: Home):
    host = start_host(home)
    try:
        claude_json(home).write_bytes((FIXTURES / "claude-same-name.json").read_bytes())
        result = generate_config(home, "--force")
        assert result.returncode == 0, result.stderr
        listed = subprocess.run(
            [str(CLAUDE), "mcp", "list"], env=home.env, cwd=home.home,
            capture_output=True, text=True, timeout=120,
        )
        line = next((l for l in listed.stdout.splitlines() if l.startswith("memory:")), None)
        assert line is not None, listed.stdout + listed.stderr
        assert f"{PROXY_BIN.resolve()} --target memory" in line
        assert "✔ Connected" in line, listed.stdout
    finally:
        assert host.stop() == 0


def _claude_mcp_list(home: Home, cwd: Path) -> str:
    listed = subprocess.run(
        [str(CLAUDE), "mcp", "list"], env=home.env, cwd=cwd, capture_output=True, text=True, timeout=120,
    )
    return listed.stdout + listed.stderr


def test_local_scope_is_seen_by_claude_code_in_that_project_only(home: Home, tmp_path: Path):
    host = start_host(home)
    try:
        project = tmp_path / "project"
        project.mkdir()
        result = generate_config(home, "--scope", "local", cwd=project)
        assert result.returncode == 0, result.stderr
        data = json.loads(claude_json(home).read_text())
        assert data["projects"][str(project)]["mcpServers"]["memory"] == our_entry("memory")
        assert "mcpServers" not in data
        inside = _claude_mcp_list(home, project)
        line = next((l for l in inside.splitlines() if l.startswith("memory:")), None)
        assert line is not None, inside
        assert "✔ Connected" in line, inside
        elsewhere = _claude_mcp_list(home, home.home)
        assert not any(l.startswith("memory:") for l in elsewhere.splitlines()), elsewhere
    finally:
        assert host.stop() == 0


def test_the_manager_api_generates_the_same_config(home: Home, tmp_path: Path):
    host = start_host(home)
    try:
        status, body = host.api("POST", "/config/generate", {"dry_run": True})
        assert status == 200, body
        assert body["changed"] is True and body["written"] is False
        assert '+      "command": "' in body["diff"]
        assert body["path"] == str(claude_json(home))
        assert not claude_json(home).exists()

        status, body = host.api("POST", "/config/generate", {})
        assert status == 200, body
        assert body["written"] is True and body["entries"] == [{"name": "memory", "outcome": "added"}]
        assert "restart Claude Code" in body["message"]
        assert json.loads(claude_json(home).read_text())["mcpServers"]["memory"] == our_entry("memory")

        project = tmp_path / "api-project"
        project.mkdir()
        status, body = host.api("POST", "/config/generate", {"client": "claude-code-project", "cwd": str(project)})
        assert status == 200, body
        assert (project / ".mcp.json").exists()

        status, body = host.api("POST", "/config/generate", {"targets": ["nope"]})
        assert status == 400, body
        assert "unknown target `nope`" in json.dumps(body)
        status, body = host.api("POST", "/config/generate", {"client": "vim"})
        assert status == 400, body
    finally:
        assert host.stop() == 0


def test_project_mcp_json_is_read_by_claude_code(home: Home, tmp_path: Path):
    host = start_host(home)
    try:
        project = tmp_path / "checked-in"
        project.mkdir()
        result = generate_config(home, "--client", "claude-code-project", cwd=project)
        assert result.returncode == 0, result.stderr
        assert "approve" in result.stdout
        # What Claude Code records once the user approves the project's servers.
        claude_json(home).write_text(json.dumps({
            "projects": {str(project): {"hasTrustDialogAccepted": True, "enabledMcpjsonServers": ["memory"]}}
        }))
        listed = _claude_mcp_list(home, project)
        line = next((l for l in listed.splitlines() if l.startswith("memory:")), None)
        assert line is not None and "✔ Connected" in line, listed
    finally:
        assert host.stop() == 0
