"""The proxy between the official Python SDK client (spawning it over stdio) and servers that
nobody here wrote: server-everything over streamable HTTP and legacy SSE, and FastMCP over
legacy SSE. Tools, a server notification, a server-to-client request answered by the client,
and progress all cross the proxy."""

from __future__ import annotations

import asyncio

import mcp.types as types
import pytest
from mcp import Client

from _proxy_util import pipelined_handshake, proxy_params, start_everything, start_fastmcp_sse, tool_text, url_target, write_config


async def _sampling(context, params):
    return types.CreateMessageResult(
        role="assistant",
        content=types.TextContent(type="text", text="sampled by the client"),
        model="proxy-e2e",
    )


async def _elicit(context, params):
    return types.ElicitResult(action="accept", content={"value": "forty-two"})


@pytest.mark.parametrize("mode,transport", [("streamableHttp", "streamable-http"), ("sse", "sse")])
def test_server_everything_through_the_proxy(home, mode, transport):
    server = start_everything(home, mode)
    try:
        write_config(home, url_target("everything", server.url, transport))
        logs: list = []
        got_log = asyncio.Event()

        async def on_log(params):
            logs.append(params)
            got_log.set()

        async def scenario():
            async with Client(
                proxy_params(home, "everything"),
                mode="legacy",
                sampling_callback=_sampling,
                logging_callback=on_log,
            ) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"echo", "trigger-long-running-operation", "trigger-sampling-request"} <= names
                echoed = await client.call_tool("echo", {"message": "through the proxy"})
                assert tool_text(echoed) == "Echo: through the proxy"

                progress: list = []

                async def on_progress(value, total, message):
                    progress.append((value, total))

                done = await client.call_tool(
                    "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress_callback=on_progress
                )
                assert "completed" in tool_text(done)
                assert [p[0] for p in progress] == [1, 2, 3]

                sampled = await client.call_tool("trigger-sampling-request", {"prompt": "hi", "maxTokens": 5})
                assert "sampled by the client" in tool_text(sampled)

                # A notification the server sends on its own (GET stream / legacy stream).
                await client.call_tool("toggle-simulated-logging", {})
                await asyncio.wait_for(got_log.wait(), 10)
                assert logs

        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        server.stop()


def test_fastmcp_legacy_sse_through_the_proxy(home):
    server = start_fastmcp_sse(home)
    try:
        write_config(home, url_target("fast", server.url, "sse"))
        logs: list = []

        async def on_log(params):
            logs.append(params)

        async def scenario():
            async with Client(
                proxy_params(home, "fast"), mode="legacy", elicitation_callback=_elicit, logging_callback=on_log
            ) as client:
                names = {t.name for t in (await client.list_tools()).tools}
                assert {"echo", "progress", "notify", "ask"} <= names
                assert tool_text(await client.call_tool("echo", {"message": "sse"})) == "Echo: sse"

                progress: list = []

                async def on_progress(value, total, message):
                    progress.append(value)

                assert tool_text(await client.call_tool("progress", {"steps": 4}, progress_callback=on_progress)) == "done 4"
                assert progress == [1, 2, 3, 4]

                assert tool_text(await client.call_tool("notify", {"text": "hello from fastmcp"})) == "notified"
                assert any("hello from fastmcp" in str(entry.data) for entry in logs), logs

                asked = await client.call_tool("ask", {"question": "what is the answer?"})
                assert tool_text(asked) == "client said: forty-two"

                # Many at once: answers are matched from the one stream.
                results = await asyncio.gather(
                    *(client.call_tool("slow_echo", {"message": str(i), "seconds": 0.1}) for i in range(20))
                )
                assert [tool_text(r) for r in results] == [f"Echo: {i}" for i in range(20)]

        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        server.stop()


@pytest.mark.parametrize("server", ["everything-streamableHttp", "everything-sse", "fastmcp-sse"])
def test_a_client_that_does_not_wait_for_the_initialize_answer(home, server):
    """initialize, initialized and a request written at once: the request must wait for the
    session that initialize opens (it used to go out without one: HTTP 400)."""
    kind, mode = server.split("-")
    peer = start_everything(home, mode) if kind == "everything" else start_fastmcp_sse(home)
    try:
        write_config(home, url_target("peer", peer.url, "sse" if mode == "sse" else "streamable-http"))
        pipelined_handshake(home, "peer")
    finally:
        peer.stop()

