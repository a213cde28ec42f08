"""Helpers of the proxy's end-to-end tests: third-party servers to proxy to, config.toml
entries for them, the proxy spawned by the official Python SDK client or driven line by line."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import FASTMCP_PYTHON, NODE_MODULES, PROXY_BIN, Home, free_port, wait_until

import socket

EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
FASTMCP_SERVER = Path(__file__).parent / "servers" / "fastmcp_sse_server.py"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Server:
    """A third-party server process on a loopback port."""

    proc: subprocess.Popen
    port: int
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_everything(home: Home, mode: str) -> Server:
    """server-everything in `streamableHttp` or `sse` mode on a fresh port."""
    port = free_port()
    env = dict(home.env, PORT=str(port))
    log = open(home.root / f"everything-{mode}.log", "ab")
    proc = subprocess.Popen(["node", str(EVERYTHING), mode], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    wait_until(lambda: proc.poll() is not None or port_open(port), what=f"server-everything {mode}")
    assert proc.poll() is None, (home.root / f"everything-{mode}.log").read_text()
    path = "/mcp" if mode == "streamableHttp" else "/sse"
    return Server(proc, port, f"http://127.0.0.1:{port}{path}")


def start_fastmcp_sse(home: Home, port: int | None = None) -> Server:
    port = port or free_port()
    log = open(home.root / "fastmcp.log", "ab")
    proc = subprocess.Popen(
        [str(FASTMCP_PYTHON), str(FASTMCP_SERVER), str(port)], env=home.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    wait_until(lambda: proc.poll() is not None or port_open(port), what="fastmcp sse server")
    assert proc.poll() is None, (home.root / "fastmcp.log").read_text()
    return Server(proc, port, f"http://127.0.0.1:{port}/sse")


def url_target(name: str, url: str, transport: str = "streamable-http") -> str:
    """A config.toml entry for a server someone else runs."""
    return f'[targets.{name}]\nurl = "{url}"\ntransport = "{transport}"\n'


def write_config(home: Home, targets: str, manager_port: int | None = None, memory_port: int | None = None, proxy: str = "") -> dict:
    """Writes config.toml with fresh ports; returns them."""
    ports = {"manager": manager_port or free_port(), "memory": memory_port or free_port()}
    home.write_config(
        f"[manager]\nport = {ports['manager']}\n\n{proxy}\n[targets.memory]\nbuiltin = \"memory\"\nport = {ports['memory']}\n\n{targets}\n"
    )
    return ports


def proxy_params(home: Home, target: str, project: Path | None = None, args: tuple = ()):
    from mcp import StdioServerParameters

    argv = ["--target", target, *args]
    if project is not None:
        argv += ["--project", str(project)]
    return StdioServerParameters(command=str(PROXY_BIN), args=argv, env=dict(home.env, RUST_LOG="info"), cwd=str(home.root))


def tool_text(result) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


class RawProxy:
    """A proxy driven line by line: write JSON-RPC, read answers with timeouts."""

    def __init__(self, home: Home, target: str, extra_env: dict | None = None, args: tuple = ()):
        self.stderr_path = home.root / f"proxy-{target}-{time.monotonic_ns()}.stderr"
        self.proc = subprocess.Popen(
            [str(PROXY_BIN), "--target", target, *args],
            env=dict(home.env, **(extra_env or {})),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(self.stderr_path, "wb"),
            cwd=str(home.root),
        )
        self.lines: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, message) -> None:
        data = message if isinstance(message, (bytes, str)) else json.dumps(message)
        if isinstance(data, str):
            data = data.encode()
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def request(self, id, method, params=None) -> None:
        message = {"jsonrpc": "2.0", "id": id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def read(self, timeout: float = 15.0):
        """The next message on stdout (parsed), or None at EOF."""
        line = self.lines.get(timeout=timeout)
        return None if line is None else json.loads(line)

    def read_answers(self, ids, timeout: float = 30.0) -> dict:
        """Reads until every id in `ids` is answered; returns id -> message."""
        wanted = set(ids)
        answers = {}
        deadline = time.monotonic() + timeout
        while wanted:
            message = self.read(max(0.1, deadline - time.monotonic()))
            assert message is not None, f"stdout closed with {wanted} unanswered; stderr: {self.stderr()}"
            if "id" in message and "method" not in message and message["id"] in wanted:
                wanted.discard(message["id"])
                answers[message["id"]] = message
        return answers

    def initialize(self, version: str = "2025-06-18", capabilities: dict | None = None) -> dict:
        self.request("init", "initialize", {
            "protocolVersion": version,
            "capabilities": capabilities or {},
            "clientInfo": {"name": "proxy-e2e", "version": "1"},
        })
        answer = self.read_answers(["init"])["init"]
        assert "result" in answer, answer
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return answer

    def close_stdin(self) -> None:
        self.proc.stdin.close()

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text()[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def daemon_pids(home: Home) -> list[int]:
    """Pids of `mcp-session-manager daemon` processes using this test's state dir."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if not cmdline or not cmdline[0].endswith(b"mcp-session-manager") or b"daemon" not in cmdline:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"MCP_SESSION_MANAGER_HOME={home.state}".encode() in environ:
            # zombies have an empty cmdline, so they never count
            pids.append(int(entry.name))
    return pids


def stop_daemons(home: Home) -> None:
    for pid in daemon_pids(home):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    wait_until(lambda: not daemon_pids(home), timeout=15, what="daemons to stop")


def pipelined_handshake(home: Home, target: str) -> None:
    """initialize, initialized and tools/list written in one go, as an eager client may: both
    requests are answered and the proxy ends cleanly."""
    proxy = RawProxy(home, target)
    try:
        pipelined = [
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "eager", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ]
        proxy.send("\n".join(json.dumps(m) for m in pipelined))
        answers = proxy.read_answers([1, 2])
        assert "result" in answers[1], answers[1]
        assert answers[2].get("result", {}).get("tools"), answers[2]
        proxy.close_stdin()
        assert proxy.wait() == 0
    finally:
        proxy.kill()
