"""The memory target's `memory://knowledge-graph` resource with the official Python SDK: legacy
sessions subscribe to it, and a write in one session notifies every subscribed session on the
same project DB (not only the writer, unlike the one-client reference), never a session on
another project; 2026-07-28 stateless requests read their own project's graph and get the same
updates on a `subscriptions/listen` stream."""

from __future__ import annotations

import json
import warnings

import anyio
import mcp.types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp.shared.subscriptions import ResourceUpdated

from _host_util import mcp_client

GRAPH = "memory://knowledge-graph"


class Updates:
    """The URIs of the `notifications/resources/updated` one client received."""

    def __init__(self):
        self.uris: list[str] = []
        self.arrived = anyio.Event()

    async def handle(self, message) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.uris.append(message.params.uri)
            self.arrived.set()

    async def wait(self, seconds: float = 5) -> list[str]:
        with anyio.fail_after(seconds):
            await self.arrived.wait()
        return self.uris


def recording_client(url: str, headers: dict, updates: Updates) -> Client:
    """A legacy-mode (session) SDK client whose notifications go to `updates`."""
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode="legacy", message_handler=updates.handle)


async def subscribe(client: Client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # resources/subscribe is the legacy revisions' way
        await client.subscribe_resource(GRAPH)


def test_a_write_notifies_every_subscribed_session_on_the_same_project(host, tmp_path):
    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    writer_updates, window_updates, other_updates = Updates(), Updates(), Updates()

    async def go():
        async with recording_client(host.url(), host.headers(project), writer_updates) as writer, \
                recording_client(host.url(), host.headers(project), window_updates) as window, \
                recording_client(host.url(), host.headers(elsewhere), other_updates) as other:
            capabilities = writer.server_capabilities
            assert capabilities.resources is not None and capabilities.resources.subscribe is True
            for client in (writer, window, other):
                await subscribe(client)
            created = await writer.call_tool("create_entities", {"entities": [
                {"name": "Shared", "entityType": "note", "observations": ["seen by both windows"]},
            ]})
            assert not created.is_error
            assert await writer_updates.wait() == [GRAPH]
            assert await window_updates.wait() == [GRAPH]
            # The other window reads the new graph through the resource.
            read = await window.read_resource(GRAPH)
            graph = json.loads(read.contents[0].text)
            assert [e["name"] for e in graph["entities"]] == ["Shared"]
            # Nothing for the session on another project, even after a moment.
            await anyio.sleep(0.3)
            assert other_updates.uris == []
            other_read = await other.read_resource(GRAPH)
            assert json.loads(other_read.contents[0].text) == {"entities": [], "relations": []}

    anyio.run(go)


def test_stateless_requests_list_and_read_their_projects_graph(host, tmp_path):
    project = tmp_path / "project"
    project.mkdir()

    async def go():
        async with mcp_client(host.url(), host.headers(project), "2026-07-28") as client:
            listed = await client.list_resources()
            assert [r.uri for r in listed.resources] == [GRAPH]
            await client.call_tool("create_entities", {"entities": [
                {"name": "Stateless", "entityType": "note", "observations": []},
            ]})
            read = await client.read_resource(GRAPH)
            assert read.contents[0].mime_type == "application/json"
            assert json.loads(read.contents[0].text)["entities"] == [
                {"name": "Stateless", "entityType": "note", "observations": []},
            ]
        async with mcp_client(host.url(), host.headers(), "2026-07-28") as home_client:
            read = await home_client.read_resource(GRAPH)
            assert json.loads(read.contents[0].text) == {"entities": [], "relations": []}

    anyio.run(go)


def test_a_listen_stream_gets_the_updates_of_its_projects_db(host, tmp_path):
    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()

    async def go():
        async with mcp_client(host.url(), host.headers(project), "2026-07-28") as listener, \
                mcp_client(host.url(), host.headers(project), "2026-07-28") as writer, \
                mcp_client(host.url(), host.headers(elsewhere), "2026-07-28") as stranger:
            async with listener.listen(resource_subscriptions=[GRAPH]) as subscription:
                assert subscription.honored.resource_subscriptions == [GRAPH]
                events = aiter(subscription)
                # A write on another project is not heard (checked before any other event,
                # as the stream merges pending updates of one URI).
                await stranger.call_tool("create_entities", {"entities": [
                    {"name": "Elsewhere", "entityType": "note", "observations": []},
                ]})
                with anyio.move_on_after(0.3) as waited:
                    await anext(events)
                assert waited.cancelled_caught, "another project's write was forwarded"
                # One on this project, from another client, is.
                await writer.call_tool("create_entities", {"entities": [
                    {"name": "Here", "entityType": "note", "observations": []},
                ]})
                with anyio.fail_after(5):
                    event = await anext(events)
                assert isinstance(event, ResourceUpdated) and event.uri == GRAPH
                read = await listener.read_resource(GRAPH)
                assert [e["name"] for e in json.loads(read.contents[0].text)["entities"]] == ["Here"]

    anyio.run(go)
