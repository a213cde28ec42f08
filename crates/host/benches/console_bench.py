#!/usr/bin/env python3
"""Benchmark of the dashboard and the tray (issue 11). Prints its figures.

Run from the repository root after `cargo build --workspace` (MSM_BIN_DIR picks the build,
`target/debug` by default; a release build gives the representative numbers):

    tests/peers/.venv/bin/python crates/host/benches/console_bench.py [--entities 100000] [--sessions 50] [--idle 60]

1. Memory page on a big DB: a project DB of N entities (and N/2 relations) loaded through the
   store (`mcp-session-manager memory import`), then `GET /memory/dbs/{id}/graph` at the start,
   the middle and the end, and a search, each 20 times (p50, max). Goal: <= 50 ms.
2. Dashboard first paint with S live sessions (stateless clients through the host): headless
   Chromium opens the dashboard; first contentful paint, and the time until the sessions table
   shows all S rows. Goal: <= 300 ms.
3. The tray app (Xvfb, a private session bus, a stand-in StatusNotifier host): launch to every
   enabled target ready, then idle with no window for --idle seconds: CPU % and RSS.
   Goals: <= 500 ms; <= 0.5 % CPU, <= 80 MB RSS.
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
from conftest import MANAGER_BIN, Home, start_host, wait_until  # noqa: E402


def make_home(root: Path) -> Home:
    h, s, tmp = root / "home", root / "state", root / "tmp"
    for d in (h, s, tmp):
        d.mkdir(parents=True)
    env = dict(os.environ, HOME=str(h), MCP_SESSION_MANAGER_HOME=str(s), TMPDIR=str(tmp), RUST_LOG="warn")
    env.pop("CLAUDE_PROJECT_DIR", None)
    return Home(root=root, home=h, state=s, env=env)


def timed_get(url: str, token: str) -> tuple[float, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - start) * 1000, body


def memory_page(root: Path, entities: int) -> None:
    home = make_home(root / "memory")
    project = root / "big-project"
    project.mkdir()
    jsonl = root / "big.jsonl"
    with open(jsonl, "w") as f:
        for i in range(entities):
            f.write(json.dumps({"type": "entity", "name": f"entity-{i:06d}", "entityType": f"type-{i % 20}",
                                "observations": [f"observation {i} about service {i % 997}", f"owner team-{i % 53}"]}) + "\n")
        for i in range(0, entities - 1, 2):
            f.write(json.dumps({"type": "relation", "from": f"entity-{i:06d}", "to": f"entity-{i + 1:06d}", "relationType": "depends_on"}) + "\n")
    start = time.perf_counter()
    subprocess.run([str(MANAGER_BIN), "memory", "import", str(jsonl), "--project", str(project)],
                   env=home.env, check=True, capture_output=True)
    print(f"memory: imported {entities:,} entities through the store in {time.perf_counter() - start:.1f} s")
    host = start_host(home)
    try:
        _, dbs = timed_get(f"{host.manager_url}/memory/dbs", home.token)
        db = next(d for d in dbs["dbs"] if d["project"] == str(project.resolve()))
        base = f"{host.manager_url}/memory/dbs/{db['id']}/graph"
        for label, query in [("first page", "?offset=0&limit=20"), ("middle page", f"?offset={entities // 2}&limit=20"),
                             ("last page", f"?offset={entities - 20}&limit=20"), ("search 'service 42'", "?q=service%2042&limit=20")]:
            times = []
            for _ in range(20):
                ms, page = timed_get(base + query, home.token)
                times.append(ms)
            print(f"memory page ({label}, {len(page['entities'])} of {page['total']:,}): p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms  (goal <= 50 ms)")
    finally:
        host.stop()


def dashboard_paint(root: Path, sessions: int) -> None:
    from test_ui import Browser, dashboard_url

    home = make_home(root / "paint")
    host = start_host(home)
    try:
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}}
        for i in range(sessions):
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": meta}}).encode()
            request = urllib.request.Request(host.url(), data=body, method="POST", headers=host.headers(root) | {
                "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list", "Mcp-Proxy-Instance": f"bench-{i}"})
            urllib.request.urlopen(request, timeout=10).read()
        shots = root / "shots"
        shots.mkdir()
        browser = Browser(shots)
        try:
            paints, rows = [], []
            for _ in range(5):
                browser("goto", url=dashboard_url(host))
                done = browser("eval", expression=f"""new Promise((resolve) => {{
                    const check = () => document.querySelectorAll('#sessions-table tbody tr').length >= {sessions}
                        ? resolve(performance.now()) : requestAnimationFrame(check);
                    check();
                }})""")
                fcp = browser("eval", expression="(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || null")
                paints.append(fcp)
                rows.append(done)
            print(f"dashboard with {sessions} live sessions: first contentful paint p50 {statistics.median(paints):.0f} ms, "
                  f"all {sessions} sessions shown p50 {statistics.median(rows):.0f} ms  (goal <= 300 ms)")
        finally:
            browser.close()
    finally:
        host.stop()


def tray(root: Path, idle: int) -> None:
    import shutil

    if shutil.which("Xvfb") is None or shutil.which("dbus-daemon") is None:
        print("tray: skipped (needs Xvfb and dbus-daemon)")
        return
    from test_ui_tray import SNI_HOST_SCRIPT, SYSTEM_PYTHON, Desktop, api_status, stop_tray, system_python_has_gi
    from conftest import free_port

    home = make_home(root / "tray")
    manager_port = free_port()
    home.write_config(f"[manager]\nport = {manager_port}\n\n[targets.memory]\nbuiltin = \"memory\"\nport = {free_port()}\n")
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = f":{xvfb.stdout.readline().strip()}"
    bus_path = root / "bus"
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={bus_path}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [xvfb, bus]
    try:
        wait_until(bus_path.exists, timeout=10, what="the session bus")
        desktop = Desktop(display=display, bus_address=f"unix:path={bus_path}", procs=[])
        env = desktop.env(home.env)
        if system_python_has_gi():
            script = root / "sni_host.py"
            script.write_text(SNI_HOST_SCRIPT)
            sni = subprocess.Popen([SYSTEM_PYTHON, str(script), "watch", str(root / "items.json")], env=env, stdout=subprocess.PIPE, text=True)
            procs.insert(0, sni)
            sni.stdout.readline()
        log = open(root / "tray.stderr", "wb")
        start = time.perf_counter()
        proc = subprocess.Popen([str(MANAGER_BIN)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)

        def ready():
            try:
                status = api_status(home, manager_port)
            except OSError:
                return False
            return all(t["state"] == "running" for t in status["targets"] if t["enabled"] and t["kind"] != "remote")

        wait_until(ready, timeout=30, interval=0.005, what="every enabled target running")
        print(f"tray: launch to every enabled target ready {(time.perf_counter() - start) * 1000:.0f} ms  (goal <= 500 ms)")
        time.sleep(2)  # let start-up settle before measuring idle
        ticks = lambda: sum(int(x) for x in Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
        before, t0 = ticks(), time.perf_counter()
        time.sleep(idle)
        cpu = (ticks() - before) / 100 / (time.perf_counter() - t0) * 100
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if line.startswith("VmRSS:"))
        print(f"tray idle {idle} s, no window: CPU {cpu:.2f} % (goal <= 0.5 %), RSS {rss / 1024:.0f} MiB (goal <= 80 MB)")
        stop_tray(proc)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--idle", type=int, default=60)
    parser.add_argument("--only", choices=["memory", "paint", "tray"])
    args = parser.parse_args()
    print(f"binary: {MANAGER_BIN}")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        root = Path(tmp)
        if args.only in (None, "memory"):
            memory_page(root, args.entities)
        if args.only in (None, "paint"):
            dashboard_paint(root, args.sessions)
        if args.only in (None, "tray"):
            tray(root, args.idle)


if __name__ == "__main__":
    main()
