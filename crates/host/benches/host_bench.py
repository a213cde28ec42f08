#!/usr/bin/env python3
"""Benchmark of the host (issue 5): memory for 50 sessions, and shared stdio hosting.

Run from the repository root after `cargo build -p mcp-session-manager -p msm-proxy` (or
`--release`; the release binaries are used when present):

    tests/peers/.venv/bin/python crates/host/benches/host_bench.py [--sessions 50] [--requests 2000]

1. RSS: N Claude Code sessions on one shared memory daemon (N `mcp-session-proxy` processes
   plus the host) against N separate stdio reference servers (`@modelcontextprotocol/server-memory`,
   what each session runs today). Every session initializes, writes an entity and searches, then
   the resident set sizes of all processes are summed. Goal: ours <= 1/10.
2. Shared stdio hosting of server-everything: tools/call `echo` through the host's stdio bridge
   from 10 concurrent sessions (requests per second), and the latency the bridge adds over
   talking to the same server's stdio directly (one client, sequential, p50/p99).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PEERS = REPO / "tests" / "peers"
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import built_binary as binary, free_port  # noqa: E402
NODE_MODULES = PEERS / "node_modules"
SERVER_MEMORY = NODE_MODULES / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}



def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it (npx -> node, host -> children)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class StdioPeer:
    """A newline-delimited JSON-RPC peer on a child's stdin/stdout."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.next_id = 0

    def request(self, method: str, params: dict) -> dict:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{method}: the peer closed its stdout")
            message = json.loads(line)
            if message.get("id") == self.next_id and "method" not in message:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def handshake(self) -> None:
        self.request("initialize", INIT)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def exercise(peer: StdioPeer, n: int) -> None:
    peer.handshake()
    peer.request("tools/call", {"name": "create_entities", "arguments": {"entities": [
        {"name": f"entity-{n}", "entityType": "bench", "observations": [f"observation {n}"]}]}})
    peer.request("tools/call", {"name": "search_nodes", "arguments": {"query": f"entity-{n}"}})


def start_host(root: Path, extra: str = "") -> tuple[subprocess.Popen, dict, dict]:
    state, home = root / "state", root / "home"
    state.mkdir(parents=True)
    home.mkdir(parents=True)
    ports = {"manager": free_port(), "memory": free_port(), "everything": free_port()}
    (state / "config.toml").write_text(
        f"[manager]\nport = {ports['manager']}\n[targets.memory]\nbuiltin = \"memory\"\nport = {ports['memory']}\n{extra}"
        .replace("{everything}", str(ports["everything"])))
    env = dict(os.environ, HOME=str(home), MCP_SESSION_MANAGER_HOME=str(state), RUST_LOG="warn")
    proc = subprocess.Popen([str(binary("mcp-session-manager")), "daemon"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{ports['manager']}/health", timeout=1)
            urllib.request.urlopen(f"http://127.0.0.1:{ports['memory']}/health", timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    return proc, ports, env


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def bench_rss(sessions: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        host, _, env = start_host(root / "ours")
        proxies = [StdioPeer([str(binary("mcp-session-proxy")), "--target", "memory"], env) for _ in range(sessions)]
        for n, peer in enumerate(proxies):
            exercise(peer, n)
        host_kib = sum(rss_kib(p) for p in descendants(host.pid))
        proxy_kib = sum(rss_kib(peer.proc.pid) for peer in proxies)
        for peer in proxies:
            peer.close()
        stop(host)

        reference_env = dict(os.environ, HOME=str(root / "ours" / "home"))
        references = []
        for n in range(sessions):
            env_n = dict(reference_env, MEMORY_FILE_PATH=str(root / f"memory-{n}.jsonl"))
            references.append(StdioPeer(["node", str(SERVER_MEMORY)], env_n))
        for n, peer in enumerate(references):
            exercise(peer, n)
        reference_kib = sum(rss_kib(p) for peer in references for p in descendants(peer.proc.pid))
        for peer in references:
            peer.close()

    ours = host_kib + proxy_kib
    print(f"\n{sessions} sessions, total RSS after initialize + create_entities + search_nodes each:")
    print(f"  ours: host {host_kib / 1024:.1f} MB + {sessions} proxies {proxy_kib / 1024:.1f} MB "
          f"({proxy_kib / sessions / 1024:.1f} MB each) = {ours / 1024:.1f} MB")
    print(f"  {sessions} reference servers (node server-memory): {reference_kib / 1024:.1f} MB "
          f"({reference_kib / sessions / 1024:.1f} MB each)")
    print(f"  ratio ours/reference: {ours / reference_kib:.3f} (goal <= 0.100)")


def post_json(port: int, path: str, body: dict, headers: dict) -> tuple[int, dict, dict]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, json.dumps(body), headers | {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    response = conn.getresponse()
    raw = response.read().decode()
    conn.close()
    if response.getheader("content-type", "").startswith("text/event-stream"):
        data = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:") and line[5:].strip().startswith("{")]
        message = json.loads(data[-1]) if data else {}
    else:
        message = json.loads(raw) if raw else {}
    return response.status, dict(response.getheaders()), message


class HttpSession:
    """One streamable HTTP session on a keep-alive connection."""

    def __init__(self, port: int, token: str):
        import http.client

        self.port, self.conn = port, http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                        "Accept": "application/json, text/event-stream"}
        message = self.call("initialize", INIT, want_session=True)
        assert "result" in message, message
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.next_id = 1

    def post(self, body: dict) -> tuple[dict, str]:
        self.conn.request("POST", "/mcp", json.dumps(body), self.headers)
        response = self.conn.getresponse()
        raw = response.read().decode()
        if response.getheader("mcp-session-id"):
            self.headers["Mcp-Session-Id"] = response.getheader("mcp-session-id")
            self.headers["MCP-Protocol-Version"] = INIT["protocolVersion"]
        return dict(response.getheaders()), raw

    def call(self, method: str, params: dict, want_session: bool = False) -> dict:
        self.next_id = getattr(self, "next_id", 0) + 1
        _, raw = self.post({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        data = [line[5:].strip() for line in raw.splitlines() if line.startswith("data:") and line[5:].strip().startswith("{")]
        return json.loads(data[-1]) if data else json.loads(raw)


def bench_shared_stdio(requests: int, clients: int = 10) -> None:
    echo = {"name": "echo", "arguments": {"message": "hello"}}
    with tempfile.TemporaryDirectory() as tmp:
        extra = (f'[targets.everything]\ncommand = "node"\nargs = ["{EVERYTHING}", "stdio"]\n'
                 'transport = "stdio"\nport = {everything}\n')
        host, ports, env = start_host(Path(tmp), extra)
        token = (Path(tmp) / "state" / "token").read_text().strip()
        urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{ports['manager']}/daemons/everything/ensure", method="POST",
            headers={"Authorization": f"Bearer {token}"}), timeout=60)

        sessions = [HttpSession(ports["everything"], token) for _ in range(clients)]
        per_client = max(1, requests // clients)
        errors = []

        def run(session: HttpSession) -> None:
            for _ in range(per_client):
                answer = session.call("tools/call", echo)
                if "result" not in answer:
                    errors.append(answer)

        threads = [threading.Thread(target=run, args=(s,)) for s in sessions]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        total = per_client * clients

        single = HttpSession(ports["everything"], token)
        bridged = []
        for _ in range(min(requests, 1000)):
            t0 = time.perf_counter()
            single.call("tools/call", echo)
            bridged.append((time.perf_counter() - t0) * 1e6)
        stop(host)

    direct_peer = StdioPeer(["node", str(EVERYTHING), "stdio"], dict(os.environ))
    direct_peer.handshake()
    direct = []
    for _ in range(min(requests, 1000)):
        t0 = time.perf_counter()
        direct_peer.request("tools/call", echo)
        direct.append((time.perf_counter() - t0) * 1e6)
    direct_peer.close()

    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(len(xs) * q / 100))]

    print(f"\nshared stdio hosting of server-everything (tools/call echo):")
    print(f"  {clients} concurrent sessions through the bridge: {total} requests in {elapsed:.2f}s = "
          f"{total / elapsed:.0f} req/s, {len(errors)} errors")
    print(f"  one client, sequential: direct stdio p50 {pct(direct, 50):.0f} us p99 {pct(direct, 99):.0f} us; "
          f"through the bridge (HTTP) p50 {pct(bridged, 50):.0f} us p99 {pct(bridged, 99):.0f} us; "
          f"added p50 {pct(bridged, 50) - pct(direct, 50):.0f} us p99 {pct(bridged, 99) - pct(direct, 99):.0f} us")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"binaries: {binary('mcp-session-manager')}, {binary('mcp-session-proxy')}")
    bench_rss(args.sessions)
    bench_shared_stdio(args.requests)


if __name__ == "__main__":
    main()
