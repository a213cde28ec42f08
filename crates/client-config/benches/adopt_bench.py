#!/usr/bin/env python3
"""Benchmark of adoption (issue 9). Run from the repository root after
`cargo build --release` (the release binaries are used when present, else debug):

    tests/peers/.venv/bin/python crates/client-config/benches/adopt_bench.py [--windows 5]

1. RSS of W Claude Code windows x 6 stdio servers (everything, filesystem rooted at the
   project, the reference memory server with its file, sequential-thinking, time, and a user's
   FastMCP server): before adoption each window starts its own 6 children; after, the host
   with the children it keeps (shared, per project, per window) plus one proxy per window and
   server. Every server gets initialize + tools/list in every window. Goal: after <= 1/3.
2. `adopt --all` of 20 servers (no host running: server start excluded). Goal: <= 1 s.
3. A proxy's first answer (initialize) from an on-demand server that is idle (the child
   starts), against one whose child already runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "crates" / "host" / "benches"))
from conftest import FASTMCP_PYTHON, NODE_BIN, built_binary as binary, free_port  # noqa: E402
from host_bench import StdioPeer, descendants, rss_kib  # noqa: E402

PYTHON = REPO / "tests" / "peers" / ".venv" / "bin" / "python"
NOTES = REPO / "tests" / "e2e" / "servers" / "notes_stdio_server.py"


def fleet(root: Path) -> dict:
    return {
        "everything": {"command": str(NODE_BIN / "mcp-server-everything"), "args": ["stdio"]},
        "filesystem": {"command": str(NODE_BIN / "mcp-server-filesystem"), "args": ["."]},
        "memory": {"command": str(NODE_BIN / "mcp-server-memory"), "env": {"MEMORY_FILE_PATH": str(root / "memory.jsonl")}},
        "thinking": {"command": str(NODE_BIN / "mcp-server-sequential-thinking")},
        "time": {"command": str(PYTHON), "args": ["-m", "mcp_server_time"]},
        "notes": {"command": str(FASTMCP_PYTHON), "args": [str(NOTES)], "env": {"NOTES_TOKEN": "x"}},
    }


def total_rss_mib(pids: list[int]) -> float:
    return sum(rss_kib(p) for p in set(pids)) / 1024


def total_pss_mib(pids: list[int]) -> float:
    """Proportional set size: a page shared by N processes (a binary's code) counts 1/N each."""
    total = 0
    for pid in set(pids):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def use(peer: StdioPeer) -> None:
    peer.handshake()
    peer.request("tools/list", {})


def before(root: Path, windows: int, env: dict) -> float:
    peers = []
    servers = fleet(root)
    for _ in range(windows):
        for entry in servers.values():
            peer = StdioPeer([entry["command"], *entry.get("args", [])], dict(env, **entry.get("env", {})))
            use(peer)
            peers.append(peer)
    time.sleep(1)
    pids = [p for peer in peers for p in descendants(peer.proc.pid)]
    rss, pss = total_rss_mib(pids), total_pss_mib(pids)
    for peer in peers:
        peer.close()
    return rss, pss


def after(root: Path, windows: int, env: dict, projects: list[Path], share: tuple[str, ...]) -> tuple[dict, float, int]:
    manager = binary("mcp-session-manager")
    proxy = binary("mcp-session-proxy")
    state = Path(env["MCP_SESSION_MANAGER_HOME"])
    host = subprocess.Popen([str(manager), "daemon"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    port = int((state / "config.toml").read_text().split("port = ", 1)[1].split()[0])
    wait(f"http://127.0.0.1:{port}/health")
    share_args = [a for choice in share for a in ("--share", choice)]
    subprocess.run([str(manager), "adopt", "--all", *share_args], env=env, cwd=projects[0], check=True, capture_output=True)
    # What each window now runs for each server: the client entry adoption wrote.
    entries = json.loads((root / "home" / ".claude.json").read_text())["mcpServers"]
    peers = []
    for window in range(windows):
        for name in fleet(root):
            args = entries[name]["args"]
            target = args[args.index("--target") + 1]
            peer = StdioPeer([str(proxy), "--target", target, "--project", str(projects[window])], env)
            use(peer)
            peers.append(peer)
    time.sleep(1)
    child_pids = [p for p in descendants(host.pid) if p != host.pid]
    proxy_pids = [p for peer in peers for p in descendants(peer.proc.pid)]
    if os.environ.get("BENCH_VERBOSE"):
        for pid in child_pids:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            print(f"  child {pid} {rss_kib(pid) // 1024} MiB: {cmd[:150]}")
    parts = {"host": total_rss_mib([host.pid]), "children": total_rss_mib(child_pids),
             "proxies": total_rss_mib(proxy_pids)}
    pss = total_pss_mib([host.pid, *child_pids, *proxy_pids])
    for peer in peers:
        peer.close()
    host.terminate()
    host.wait(30)
    return parts, pss, len(child_pids)


def wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer")


def setup(root: Path) -> dict:
    home, state = root / "home", root / "state"
    home.mkdir()
    state.mkdir()
    base = free_port() // 100 * 100 % 50000 + 10000
    (state / "config.toml").write_text(
        f"[manager]\nport = {free_port()}\nadopt_ports = [{base}, {base + 99}]\n\n"
        f"[targets.memory]\nbuiltin = \"memory\"\nport = {free_port()}\n")
    return dict(os.environ, HOME=str(home), MCP_SESSION_MANAGER_HOME=str(state), RUST_LOG="warn",
                MCP_SESSION_MANAGER_LOG="warn")


def bench_rss(windows: int, same_project: bool, share: tuple[str, ...] = (), label: str = "") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = setup(root)
        projects = [root / f"project-{0 if same_project else w}" for w in range(windows)]
        for p in projects:
            p.mkdir(exist_ok=True)
        (root / "home" / ".claude.json").write_text(json.dumps({"mcpServers": fleet(root)}))
        env_cwd = dict(env)
        rss_before, pss_before = before(root, windows, env_cwd)
        parts, pss_after, children = after(root, windows, env, projects, share)
        rss_after = sum(parts.values())
        where = "one project" if same_project else f"{windows} projects"
        print(f"RSS, {windows} windows x 6 servers on {where}{label}: before {rss_before:.0f} MiB "
              f"({windows * 6} children); after {rss_after:.0f} MiB (host {parts['host']:.0f}, {children} children "
              f"{parts['children']:.0f}, {windows * 6} proxies {parts['proxies']:.0f}): "
              f"{rss_after / rss_before:.2f} of before (goal <= 0.33); PSS {pss_before:.0f} -> {pss_after:.0f} MiB: "
              f"{pss_after / pss_before:.2f}")


def bench_adopt_20() -> None:
    times = []
    for _ in range(5):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            env = setup(root)
            servers = {f"server-{i}": {"command": "uvx", "args": [f"tool-{i}"], "env": {"TOKEN": f"t{i}"}} for i in range(20)}
            (root / "home" / ".claude.json").write_text(json.dumps({"mcpServers": servers}, indent=2))
            started = time.perf_counter()
            subprocess.run([str(binary("mcp-session-manager")), "adopt", "--all"], env=env, cwd=root, check=True,
                           capture_output=True)
            times.append(time.perf_counter() - started)
    print(f"adopt --all of 20 servers: median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms (goal <= 1000 ms; no host running)")


def bench_first_answer() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = setup(root)
        state = Path(env["MCP_SESSION_MANAGER_HOME"])
        port = free_port()
        with open(state / "config.toml", "a") as f:
            f.write(f'\n[targets.everything]\ncommand = "{NODE_BIN / "mcp-server-everything"}"\nargs = ["stdio"]\n'
                    f'transport = "stdio"\nport = {port}\nstart = "on-demand"\nidle_stop_secs = 1\n')
        manager_port = int((state / "config.toml").read_text().split("port = ", 1)[1].split()[0])
        host = subprocess.Popen([str(binary("mcp-session-manager")), "daemon"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        wait(f"http://127.0.0.1:{manager_port}/health")
        wait(f"http://127.0.0.1:{port}/health")
        cold, warm = [], []
        for _ in range(5):
            for bucket in (cold, warm):
                started = time.perf_counter()
                peer = StdioPeer([str(binary("mcp-session-proxy")), "--target", "everything"], env)
                peer.handshake()
                bucket.append(time.perf_counter() - started)
                if bucket is cold:
                    keep = peer
                else:
                    peer.close()
            keep.close()
            time.sleep(2.5)  # idle_stop_secs = 1: the child stops again
        host.terminate()
        host.wait(30)
        print(f"first answer through a new proxy: idle on-demand server (child starts) median "
              f"{statistics.median(cold) * 1000:.0f} ms; child already running median {statistics.median(warm) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--rss-only", action="store_true")
    args = parser.parse_args()
    if not args.rss_only:
        bench_adopt_20()
        bench_first_answer()
    bench_rss(args.windows, same_project=True)
    bench_rss(args.windows, same_project=False)
    # The user's own server is proposed per session (unknown state); one the user knows to be
    # stateless can be switched to shared before applying, as the Servers page offers.
    bench_rss(args.windows, same_project=True, share=("notes=shared",), label=", notes switched to shared")


if __name__ == "__main__":
    main()
