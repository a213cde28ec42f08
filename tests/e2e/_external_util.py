"""Helpers of the tests of external servers the host runs (test_external_*.py): target status,
process checks, and the peers' launch lines as config.toml snippets."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import FASTMCP_PYTHON, NODE_MODULES, start_host, wait_until

EVERYTHING = NODE_MODULES / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
SERVERS = Path(__file__).resolve().parent / "servers"


def target(host, name: str) -> dict:
    """The target's entry in GET /status."""
    status, body = host.api("GET", "/status")
    assert status == 200, body
    (t,) = [t for t in body["targets"] if t["name"] == name]
    return t


def wait_state(host, name: str, state: str, timeout: float = 60.0, extra=lambda t: True) -> dict:
    return wait_until(
        lambda: (t := target(host, name))["state"] == state and extra(t) and t,
        timeout=timeout,
        what=f"{name} {state}",
    )


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_running(parent: int, needle: str) -> list[int]:
    """Live processes whose parent is `parent` and whose command line contains `needle`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == parent and needle in cmdline:
            found.append(int(entry))
    return found


def stdio_everything(name: str = "everything", share: str = "shared") -> str:
    """server-everything in stdio mode as a target the host bridges to streamable HTTP."""
    return (
        f'[targets.{name}]\ncommand = "node"\nargs = ["{EVERYTHING}", "stdio"]\n'
        f'transport = "stdio"\nshare = "{share}"\nport = {{port:{name}}}\n'
    )


def http_everything(name: str = "everything-http") -> str:
    """server-everything serving streamable HTTP itself on its port (PORT env)."""
    return (
        f'[targets.{name}]\ncommand = "node"\nargs = ["{EVERYTHING}", "streamableHttp"]\n'
        f'transport = "streamable-http"\nport = {{port:{name}}}\nenv = {{ PORT = "{{port:{name}}}" }}\n'
    )


def fastmcp_sse(name: str = "fastmcp") -> str:
    """A FastMCP server on the legacy HTTP+SSE transport."""
    script = SERVERS / "external_fastmcp_sse.py"
    return (
        f'[targets.{name}]\ncommand = "{FASTMCP_PYTHON}"\nargs = ["{script}", "{{port:{name}}}"]\n'
        f'transport = "sse"\nport = {{port:{name}}}\n'
    )


def start_host_with_everything(home, share: str = "shared"):
    """A host serving server-everything as its stdio target `everything`, once that runs."""
    host = start_host(home, stdio_everything(share=share), wait_for=("memory", "everything"))
    try:
        wait_state(host, "everything", "running")
    except BaseException:
        host.stop()
        raise
    return host
