"""Shared fixtures of the end-to-end tests: real binaries, real sockets, temp HOME and state dir.

Every test gets its own HOME and MCP_SESSION_MANAGER_HOME under pytest's tmp_path, and every
port is an ephemeral one picked here and written into that state dir's config.toml.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "peers"
# Absolute: tests launch our binaries from other working directories (a project dir, a temp HOME).
BIN_DIR = (REPO / os.environ.get("MSM_BIN_DIR", "target/debug")).resolve()
MANAGER_BIN = BIN_DIR / "mcp-session-manager"
PROXY_BIN = BIN_DIR / "mcp-session-proxy"
NODE_BIN = PEERS / "node_modules" / ".bin"
NODE_MODULES = PEERS / "node_modules"
FASTMCP_PYTHON = PEERS / ".venv-fastmcp" / "bin" / "python"
MCP_PROXY_BIN = PEERS / ".venv-mcp-proxy" / "bin" / "mcp-proxy"


def free_port() -> int:
    """An ephemeral port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def built_binary(name: str) -> Path:
    """One of our binaries for the benches: the release build when there is one, else debug."""
    for profile in ("release", "debug"):
        candidate = REPO / "target" / profile / name
        if candidate.exists():
            return candidate
    sys.exit(f"build {name} first (cargo build --release -p mcp-session-manager -p msm-proxy)")


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except Exception:
        return False


@dataclass
class Home:
    """A temp HOME with a state dir; `env` is what every spawned process gets."""

    root: Path
    home: Path
    state: Path
    env: dict = field(default_factory=dict)

    def write_config(self, text: str) -> None:
        (self.state / "config.toml").write_text(text)

    @property
    def token(self) -> str:
        return (self.state / "token").read_text().strip()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    h = tmp_path / "home"
    s = tmp_path / "state"
    tmp = tmp_path / "tmp"
    for d in (h, s, tmp):
        d.mkdir()
    env = dict(os.environ)
    env.update(
        HOME=str(h),
        MCP_SESSION_MANAGER_HOME=str(s),
        TMPDIR=str(tmp),
        RUST_LOG=os.environ.get("RUST_LOG", "info"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
    )
    env.pop("CLAUDE_PROJECT_DIR", None)
    return Home(root=tmp_path, home=h, state=s, env=env)


@dataclass
class Host:
    """A running `mcp-session-manager daemon` (the headless host)."""

    proc: subprocess.Popen
    home: Home
    manager_port: int
    ports: dict

    def url(self, target: str = "memory") -> str:
        return f"http://127.0.0.1:{self.ports[target]}/mcp"

    @property
    def manager_url(self) -> str:
        return f"http://127.0.0.1:{self.manager_port}"

    def headers(self, project: str | Path | None = None) -> dict:
        h = {"Authorization": f"Bearer {self.home.token}"}
        if project is not None:
            h["Mcp-Project-Path"] = str(project)
        return h

    def api(self, method: str, path: str, body=None, timeout: float = 30.0):
        """Calls the manager API with the token; returns (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.manager_url + path, data=data, method=method, headers=self.headers()
        )
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("host did not stop within the grace period")
        return self.proc.returncode


def start_host(home: Home, extra_targets: str = "", args: tuple = (), wait_for=("memory",)) -> Host:
    """Writes a config.toml with ephemeral ports (memory + `extra_targets`), starts the host,
    and waits for the manager and the targets named in `wait_for` to answer /health."""
    manager_port = free_port()
    ports = {"memory": free_port()}
    # `{port:NAME}` placeholders in extra_targets get a fresh port each.
    import re

    def sub(m):
        ports[m.group(1)] = ports.get(m.group(1)) or free_port()
        return str(ports[m.group(1)])

    extra = re.sub(r"\{port:([A-Za-z0-9_-]+)\}", sub, extra_targets)
    home.write_config(
        f"[manager]\nport = {manager_port}\n\n[targets.memory]\nbuiltin = \"memory\"\nport = {ports['memory']}\n\n{extra}\n"
    )
    log = open(home.root / "host.stderr", "ab")
    proc = subprocess.Popen(
        [str(MANAGER_BIN), "daemon", *args],
        env=home.env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    host = Host(proc=proc, home=home, manager_port=manager_port, ports=ports)
    try:
        wait_until(lambda: proc.poll() is not None or http_ok(f"{host.manager_url}/health"), what="manager /health")
        for name in wait_for:
            wait_until(
                lambda: proc.poll() is not None or http_ok(f"http://127.0.0.1:{ports[name]}/health"),
                what=f"{name} /health",
            )
        if proc.poll() is not None:
            raise AssertionError(f"host exited with {proc.returncode}: {(home.root / 'host.stderr').read_text()[-3000:]}")
    except BaseException:
        host.stop()
        raise
    return host


@pytest.fixture
def host(home: Home):
    """The headless host serving memory alone on ephemeral ports; stopped (and checked) after."""
    h = start_host(home)
    yield h
    assert h.stop() == 0, "host should exit 0 on SIGTERM"


def pytest_report_header(config):
    return [f"binaries: {BIN_DIR}", f"python: {sys.version.split()[0]}"]
