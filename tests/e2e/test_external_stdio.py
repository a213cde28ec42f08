"""A stdio server nobody here wrote (server-everything, stdio mode) hosted by the host's stdio
bridge and used over streamable HTTP by several official-SDK clients at once (session revisions;
an auto-mode client gets the stateless one, see test_stdio_stateless.py): shared (one child,
each session its own answers, notifications to the subscribed sessions, sampling to the session
that caused it), per session (a child each, reaped with the session), a killed child restarted
with the sessions re-attaching, a crash loop reported while the others stay up, and every child
stopped with the host."""

from __future__ import annotations

import os
import signal

import anyio
import pytest
from mcp import Client, types

from _external_util import children_running, pid_alive, start_host_with_everything, stdio_everything, target, wait_state
from _host_util import mcp_client
from _proxy_util import proxy_params
from conftest import start_host, wait_until


def text_of(result) -> str:
    return "".join(c.text for c in result.content if getattr(c, "text", None))


def sampler(name: str):
    async def sample(context, params):
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=f"sampled-by-{name}"),
            model="test-model",
            stop_reason="endTurn",
        )

    return sample


def client(host, name: str, via: str = "http", **kwargs):
    """An SDK client of the `everything` target: straight over HTTP, or through a
    `mcp-session-proxy` process that the SDK launches as a stdio server (as Claude Code does)."""
    mode = kwargs.pop("mode", "legacy")
    if via == "proxy":
        c = Client(proxy_params(host.home, "everything"), mode=mode)
    else:
        # A stateless client is counted by its proxy instance, as the proxy sends it.
        headers = host.headers() | {"Mcp-Proxy-Instance": f"e2e-{name}"}
        c = mcp_client(host.url("everything"), headers, mode=mode)
    c.sampling_callback = kwargs.pop("sampling_callback", sampler(name))
    for key, value in kwargs.items():
        setattr(c, key, value)
    return c


@pytest.mark.parametrize("via", ["http", "proxy"])
def test_shared_child_serves_three_sdk_sessions_at_once(home, via):
    host = start_host_with_everything(home)
    try:
        running = target(host, "everything")
        assert running["transport"] == "stdio" and running["kind"] == "process"
        uri = "demo://resource/static/document/architecture.md"
        updates = {"a": [], "b": [], "c": []}
        echoes = {}

        def recorder(name):
            async def on_message(message):
                if isinstance(message, types.ResourceUpdatedNotification):
                    updates[name].append(str(message.params.uri))

            return on_message

        async def main():
            clients = {n: client(host, n, via, message_handler=recorder(n)) for n in "abc"}
            # One client negotiates with mode="auto": its `server/discover` probe gets the stateless
            # revision (2026-07-28), served by the same child without a session.
            clients["c"] = client(host, "c", via, message_handler=recorder("c"), mode="auto")
            async with clients["a"] as a, clients["b"] as b, clients["c"] as c:
                sessions = {"a": a, "b": b, "c": c}
                assert c.protocol_version == "2026-07-28"

                async def chat(name, s):
                    got = []
                    for i in range(6):
                        result = await s.call_tool("echo", {"message": f"{name}-{i}"})
                        got.append(text_of(result))
                    echoes[name] = got

                async with anyio.create_task_group() as tg:
                    for name, s in sessions.items():
                        tg.start_soon(chat, name, s)

                status, listed = host.api("GET", "/sessions")
                assert status == 200
                mine = [s for s in listed["sessions"] if s["target"] == "everything"]
                assert len(mine) == 3, listed
                assert sorted(s["kind"] for s in mine) == ["session", "session", "stateless"], mine
                assert target(host, "everything")["sessions"] == 3

                await a.subscribe_resource(uri)
                await b.subscribe_resource(uri)
                await a.call_tool("toggle-subscriber-updates", {})
                with anyio.fail_after(10):
                    while not (updates["a"] and updates["b"]):
                        await anyio.sleep(0.05)
                # The child's first round of updates went out at once; C did not subscribe.
                await anyio.sleep(1.0)
                assert updates["c"] == []

                # Sampling reaches the session whose tool call caused it, and only that one.
                result = await b.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
                assert "sampled-by-b" in text_of(result), result

        anyio.run(main)
        for name in "abc":
            assert echoes[name] == [f"Echo: {name}-{i}" for i in range(6)], echoes
        assert updates["a"][0] == uri and updates["b"][0] == uri
        children = children_running(host.proc.pid, "server-everything")
        assert children == [target(host, "everything")["pid"]], children
    finally:
        assert host.stop() == 0
    for pid in children:
        wait_until(lambda: not pid_alive(pid), timeout=10, what="child stopped with the host")


def test_per_session_children_come_and_go_with_their_sessions(home):
    host = start_host_with_everything(home, "per-session")
    try:
        assert children_running(host.proc.pid, "server-everything") == []
        seen = {}

        async def main():
            async with client(host, "a") as a, client(host, "b") as b:
                ra = await a.call_tool("echo", {"message": "from-a"})
                rb = await b.call_tool("echo", {"message": "from-b"})
                seen["texts"] = (text_of(ra), text_of(rb))
                seen["during"] = sorted(children_running(host.proc.pid, "server-everything"))
                assert target(host, "everything")["sessions"] == 2
            # Both clients DELETEd their sessions on exit.

        anyio.run(main)
        assert seen["texts"] == ("Echo: from-a", "Echo: from-b")
        assert len(seen["during"]) == 2, seen
        wait_until(
            lambda: children_running(host.proc.pid, "server-everything") == [],
            timeout=15,
            what="per-session children reaped",
        )
        for pid in seen["during"]:
            assert not pid_alive(pid)
    finally:
        assert host.stop() == 0


def test_a_killed_child_is_restarted_and_the_session_carries_on(home):
    host = start_host_with_everything(home)
    try:
        pids = {}

        async def main():
            async with client(host, "a") as a:
                assert text_of(await a.call_tool("echo", {"message": "before"})) == "Echo: before"
                pids["first"] = target(host, "everything")["pid"]
                os.killpg(pids["first"], signal.SIGKILL)
                second = wait_state(
                    host, "everything", "running", extra=lambda t: t["pid"] not in (None, pids["first"])
                )
                pids["second"] = second["pid"]
                assert second["restarts"] >= 1
                # Same session, same client: the bridge re-initialized the new child.
                assert text_of(await a.call_tool("echo", {"message": "after"})) == "Echo: after"

        anyio.run(main)
        assert not pid_alive(pids["first"])
        log = (home.state / "everything.log").read_text()
        assert log.count("starting `node`") >= 2, log[-2000:]
    finally:
        assert host.stop() == 0
    wait_until(lambda: not pid_alive(pids["second"]), timeout=10, what="child stopped with the host")


def test_a_stdio_command_that_exits_at_once_is_a_crash_loop(home):
    host = start_host(
        home,
        '[targets.broken]\ncommand = "sh"\nargs = ["-c", "echo no-such-server >&2; exit 2"]\n'
        'transport = "stdio"\nport = {port:broken}\n\n' + stdio_everything(),
        wait_for=("memory", "everything"),
    )
    try:
        broken = wait_state(host, "broken", "crash-loop", timeout=60)
        assert "exited with code 2" in broken["last_error"], broken
        assert broken["log_path"].endswith("broken.log")
        assert "no-such-server" in open(broken["log_path"]).read()
        assert target(host, "memory")["state"] == "running"
        assert target(host, "everything")["state"] == "running"

        async def main():
            async with client(host, "a") as a:
                assert text_of(await a.call_tool("echo", {"message": "still"})) == "Echo: still"

        anyio.run(main)
    finally:
        assert host.stop() == 0


def test_children_die_with_a_killed_host(home):
    """Even a host that is SIGKILLed (no chance to stop anything) takes its children along."""
    host = start_host(
        home,
        stdio_everything() + "\n" + '[targets.sleeper]\ncommand = "sleep"\nargs = ["300"]\ntransport = "stdio"\nport = {port:sleeper}\n',
        wait_for=("memory", "everything"),
    )
    try:
        pids = [wait_state(host, name, "running")["pid"] for name in ("everything", "sleeper")]
        assert all(pids) and all(pid_alive(p) for p in pids)
        host.proc.kill()
        host.proc.wait()
        for pid in pids:
            wait_until(lambda: not pid_alive(pid), timeout=10, what=f"child {pid} gone with the host")
    finally:
        host.stop()
