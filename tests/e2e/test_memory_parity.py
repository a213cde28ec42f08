"""Parity with the reference memory server: the same sequence of tool calls (duplicates, missing
entities, Unicode case folding, `%` and `_`, empty arrays, dangling relations, errors) against
`@modelcontextprotocol/server-memory` on stdio and against our daemon over streamable HTTP
gives the same results: text, structuredContent and isError, exactly; and so do the
`memory://knowledge-graph` resource's list and reads (an unknown URI's error included)."""

from __future__ import annotations

import anyio
import pytest

from _host_util import mcp_client
from _memory_util import ReferenceServer, sdk_result, sdk_step

E = lambda name, entity_type, *obs: {"name": name, "entityType": entity_type, "observations": list(obs)}  # noqa: E731
R = lambda a, b, t: {"from": a, "to": b, "relationType": t}  # noqa: E731

GRAPH = {"uri": "memory://knowledge-graph"}

SEQUENCE = [
    ("resources/list", {}),
    ("resources/read", GRAPH),
    ("read_graph", {}),
    ("create_entities", {"entities": [
        E("Alice", "person", "likes tea", "Lives in Straße 5"),
        E("Straße", "Ort", "ÄÖÜ ist groß"),
        E("ΟΔΟΣ", "greek"),
        E("snake_case", "ident", "100% sure", "a_b"),
        E("İstanbul", "city", "quote \" inside", "line\nbreak"),
    ]}),
    ("create_entities", {"entities": [E("Alice", "robot", "other"), E("Bob", "person")]}),
    ("create_entities", {"entities": []}),
    ("create_relations", {"relations": [R("Alice", "Bob", "knows"), R("Alice", "Ghost", "haunts"), R("Nobody", "Nothing", "links")]}),
    ("create_relations", {"relations": [R("Alice", "Bob", "knows"), R("Bob", "Alice", "knows")]}),
    ("create_relations", {"relations": []}),
    ("add_observations", {"observations": [{"entityName": "Alice", "contents": ["likes tea", "plays chess"]}, {"entityName": "Bob", "contents": []}]}),
    ("add_observations", {"observations": [{"entityName": "Bob", "contents": ["x"]}, {"entityName": "Missing", "contents": ["y"]}]}),
    ("add_observations", {"observations": []}),
    *[("search_nodes", {"query": q}) for q in [
        "straße", "STRASSE", "STRAßE", "äöü", "ÄÖÜ", "groß", "GROSS", "%", "0%", "_", "e_c", "s%", "",
        "a", "ab", "οδος", "ΟΔΟΣ", "i̇st", "\"", "e\nb", "GHOST", "knows", "zzz", "person",
    ]],
    ("resources/read", GRAPH),
    ("open_nodes", {"names": ["Bob", "Alice", "Ghost", "Bob"]}),
    ("open_nodes", {"names": []}),
    ("delete_observations", {"deletions": [{"entityName": "Alice", "observations": ["likes tea", "never there"]}, {"entityName": "Missing", "observations": ["x"]}]}),
    ("delete_observations", {"deletions": []}),
    ("delete_relations", {"relations": [R("Alice", "Bob", "knows"), R("No", "Such", "rel")]}),
    ("read_graph", {}),
    ("delete_entities", {"entityNames": ["Bob", "Missing"]}),
    ("delete_entities", {"entityNames": []}),
    ("read_graph", {}),
    ("create_entities", {"entities": [E("Bob", "person", "back again")]}),
    ("search_nodes", {"query": "BOB"}),
    ("read_graph", {}),
    ("resources/read", GRAPH),
    ("resources/read", {"uri": "memory://nope"}),
    ("no_such_tool", {}),
]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_same_calls_give_the_same_results_as_the_reference_server(host, tmp_path, mode):
    project = tmp_path / "project"
    project.mkdir()
    reference = ReferenceServer(tmp_path / "reference-memory.jsonl", env=host.home.env)
    try:
        expected = [reference.step(step, args) for step, args in SEQUENCE]
    finally:
        reference.close()

    async def ours():
        async with mcp_client(host.url(), host.headers(project), mode) as client:
            return [await sdk_step(client, step, args) for step, args in SEQUENCE]

    got = anyio.run(ours)
    for (tool, args), want, have in zip(SEQUENCE, expected, got):
        assert have == want, f"{tool} {args}"


def test_tool_list_is_the_reference_servers(host, tmp_path):
    reference = ReferenceServer(tmp_path / "reference-memory.jsonl", env=host.home.env)
    try:
        ref_tools = reference.request("tools/list")["result"]["tools"]
    finally:
        reference.close()

    async def ours():
        async with mcp_client(host.url(), host.headers(), "legacy") as client:
            listed = await client.list_tools()
            return [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in listed.tools]

    our_tools = anyio.run(ours)
    assert [t["name"] for t in our_tools] == [t["name"] for t in ref_tools]
    for ours_tool, ref_tool in zip(our_tools, ref_tools):
        for key in ("title", "description", "inputSchema", "outputSchema", "annotations"):
            assert ours_tool.get(key) == ref_tool.get(key), f"{ref_tool['name']} {key}"


def test_argument_errors_are_is_error_results_like_the_reference(host, tmp_path):
    """Bad arguments are tool errors (isError) with the reference's opening words, not
    protocol errors; the detail after them is the validator's own."""
    bad_calls = [("create_entities", {}), ("search_nodes", {"query": 5}), ("open_nodes", {"names": "Alice"})]
    reference = ReferenceServer(tmp_path / "reference-memory.jsonl", env=host.home.env)
    try:
        expected = [reference.call(tool, args) for tool, args in bad_calls]
    finally:
        reference.close()

    async def ours():
        async with mcp_client(host.url(), host.headers(), "legacy") as client:
            return [sdk_result(await client.call_tool(tool, args)) for tool, args in bad_calls]

    for (tool, _), want, have in zip(bad_calls, expected, anyio.run(ours)):
        assert want["isError"] and have["isError"], tool
        prefix = f"MCP error -32602: Input validation error: Invalid arguments for tool {tool}: "
        assert want["content"][0]["text"].startswith(prefix)
        assert have["content"][0]["text"].startswith(prefix), have
