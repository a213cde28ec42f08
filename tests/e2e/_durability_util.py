"""Helpers of the memory durability tests (test_memory_durability.py): a raw JSON-RPC session of
the memory target over one keep-alive connection, the manager's `GET /events` read in a thread,
checks of a DB file from outside the host (Python's sqlite3 and the `sqlite3` shell), and small
tmpfs mounts for the full-disk and read-only cases (root only)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from _host_util import jsonrpc

MCP_ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
SESSION_REVISION = "2025-11-25"


class RawSession:
    """One session-revision (initialize + notifications/initialized) client of the memory target
    over one keep-alive HTTP/1.1 connection, speaking raw JSON-RPC. `headers` carry the token and
    `Mcp-Project-Path` (`Host.headers(project)`). Errors of the connection (a killed host) raise
    `OSError` or `http.client.HTTPException`."""

    def __init__(self, port: int, headers: dict, timeout: float = 10.0):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = headers | MCP_ACCEPT
        self.next_id = 0
        answer, response_headers = self._post(self._message("initialize", {
            "protocolVersion": SESSION_REVISION, "capabilities": {},
            "clientInfo": {"name": "durability", "version": "0"}}))
        assert "result" in answer, answer
        self.headers |= {"Mcp-Session-Id": response_headers["mcp-session-id"],
                         "MCP-Protocol-Version": answer["result"]["protocolVersion"]}
        status, response = self._send(jsonrpc("notifications/initialized", id=None))
        response.read()
        assert status == 202, status

    @classmethod
    def of(cls, host, project) -> "RawSession":
        """A session on `host`'s memory target for `project`."""
        return cls(host.ports["memory"], host.headers(project))

    def _message(self, method: str, params: dict | None) -> bytes:
        self.next_id += 1
        return jsonrpc(method, params, id=self.next_id)

    def _send(self, body: bytes):
        self.conn.request("POST", "/mcp", body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response

    def _post(self, body: bytes):
        """POSTs one request; returns (its JSON-RPC answer, lower-cased response headers)."""
        status, response = self._send(body)
        headers = {k.lower(): v for k, v in response.getheaders()}
        raw = response.read()
        if status != 200:
            raise AssertionError(f"HTTP {status}: {raw[:2000]!r}")
        if headers.get("content-type", "").startswith("text/event-stream"):
            for event in raw.decode().replace("\r\n", "\n").split("\n\n"):
                data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
                if data.startswith("{"):
                    message = json.loads(data)
                    if message.get("id") == self.next_id:
                        return message, headers
            raise AssertionError(f"no answer to request {self.next_id} in the SSE body: {raw[:2000]!r}")
        return json.loads(raw), headers

    def request(self, method: str, params: dict | None = None) -> dict:
        """The JSON-RPC answer (`result` or `error`) of one request."""
        return self._post(self._message(method, params))[0]

    def call(self, tool: str, arguments: dict) -> dict:
        """The `result` of one tools/call (a tool error is a result with `isError`)."""
        answer = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "result" in answer, answer
        return answer["result"]

    def ok(self, tool: str, arguments: dict) -> dict:
        """The structuredContent of a tools/call that must succeed."""
        result = self.call(tool, arguments)
        assert not result.get("isError"), result
        return result["structuredContent"]

    def create(self, *names: str, observations=("x",)) -> list[str]:
        """create_entities of `names` (entity type `note`), which must succeed; the created names."""
        created = self.ok("create_entities", {"entities": [entity(n, observations) for n in names]})
        return [e["name"] for e in created["entities"]]

    def graph_names(self) -> list[str]:
        return [e["name"] for e in self.ok("read_graph", {})["entities"]]

    def close(self) -> None:
        try:
            self.conn.request("DELETE", "/mcp", headers=self.headers)
            self.conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            pass
        self.conn.close()


def entity(name: str, observations=("x",), entity_type: str = "note") -> dict:
    return {"name": name, "entityType": entity_type, "observations": list(observations)}


def tool_text(result: dict) -> str:
    return "\n".join(c.get("text", "") for c in result.get("content", []))


def db_names(db: Path) -> set[str]:
    """Entity names in `db` read by Python's sqlite3 (another process's view: the test's)."""
    assert db.is_file(), f"{db} does not exist"
    conn = sqlite3.connect(db)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM mem_entities")}
    finally:
        conn.close()


def cli_names(db: Path) -> set[str] | None:
    """Entity names in `db` read by the `sqlite3` shell; None when it is not installed."""
    shell = shutil.which("sqlite3")
    if shell is None:
        return None
    assert db.is_file(), f"{db} does not exist"
    run = subprocess.run([shell, str(db), "SELECT name FROM mem_entities;"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.splitlines())


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


class EventReader:
    """The manager's `GET /events` SSE stream, read in a thread into `events` ((kind, data)
    pairs). The first event (`status`) has been read when the constructor returns, so every
    change after that is seen."""

    def __init__(self, host):
        self.conn = http.client.HTTPConnection("127.0.0.1", host.manager_port, timeout=30)
        self.conn.request("GET", "/events", headers=host.headers() | {"Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        first = self._read_event()
        assert first is not None and first[0] == "status", first
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read_event(self):
        kind, data = "message", []
        while True:
            line = self.response.fp.readline()
            if not line:
                return None
            line = line.decode(errors="replace").rstrip("\r\n")
            if line == "":
                if data:
                    return kind, json.loads("\n".join(data))
                kind = "message"
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name == "event":
                kind = value.lstrip(" ")
            elif name == "data":
                data.append(value.lstrip(" "))

    def _run(self):
        try:
            while (event := self._read_event()) is not None:
                with self.lock:
                    self.events.append(event)
        except (OSError, ValueError, http.client.HTTPException):
            pass

    def changes(self, type_: str) -> list[dict]:
        with self.lock:
            return [data for kind, data in self.events if kind == "change" and data.get("type") == type_]

    def wait_for(self, type_: str, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.changes(type_):
                return found
            time.sleep(0.05)
        return self.changes(type_)

    def close(self):
        try:
            self.conn.sock and self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()


def require_root_mounts() -> None:
    """Skips unless the test runs as root where `mount -t tmpfs` works."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root: mounts a small tmpfs (a full disk, a read-only file system)")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("needs mount and umount")


@contextmanager
def tmpfs(directory: Path, size: str = "2m"):
    """A tmpfs of `size` mounted on `directory` (made if absent), unmounted afterwards (lazily
    when something still holds it). Skips when mounting is not permitted (a container without
    CAP_SYS_ADMIN)."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield directory
    finally:
        if subprocess.run(["umount", str(directory)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def remount_read_only(directory: Path) -> None:
    run = subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def fill_file_system(filler: Path) -> int:
    """Writes `filler` until the file system answers ENOSPC (big chunks, then small ones);
    returns the bytes written."""
    written = 0
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            while True:
                try:
                    n = f.write(block)
                except OSError as e:
                    if e.errno != 28:  # ENOSPC
                        raise
                    break
                written += n or 0
                if not n:
                    break
    return written


@contextmanager
def running(home):
    """A host started on `home` (`start_host`), stopped at the end; a clean exit (0 on SIGTERM)
    is checked when the block itself did not fail."""
    from conftest import start_host

    host = start_host(home)
    try:
        yield host
    except BaseException:
        host.stop()
        raise
    assert host.stop() == 0, "host should exit 0 on SIGTERM"


def graph_in_fresh_host(home, project) -> list[str]:
    """The entity names a newly started host reads for `project` (the host is stopped after)."""
    with running(home) as fresh:
        session = RawSession.of(fresh, project)
        try:
            return session.graph_names()
        finally:
            session.close()


def path_spellings(path: Path) -> set[str]:
    """`path` as given and canonical: the host may report either."""
    return {str(path), os.path.realpath(path)}
