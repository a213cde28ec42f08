"""Windows, proven under Wine: the proxy and the headless host cross-built for
x86_64-pc-windows-gnu (scripts/windows-check.sh) run as Windows programs, and only Windows
programs take part: the Windows proxy starts the Windows host, a MinGW launcher runs the proxy
in a kill-on-close job object, a MinGW helper sends Ctrl-C and Ctrl-Break to its console, and a
tiny MinGW stdio server is the hosted child (Windows node is not available).

Skips, saying why, when wine or the Windows build is absent. One Wine prefix serves the
session (creating one takes about 10 s); every test gets its own state dir and its own copy of
the binaries under a path with spaces, so that its processes are told apart by path.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO, free_port, http_ok, wait_until
from _proxy_util import RawProxy, tool_text

WIN_TARGET = REPO / "target" / "x86_64-pc-windows-gnu"
WIN_RELEASE = WIN_TARGET / "release"
HARNESS = WIN_TARGET / "wine-harness"
PROXY_EXE = "mcp-session-proxy.exe"
MANAGER_EXE = "mcp-session-manager.exe"
HARNESS_FILES = ("bcryptprimitives.dll", "job-launcher.exe", "ctrl-event.exe", "tiny-mcp.exe")
MEMORY_TOOLS = ["create_entities", "create_relations", "add_observations", "delete_entities",
                "delete_observations", "delete_relations", "read_graph", "search_nodes", "open_nodes"]


def _skip_reason() -> str | None:
    if not shutil.which("wine") or not shutil.which("wineserver"):
        return "wine is not installed (Debian packages wine and wine64; scripts/install-deps.sh)"
    for path in [WIN_RELEASE / PROXY_EXE, WIN_RELEASE / MANAGER_EXE, *(HARNESS / f for f in HARNESS_FILES)]:
        if not path.exists():
            return f"no Windows build: {path.relative_to(REPO)} is missing (run scripts/windows-check.sh)"
    return None


def winpath(path: Path) -> str:
    """The Windows spelling of a Linux path under Wine (drive Z: is `/`)."""
    return "Z:" + str(path).replace("/", "\\")


@dataclass
class Wine:
    prefix: Path
    env: dict

    @property
    def profile(self) -> Path:
        """%USERPROFILE% of the prefix's user, as a Linux path."""
        users = self.prefix / "drive_c" / "users"
        return next(p for p in users.iterdir() if p.name != "Public" and p.is_dir())


@pytest.fixture(scope="session")
def wine(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("wine")
    prefix = root / "prefix"
    env = dict(os.environ)
    # No Mono or Gecko install prompts; no Wine debug output on the proxies' stderr.
    env.update(WINEPREFIX=str(prefix), WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=", RUST_LOG="info")
    env.pop("DISPLAY", None)
    started = time.monotonic()
    subprocess.run(["wine", "wineboot", "-i"], env=env, check=True, timeout=180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # One wineserver for the whole session, instead of one per idle gap.
    server = subprocess.Popen(["wineserver", "-p"], env=env)
    server.wait(30)
    # Wine 8.0 has no bcryptprimitives.dll (Rust's std imports its ProcessPrng): the harness
    # shim, in this throwaway prefix only.
    shutil.copy(HARNESS / "bcryptprimitives.dll", prefix / "drive_c" / "windows" / "system32")
    print(f"wine prefix ready in {time.monotonic() - started:.1f} s")
    yield Wine(prefix=prefix, env=env)
    subprocess.run(["wineserver", "-k"], env=env, timeout=60)
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class WinHome:
    """A test's state dir and its own copy of the Windows binaries (under a path with spaces)."""

    wine: Wine
    root: Path
    state: Path
    bin_dir: Path
    env: dict
    manager_port: int = 0
    memory_port: int = 0

    def exe(self, name: str) -> str:
        return winpath(self.bin_dir / name)

    def write_config(self, extra: str = "") -> None:
        self.manager_port, self.memory_port = free_port(), free_port()
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "config.toml").write_text(
            f"[manager]\nport = {self.manager_port}\n\n[targets.memory]\nbuiltin = \"memory\"\n"
            f"port = {self.memory_port}\n\n{extra}\n"
        )

    def pids(self, name: str) -> list[int]:
        """Linux pids of this test's Windows processes running `name` (Wine shows the exe's
        Linux path in the command line)."""
        wanted = str(self.bin_dir / name).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(arg.endswith(wanted) or arg.replace(b"\\", b"/").endswith(wanted) for arg in cmdline[:3]):
                found.append(int(entry.name))
        return found

    def kill_all(self) -> None:
        """SIGKILL every process of this test (by its binaries' path)."""
        for name in (PROXY_EXE, MANAGER_EXE, "job-launcher.exe", "ctrl-event.exe", "tiny-mcp.exe"):
            for pid in self.pids(name):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def whome(wine: Wine, tmp_path: Path):
    bin_dir = tmp_path / "Program Files" / "MCP Session Manager"
    bin_dir.mkdir(parents=True)
    for name in (PROXY_EXE, MANAGER_EXE):
        shutil.copy(WIN_RELEASE / name, bin_dir)
    for name in ("job-launcher.exe", "ctrl-event.exe", "tiny-mcp.exe"):
        shutil.copy(HARNESS / name, bin_dir)
    state = tmp_path / "state"
    env = dict(wine.env, MCP_SESSION_MANAGER_HOME=winpath(state))
    home = WinHome(wine=wine, root=tmp_path, state=state, bin_dir=bin_dir, env=env)
    yield home
    home.kill_all()


def start_win_host(home: WinHome) -> subprocess.Popen:
    log = open(home.root / "host.stderr", "ab")
    proc = subprocess.Popen(["wine", home.exe(MANAGER_EXE), "daemon"], env=home.env,
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_until(lambda: proc.poll() is not None or (
        http_ok(f"http://127.0.0.1:{home.manager_port}/health")
        and http_ok(f"http://127.0.0.1:{home.memory_port}/health")), timeout=60, what="Windows host /health")
    assert proc.poll() is None, (home.root / "host.stderr").read_text()[-3000:]
    return proc


class WinProxy(RawProxy):
    """The Windows proxy under Wine, driven line by line; `wrapper` runs it through a harness
    program (the job launcher, the Ctrl event helper)."""

    def __init__(self, home: WinHome, target: str = "memory", wrapper: tuple = (), args: tuple = ()):
        import queue
        import threading

        self.stderr_path = home.root / f"proxy-{target}-{time.monotonic_ns()}.stderr"
        self.proc = subprocess.Popen(
            ["wine", *wrapper, home.exe(PROXY_EXE), "--target", target, *args],
            env=home.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.stderr_path, "wb"), cwd=str(home.root),
        )
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def memory_call(proxy: RawProxy, id, tool: str, arguments: dict) -> None:
    proxy.request(id, "tools/call", {"name": tool, "arguments": arguments})


def test_the_windows_host_serves_the_nine_memory_tools_to_an_sdk_client_over_the_windows_proxy(whome):
    from mcp import Client, StdioServerParameters

    whome.write_config()
    host = start_win_host(whome)
    project = whome.root / "My Project"
    project.mkdir()
    params = StdioServerParameters(
        command="wine", args=[whome.exe(PROXY_EXE), "--target", "memory", "--project", winpath(project)],
        env=whome.env, cwd=str(project))

    async def scenario():
        async with Client(params, mode="legacy") as client:
            assert [t.name for t in (await client.list_tools()).tools] == MEMORY_TOOLS

            async def call(tool, arguments):
                result = await client.call_tool(tool, arguments)
                assert not result.is_error, (tool, tool_text(result))
                return tool_text(result)

            await call("create_entities", {"entities": [
                {"name": "wine", "entityType": "runtime", "observations": ["runs Windows programs"]},
                {"name": "proxy", "entityType": "exe", "observations": []}]})
            await call("create_relations", {"relations": [{"from": "proxy", "to": "wine", "relationType": "runs under"}]})
            await call("add_observations", {"observations": [{"entityName": "proxy", "contents": ["a .exe", "stdio"]}]})
            assert "runs under" in await call("read_graph", {})
            assert "proxy" in await call("search_nodes", {"query": "a .exe"})
            assert "runs Windows programs" in await call("open_nodes", {"names": ["wine"]})
            await call("delete_observations", {"deletions": [{"entityName": "proxy", "observations": ["stdio"]}]})
            await call("delete_relations", {"relations": [{"from": "proxy", "to": "wine", "relationType": "runs under"}]})
            await call("delete_entities", {"entityNames": ["wine"]})
            graph = json.loads(await call("read_graph", {}))
            assert [e["name"] for e in graph["entities"]] == ["proxy"]
            assert graph["entities"][0]["observations"] == ["a .exe"] and graph["relations"] == []

    asyncio.run(asyncio.wait_for(scenario(), 120))
    # The project, given as a Windows path with a space, chose the DB.
    assert (project / ".claude" / "memory.db").exists()
    assert whome.pids(MANAGER_EXE) == [host.pid], "the proxy used the running host"


def test_five_windows_proxies_started_at_once_start_exactly_one_windows_host(whome):
    whome.write_config()
    proxies = [WinProxy(whome) for _ in range(5)]
    try:
        for proxy in proxies:
            proxy.request("init", "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                                 "clientInfo": {"name": "wine-e2e", "version": "1"}})
        for proxy in proxies:
            answer = proxy.read_answers(["init"], timeout=90)["init"]
            assert "result" in answer, (answer, proxy.stderr())
            proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            proxy.request(2, "tools/list")
            assert len(proxy.read_answers([2])[2]["result"]["tools"]) == 9
        assert len(whome.pids(MANAGER_EXE)) == 1, whome.pids(MANAGER_EXE)
        # The one host is the daemon of the state dir: its lock file names a live owner.
        assert (whome.state / "memory.lock").exists()
    finally:
        for proxy in proxies:
            proxy.kill()


def _initialize(proxy: RawProxy, timeout: float = 90) -> None:
    proxy.request("init", "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "wine-e2e", "version": "1"}})
    answer = proxy.read_answers(["init"], timeout=timeout)["init"]
    assert "result" in answer, (answer, proxy.stderr())
    proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})


def test_the_host_a_proxy_starts_in_a_launchers_kill_on_close_job_outlives_the_job(whome):
    whome.write_config()
    launcher = WinProxy(whome, wrapper=(whome.exe("job-launcher.exe"),))
    _initialize(launcher)
    hosts = whome.pids(MANAGER_EXE)
    assert len(hosts) == 1, launcher.stderr()
    # The window closes: the proxy ends on EOF, the launcher exits and its job is closed.
    launcher.close_stdin()
    assert launcher.wait(30) == 0, launcher.stderr()
    assert "closing the job" in launcher.stderr()

    proxy = WinProxy(whome)
    try:
        _initialize(proxy)
        proxy.request(2, "tools/list")
        assert len(proxy.read_answers([2])[2]["result"]["tools"]) == 9
        assert whome.pids(MANAGER_EXE) == hosts, "the same host serves the new proxy"
    finally:
        proxy.kill()


def test_a_job_that_forbids_breakaway_is_logged_and_the_proxy_still_serves(whome):
    whome.write_config()
    launcher = WinProxy(whome, wrapper=(whome.exe("job-launcher.exe"), "--no-breakaway"))
    _initialize(launcher)
    launcher.request(2, "tools/list")
    assert len(launcher.read_answers([2])[2]["result"]["tools"]) == 9
    assert "forbids CREATE_BREAKAWAY_FROM_JOB" in launcher.stderr()
    launcher.close_stdin()
    assert launcher.wait(30) == 0
    # Started inside the job, the host ended with it: what the log line warned of.
    wait_until(lambda: not whome.pids(MANAGER_EXE), timeout=30, what="the host in the job to end")


def test_ctrl_c_and_ctrl_break_leave_the_proxy_up_with_requests_in_flight_answered(whome):
    whome.write_config()
    start_win_host(whome)
    trigger = whome.root / "ctrl-trigger"
    proxy = WinProxy(whome, wrapper=(whome.exe("ctrl-event.exe"), winpath(trigger)))
    try:
        _initialize(proxy)
        next_id = 0
        for event in ("c", "break"):
            before = []
            for n in range(20):
                next_id += 1
                before.append(next_id)
                memory_call(proxy, next_id, "create_entities", {"entities": [
                    {"name": f"{event}-{n}", "entityType": "t", "observations": []}]})
            sent = Path(str(trigger) + ".sent")
            sent.unlink(missing_ok=True)
            trigger.write_text(event)
            wait_until(sent.exists, timeout=30, what=f"the {event} event to be sent")  # renamed in whole
            outcome = sent.read_text().strip()
            if outcome != "ok received":
                # Seen under pytest with Wine 8.0: the console AllocConsole made is refused by
                # GenerateConsoleCtrlEvent (error 6, ERROR_INVALID_HANDLE), though the same
                # helper delivers the event when started from a plain Python script.
                pytest.xfail(f"Wine did not deliver the console event (GenerateConsoleCtrlEvent: {outcome})")
            after = []
            for n in range(5):
                next_id += 1
                after.append(next_id)
                memory_call(proxy, next_id, "read_graph", {})
            answers = proxy.read_answers(before + after, timeout=60)
            assert all("result" in answers[i] for i in before + after), answers
            assert proxy.proc.poll() is None, f"the proxy ended on Ctrl-{event}: {proxy.stderr()}"
        proxy.close_stdin()
        assert proxy.wait(30) == 0, proxy.stderr()
    finally:
        proxy.kill()


def test_a_hard_killed_windows_host_leaves_no_orphan_child(whome):
    # A name of its own, so that only this test's child matches.
    tiny = f"tiny-orphan-{uuid.uuid4().hex[:8]}.exe"
    shutil.copy(whome.bin_dir / "tiny-mcp.exe", whome.bin_dir / tiny)
    port = free_port()
    whome.write_config(
        f'[targets.tiny]\ncommand = {json.dumps(whome.exe(tiny))}\nargs = ["--linger"]\n'
        f'transport = "stdio"\nport = {port}\n')
    start_win_host(whome)
    proxy = WinProxy(whome, target="tiny")
    try:
        _initialize(proxy)
        proxy.request(2, "tools/call", {"name": "echo", "arguments": {"text": "through the job"}})
        assert "through the job" in json.dumps(proxy.read_answers([2])[2])
        assert len(whome.pids(tiny)) == 1, "the host runs the tiny server"
        # Killed hard: the host runs no code of its own on the way out.
        (host_pid,) = whome.pids(MANAGER_EXE)
        os.kill(host_pid, signal.SIGKILL)
        wait_until(lambda: not whome.pids(MANAGER_EXE), timeout=30, what="the host to be gone")
        wait_until(lambda: not whome.pids(tiny), timeout=30, what="the child to end with its job")
    finally:
        proxy.kill()


def _run_cmd_shim(whome: WinHome, args: list) -> list:
    """Hosts `tinyshim`, a .cmd found through PATH and PATHEXT in a directory with a space,
    which runs the tiny server with `args`; returns the arguments the server received."""
    tools = whome.root / "My Tools"
    tools.mkdir()
    shutil.copy(whome.bin_dir / "tiny-mcp.exe", tools / "tiny-mcp.exe")
    # What npm writes for npx and friends: a .cmd that passes %* on to the real program.
    (tools / "tinyshim.cmd").write_text('@"%~dp0tiny-mcp.exe" %*\r\n')
    port = free_port()
    whome.write_config(
        f'[targets.shim]\ncommand = "tinyshim"\nargs = {json.dumps(args)}\ntransport = "stdio"\nport = {port}\n')
    # Wine adds WINEPATH to the Windows PATH the host sees.
    whome.env["WINEPATH"] = winpath(tools)
    start_win_host(whome)
    proxy = WinProxy(whome, target="shim")
    try:
        _initialize(proxy)
        proxy.request(2, "tools/call", {"name": "echo", "arguments": {"text": "via cmd /c"}})
        assert "via cmd /c" in json.dumps(proxy.read_answers([2])[2])
    finally:
        proxy.kill()
    log = (whome.state / "shim.log").read_text(errors="replace")
    return [line.split("tiny-mcp: arg [", 1)[1].rsplit("]", 1)[0]
            for line in log.splitlines() if "tiny-mcp: arg [" in line]


def test_a_cmd_shim_found_through_path_and_pathext_gets_its_arguments_intact(whome):
    args = ["plain", "two words", 'say "hi"', 'q\\"x', "a&b|c<d>e^f(g)!", "C:\\dir with space\\", ""]
    assert _run_cmd_shim(whome, args) == args


# Windows' cmd.exe expands `%...%` in one left-to-right pass, so `%%cd:~,%` (an empty
# expansion) keeps a `%` literal: the technique Rust's standard library uses for batch files
# since CVE-2024-24576. Wine 8.0's cmd.exe scans again after each substitution, so the `%`
# before it starts a new `%PATH%`. (No report of this on Wine's tracker was found.)
@pytest.mark.xfail(strict=True, reason="Wine 8.0's cmd.exe re-expands after a %var% substitution, "
                                       "so %%cd:~,% does not keep a % literal as Windows' cmd.exe does")
def test_a_percent_sign_reaches_a_cmd_shim_unexpanded(whome):
    args = ["%PATH%", "100%"]
    assert _run_cmd_shim(whome, args) == args


def test_generate_config_writes_the_userprofile_claude_json_and_its_entry_runs(wine):
    from mcp import Client, StdioServerParameters

    profile = wine.profile
    bin_dir = profile.parent.parent / "Program Files" / f"MCP Session Manager {uuid.uuid4().hex[:6]}"
    bin_dir.mkdir(parents=True)
    for name in (PROXY_EXE, MANAGER_EXE):
        shutil.copy(WIN_RELEASE / name, bin_dir)
    # The default state dir, %USERPROFILE%\.mcp-session-manager, with ephemeral ports.
    state = profile / ".mcp-session-manager"
    home = WinHome(wine=wine, root=profile, state=state, bin_dir=bin_dir, env=dict(wine.env))
    home.write_config()
    claude_json = profile / ".claude.json"
    claude_json.unlink(missing_ok=True)
    try:
        result = subprocess.run(["wine", winpath(bin_dir / MANAGER_EXE), "generate-config"], env=wine.env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        entry = json.loads(claude_json.read_text())["mcpServers"]["memory"]
        proxy = entry["command"]
        assert proxy.lower().endswith("\\mcp-session-proxy.exe"), entry
        assert proxy.lower() in {winpath(bin_dir / PROXY_EXE).lower(),
                                 ("C:\\" + str((bin_dir / PROXY_EXE).relative_to(wine.prefix / "drive_c")).replace("/", "\\")).lower()}
        assert entry["args"] == ["--target", "memory"]

        params = StdioServerParameters(command="wine", args=[proxy, *entry["args"]], env=wine.env)

        async def scenario():
            async with Client(params, mode="legacy") as client:
                return [t.name for t in (await client.list_tools()).tools]

        assert asyncio.run(asyncio.wait_for(scenario(), 120)) == MEMORY_TOOLS
        assert (state / "memory.lock").exists(), "the host used the default state dir"
    finally:
        home.kill_all()
        claude_json.unlink(missing_ok=True)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(bin_dir, ignore_errors=True)
