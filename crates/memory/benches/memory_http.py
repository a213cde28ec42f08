"""The memory benchmark end to end, through the real daemon over streamable HTTP with the
official Python SDK (client overhead included), beside the reference server over stdio.

Run from the repository root after `cargo build -p mcp-session-manager`:
    tests/peers/.venv/bin/python crates/memory/benches/memory_http.py
Prints: create_entities throughput with 10 concurrent sessions, and search_nodes p50/p99 on
10k entities for ours and the reference, and on 100k entities for ours.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import Home, start_host  # noqa: E402
from _host_util import mcp_client  # noqa: E402
from _memory_util import ReferenceServer  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "ber", "dan", "fel", "gor", "hal", "jon",
             "kir", "lum", "mor", "nix", "pra", "quo", "ros", "sil", "tur", "wen"]


def words(rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < 5000:
        out.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def graph(n: int, vocab: list[str], rng: random.Random):
    entities = [{
        "name": f"Entity-{i:06}",
        "entityType": ["person", "project", "library", "decision", "bug", "meeting", "service", "Straße"][i % 8],
        "observations": [
            f"Works on {rng.choice(vocab)} with the {rng.choice(vocab)} team",
            f"Prefers {rng.choice(vocab)} over {rng.choice(vocab)} since {2000 + i % 25}",
            f"Note {i}: ÄÖÜ {rng.choice(vocab)} 100% {rng.choice(vocab)}",
        ],
    } for i in range(n)]
    relations = [{"from": f"Entity-{i:06}", "to": f"Entity-{rng.randrange(n):06}", "relationType": "depends on"} for i in range(n)]
    return entities, relations


def queries(vocab, n, count, rng):
    out = []
    for i in range(count):
        out.append([rng.choice(vocab).upper(), f"entity-{rng.randrange(n):06}", f"note {rng.randrange(n)}:"][i % 3])
    return out


class RawSession:
    """A bare JSON-RPC client of one session (2025-06-18) over one keep-alive connection: the
    daemon's own cost without the SDK's validation of large results."""

    def __init__(self, host, project):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", host.ports["memory"], timeout=60)
        self.headers = host.headers(project) | {"Accept": "application/json, text/event-stream",
                                                "Content-Type": "application/json"}
        answer, headers = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        self.headers |= {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"}
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.next_id = 1

    def post(self, message):
        self.conn.request("POST", "/mcp", json.dumps(message).encode(), self.headers)
        response = self.conn.getresponse()
        body = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        if not body:
            return None, headers
        if headers.get("content-type", "").startswith("text/event-stream"):
            body = b"".join(line[5:] for line in body.splitlines() if line.startswith(b"data:"))
        return json.loads(body), headers

    def search(self, query):
        self.next_id += 1
        answer, _ = self.post({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                               "params": {"name": "search_nodes", "arguments": {"query": query}}})
        return answer["result"]


def raw_throughput(host, project, sessions=10, calls=100, per_call=10):
    """10 threads, each its own session and connection, writing at once."""
    import threading
    errors = []
    session_list = [RawSession(host, project) for _ in range(sessions)]

    def writer(w, session):
        for c in range(calls):
            batch = [{"name": f"raw-w{w}-c{c}-k{k}", "entityType": "load",
                      "observations": [f"writer {w}", f"call {c}", "third"]} for k in range(per_call)]
            session.next_id += 1
            answer, _ = session.post({"jsonrpc": "2.0", "id": session.next_id, "method": "tools/call",
                                      "params": {"name": "create_entities", "arguments": {"entities": batch}}})
            if "error" in answer or answer["result"].get("isError"):
                errors.append(json.dumps(answer)[:300])

    threads = [threading.Thread(target=writer, args=(w, s)) for w, s in enumerate(session_list)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    total = sessions * calls * per_call
    with sqlite3.connect(project / ".claude" / "memory.db") as conn:
        stored = conn.execute("SELECT count(*) FROM mem_entities WHERE name LIKE 'raw-%'").fetchone()[0]
    locked = sum("locked" in e for e in errors)
    print(f"create_entities over HTTP (bare JSON-RPC), {sessions} concurrent sessions x {calls} calls x {per_call} entities: "
          f"{total / elapsed:,.0f} entities/s, {len(errors)} errors ({locked} lock errors), {stored}/{total} stored")


def raw_searches(host, project, qs):
    session = RawSession(host, project)
    times, hits = [], 0
    for q in qs:
        start = time.perf_counter()
        result = session.search(q)
        times.append(time.perf_counter() - start)
        hits += len(result["structuredContent"]["entities"])
    return times, hits


def pct(times, p):
    times = sorted(times)
    return times[round((len(times) - 1) * p)] * 1000


async def load(host, project, entities, relations):
    async with mcp_client(host.url(), host.headers(project), "legacy") as client:
        for i in range(0, len(entities), 200):
            await client.call_tool("create_entities", {"entities": entities[i:i + 200]})
        for i in range(0, len(relations), 1000):
            await client.call_tool("create_relations", {"relations": relations[i:i + 1000]})


async def time_searches(host, project, qs, mode="legacy"):
    """Times each query; answers over the SDK's 1 MB event limit are left out (and counted)."""
    times, hits, too_big = [], 0, 0
    async with mcp_client(host.url(), host.headers(project), mode) as client:
        for q in qs:
            start = time.perf_counter()
            try:
                result = await client.call_tool("search_nodes", {"query": q})
            except Exception as e:  # noqa: BLE001
                if "byte limit" not in str(e):
                    raise
                too_big += 1
                continue
            times.append(time.perf_counter() - start)
            hits += len(result.structured_content["entities"])
    if too_big:
        print(f"  ({too_big} answers over the Python SDK's 1 MB limit left out)")
    return times, hits


async def throughput(host, project, sessions=10, calls=100, per_call=10):
    errors = []

    async def writer(w):
        async with mcp_client(host.url(), host.headers(project), "legacy") as client:
            for c in range(calls):
                batch = [{"name": f"w{w}-c{c}-k{k}", "entityType": "load",
                          "observations": [f"writer {w}", f"call {c}", "third"]} for k in range(per_call)]
                result = await client.call_tool("create_entities", {"entities": batch})
                if result.is_error:
                    errors.append(result.content[0].text)

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(sessions):
            tg.start_soon(writer, w)
    elapsed = time.perf_counter() - start
    total = sessions * calls * per_call
    with sqlite3.connect(project / ".claude" / "memory.db") as conn:
        stored = conn.execute("SELECT count(*) FROM mem_entities WHERE name LIKE 'w%'").fetchone()[0]
    locked = sum("locked" in e for e in errors)
    print(f"create_entities over HTTP with the Python SDK, {sessions} concurrent sessions x {calls} calls x {per_call} entities: "
          f"{total / elapsed:,.0f} entities/s, {len(errors)} errors ({locked} lock errors), {stored}/{total} stored")


def main():
    import logging
    logging.disable(logging.WARNING)  # the SDK's "Session termination failed: 202" lines
    rng = random.Random(42)
    vocab = words(rng)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for d in ("home", "state", "tmp", "p10k", "p100k", "pload"):
            (root / d).mkdir()
        env = dict(os.environ, HOME=str(root / "home"), MCP_SESSION_MANAGER_HOME=str(root / "state"),
                   TMPDIR=str(root / "tmp"), RUST_LOG="warn")
        home = Home(root=root, home=root / "home", state=root / "state", env=env)
        host = start_host(home)
        try:
            anyio.run(throughput, host, root / "pload")
            raw_throughput(host, root / "pload")

            entities, relations = graph(10_000, vocab, rng)
            anyio.run(load, host, root / "p10k", entities, relations)
            qs = queries(vocab, 10_000, 60, rng)
            sdk_times, sdk_hits = anyio.run(time_searches, host, root / "p10k", qs)
            ours, our_hits = raw_searches(host, root / "p10k", qs)
            jsonl = root / "reference.jsonl"
            jsonl.write_text("\n".join(
                [json.dumps({"type": "entity", **e}) for e in entities]
                + [json.dumps({"type": "relation", **r}) for r in relations]))
            reference = ReferenceServer(jsonl, env=env)
            reference.call("search_nodes", {"query": "warm up"})
            theirs, their_hits = [], 0
            try:
                for q in qs:
                    start = time.perf_counter()
                    result = reference.call("search_nodes", {"query": q})
                    theirs.append(time.perf_counter() - start)
                    their_hits += len(result["structuredContent"]["entities"])
            finally:
                reference.close()
            print(f"search_nodes on 10k entities ({len(qs)} queries): ours over HTTP with the Python SDK p50 "
                  f"{pct(sdk_times, .5):.2f} ms p99 {pct(sdk_times, .99):.2f} ms")
            print(f"search_nodes on 10k entities ({len(qs)} queries): ours over HTTP (bare JSON-RPC) p50 {pct(ours, .5):.2f} ms "
                  f"p99 {pct(ours, .99):.2f} ms | reference over stdio p50 {pct(theirs, .5):.1f} ms "
                  f"p99 {pct(theirs, .99):.1f} ms | {statistics.median(theirs) / statistics.median(ours):.0f}x faster; "
                  f"same hits: {our_hits == their_hits}")

            entities, relations = graph(100_000, vocab, rng)
            start = time.perf_counter()
            anyio.run(load, host, root / "p100k", entities, relations)
            print(f"loaded 100k entities over HTTP in {time.perf_counter() - start:.1f} s")
            qs = queries(vocab, 100_000, 300, rng)
            ours, hits = raw_searches(host, root / "p100k", qs)
            print(f"search_nodes on 100k entities over HTTP (bare JSON-RPC, {len(qs)} queries, "
                  f"{hits / len(qs):.1f} hits avg): p50 {pct(ours, .5):.2f} ms, p99 {pct(ours, .99):.2f} ms")
            for mode in ("legacy", "2026-07-28"):
                ours, hits = anyio.run(time_searches, host, root / "p100k", qs, mode)
                print(f"search_nodes on 100k entities over HTTP ({mode} client, {len(qs)} queries, "
                      f"{hits / len(qs):.1f} hits avg): p50 {pct(ours, .5):.2f} ms, p99 {pct(ours, .99):.2f} ms")
        finally:
            host.stop()


if __name__ == "__main__":
    main()
