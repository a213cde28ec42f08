"""Stateless (2026-07-28) clients of a stdio server nobody here wrote (server-everything, stdio
mode) hosted by the host's stdio bridge: the official Python SDK pinned to 2026-07-28 (no
initialize, no session, its context in every request's `_meta`) discovers the server, lists its
tools, calls echo, follows a progress-reporting tool and answers the child's sampling and
elicitation requests through `input_required` round trips, follows resource updates with
`subscriptions/listen`; straight over HTTP and through mcp-session-proxy, next
to a session-revision client of the same child."""

from __future__ import annotations

import anyio
import pytest
from mcp import Client, types

from _external_util import children_running, start_host_with_everything, target
from _host_util import jsonrpc, mcp_client, raw_request
from _proxy_util import proxy_params

STATELESS = "2026-07-28"


def text_of(result) -> str:
    return "".join(c.text for c in result.content if getattr(c, "text", None))


async def sample(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled-statelessly"),
        model="test-model",
        stop_reason="endTurn",
    )


async def elicit(context, params):
    assert "Please provide inputs" in params.message
    return types.ElicitResult(action="cancel")


def stateless_client(host, via: str, instance: str) -> Client:
    if via == "proxy":
        c = Client(proxy_params(host.home, "everything"), mode=STATELESS)
    else:
        headers = host.headers() | {"Mcp-Proxy-Instance": instance}
        c = mcp_client(host.url("everything"), headers, mode=STATELESS)
    c.sampling_callback = sample
    c.elicitation_callback = elicit
    return c


@pytest.mark.parametrize("via", ["http", "proxy"])
def test_stateless_sdk_client_of_a_shared_stdio_server(home, via):
    host = start_host_with_everything(home)
    try:
        seen = {}

        async def main():
            async with stateless_client(host, via, "e2e-stateless") as c:
                assert c.protocol_version == STATELESS
                # Pinned, the SDK sends no discover of its own: ask the server, adopt its answer.
                discovered = types.DiscoverResult.model_validate(await c.session.send_discover(STATELESS))
                assert STATELESS in discovered.supported_versions
                assert discovered.cache_scope == "private"
                c.session.adopt(discovered)
                assert c.server_info is not None and c.server_info.name, discovered
                assert c.server_capabilities.tools is not None

                names = {t.name for t in (await c.list_tools()).tools}
                # The child registered its sampling tool: it was initialized with this client's
                # capabilities (it came first).
                expected = {"echo", "trigger-long-running-operation", "trigger-sampling-request", "trigger-elicitation-request"}
                assert expected <= names, names
                assert text_of(await c.call_tool("echo", {"message": "hi"})) == "Echo: hi"

                progress = []

                async def on_progress(value, total, message):
                    progress.append((value, total))

                result = await c.call_tool(
                    "trigger-long-running-operation", {"duration": 0.6, "steps": 3}, progress_callback=on_progress
                )
                assert "Steps: 3" in text_of(result), result
                assert progress == [(1, 3), (2, 3), (3, 3)], progress

                # The child asks for sampling: an input_required answer, the SDK samples and
                # retries, the child gets its answer and finishes the call.
                result = await c.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
                assert "sampled-statelessly" in text_of(result), result
                result = await c.call_tool("trigger-elicitation-request", {})
                assert "User cancelled" in text_of(result), result

                # A session-revision client shares the same child.
                async with mcp_client(host.url("everything"), host.headers(), mode="legacy") as legacy:
                    assert text_of(await legacy.call_tool("echo", {"message": "legacy"})) == "Echo: legacy"
                    both = await asyncio_gather(
                        c.call_tool("echo", {"message": "s"}), legacy.call_tool("echo", {"message": "l"})
                    )
                    assert [text_of(r) for r in both] == ["Echo: s", "Echo: l"]

                    status, listed = host.api("GET", "/sessions")
                    assert status == 200
                    seen["sessions"] = [s for s in listed["sessions"] if s["target"] == "everything"]

        anyio.run(main)
        stateless = [s for s in seen["sessions"] if s["kind"] == "stateless"]
        assert len(stateless) == 1, seen
        assert stateless[0]["protocol_version"] == STATELESS
        assert stateless[0]["requests"] >= 5
        if via == "http":
            assert stateless[0]["id"] == "proxy:e2e-stateless"
        assert len([s for s in seen["sessions"] if s["kind"] == "session"]) == 1, seen
        assert children_running(host.proc.pid, "server-everything") == [target(host, "everything")["pid"]]
    finally:
        assert host.stop() == 0


async def asyncio_gather(*awaitables):
    results = [None] * len(awaitables)

    async def run(i, a):
        results[i] = await a

    async with anyio.create_task_group() as tg:
        for i, a in enumerate(awaitables):
            tg.start_soon(run, i, a)
    return results


def test_stateless_listen_gets_resource_updates(home):
    """`subscriptions/listen` (2026-07-28's way to follow changes) on a shared stdio child: the
    SDK's listen stream gets the child's updates of the subscribed resource."""
    host = start_host_with_everything(home)
    uri = "demo://resource/static/document/architecture.md"
    try:
        async def main():
            async with stateless_client(host, "http", "listener") as c:
                async with c.listen(resource_subscriptions=[uri]) as subscription:
                    assert list(subscription.honored.resource_subscriptions or []) == [uri]
                    await c.call_tool("toggle-subscriber-updates", {})
                    with anyio.fail_after(15):
                        event = await subscription.__anext__()
                    assert str(event.uri) == uri, event

        anyio.run(main)
    finally:
        assert host.stop() == 0


def test_auto_mode_negotiates_the_stateless_revision(home):
    """An SDK client in auto mode probes `server/discover` and now stays stateless."""
    host = start_host_with_everything(home)
    try:
        async def main():
            async with mcp_client(host.url("everything"), host.headers(), mode="auto") as c:
                assert c.protocol_version == STATELESS
                assert text_of(await c.call_tool("echo", {"message": "auto"})) == "Echo: auto"

        anyio.run(main)
    finally:
        assert host.stop() == 0


def test_per_session_target_serves_stateless_clients_from_one_child(home):
    host = start_host_with_everything(home, "per-session")
    try:
        assert children_running(host.proc.pid, "server-everything") == []
        seen = {}

        async def main():
            async with stateless_client(host, "http", "a") as a, stateless_client(host, "http", "b") as b:
                assert text_of(await a.call_tool("echo", {"message": "a"})) == "Echo: a"
                assert text_of(await b.call_tool("echo", {"message": "b"})) == "Echo: b"
                seen["children"] = children_running(host.proc.pid, "server-everything")

        anyio.run(main)
        assert len(seen["children"]) == 1, seen
        # A raw stateless request's wire: JSON, no session id.
        meta = {
            "io.modelcontextprotocol/protocolVersion": STATELESS,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = host.headers() | {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": STATELESS,
            "Mcp-Method": "server/discover",
        }
        status, response_headers, body = raw_request(
            host.ports["everything"], "POST", "/mcp", headers, jsonrpc("server/discover", {"_meta": meta})
        )
        assert status == 200, body
        assert "mcp-session-id" not in response_headers
        assert b'"resultType":"complete"' in body and b'"supportedVersions"' in body
    finally:
        assert host.stop() == 0
