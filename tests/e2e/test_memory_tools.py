"""The memory target with the official Python SDK over streamable HTTP, as a 2026-07-28 client
and as a session-revision client: the tools round trip, projects are isolated by
`Mcp-Project-Path`, the DB is in WAL mode, and 10 concurrent sessions lose nothing."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import anyio
import pytest

from _host_util import mcp_client
from conftest import MANAGER_BIN


def structured(result):
    assert not result.is_error, result
    return result.structured_content


@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
def test_tools_round_trip_and_projects_are_isolated(host, tmp_path, mode):
    project_a = tmp_path / "a"
    project_b = tmp_path / "b"
    project_a.mkdir()
    project_b.mkdir()

    async def go():
        async with mcp_client(host.url(), host.headers(project_a), mode) as a, \
                mcp_client(host.url(), host.headers(project_b), mode) as b:
            names = [t.name for t in (await a.list_tools()).tools]
            assert names == ["create_entities", "create_relations", "add_observations", "delete_entities",
                             "delete_observations", "delete_relations", "read_graph", "search_nodes", "open_nodes"]
            created = structured(await a.call_tool("create_entities", {"entities": [
                {"name": "Only A", "entityType": "note", "observations": ["Grüße aus A"]},
                {"name": "Other", "entityType": "note", "observations": []},
            ]}))
            assert [e["name"] for e in created["entities"]] == ["Only A", "Other"]
            await a.call_tool("create_relations", {"relations": [{"from": "Only A", "to": "Other", "relationType": "links"}]})
            found = structured(await a.call_tool("search_nodes", {"query": "GRÜSSE"}))
            assert found["entities"] == []
            found = structured(await a.call_tool("search_nodes", {"query": "GRÜßE"}))
            assert [e["name"] for e in found["entities"]] == ["Only A"]
            assert found["relations"] == [{"from": "Only A", "to": "Other", "relationType": "links"}]
            opened = structured(await a.call_tool("open_nodes", {"names": ["Other"]}))
            assert [e["name"] for e in opened["entities"]] == ["Other"]
            assert len(opened["relations"]) == 1
            # Project B sees nothing of A.
            assert structured(await b.call_tool("read_graph", {})) == {"entities": [], "relations": []}
            missing = await b.call_tool("add_observations", {"observations": [{"entityName": "Only A", "contents": ["x"]}]})
            assert missing.is_error and missing.content[0].text == "Entity with name Only A not found"
            deleted = structured(await a.call_tool("delete_entities", {"entityNames": ["Other"]}))
            assert deleted == {"success": True, "message": "Entities deleted successfully"}
            graph = structured(await a.call_tool("read_graph", {}))
            assert [e["name"] for e in graph["entities"]] == ["Only A"] and graph["relations"] == []

    anyio.run(go)
    for project in (project_a, project_b):
        db = project / ".claude" / "memory.db"
        assert db.is_file()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with sqlite3.connect(project_a / ".claude" / "memory.db") as conn:
        assert conn.execute("SELECT count(*) FROM mem_entities").fetchone()[0] == 1


def test_no_or_bad_project_header_uses_the_home_db(host, tmp_path):
    async def go():
        async with mcp_client(host.url(), host.headers(), "legacy") as client:
            await client.call_tool("create_entities", {"entities": [{"name": "home thing", "entityType": "t", "observations": []}]})
        async with mcp_client(host.url(), host.headers("relative/../path"), "legacy") as client:
            graph = structured(await client.call_tool("read_graph", {}))
            assert [e["name"] for e in graph["entities"]] == ["home thing"]

    anyio.run(go)
    assert (host.home.home / ".claude" / "memory.db").is_file()


def test_ten_concurrent_sessions_write_without_lock_errors_or_losses(host, tmp_path):
    project = tmp_path / "busy"
    project.mkdir()
    per_client = 30

    async def writer(n: int, errors: list):
        async with mcp_client(host.url(), host.headers(project), "legacy") as client:
            for i in range(per_client):
                result = await client.call_tool("create_entities", {"entities": [
                    {"name": f"c{n}-e{i}", "entityType": "load", "observations": [f"from client {n}", "shared"]}]})
                if result.is_error:
                    errors.append(result.content[0].text)
                result = await client.call_tool("add_observations", {"observations": [{"entityName": f"c{n}-e{i}", "contents": ["later"]}]})
                if result.is_error:
                    errors.append(result.content[0].text)

    async def go():
        errors: list = []
        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(writer, n, errors)
        assert errors == []
        async with mcp_client(host.url(), host.headers(project), "2026-07-28") as client:
            graph = structured(await client.call_tool("search_nodes", {"query": "LOAD"}))
            assert len(graph["entities"]) == 10 * per_client
            assert all(e["observations"][-1] == "later" for e in graph["entities"])

    anyio.run(go)
    log = (host.home.root / "host.stderr").read_text(errors="replace")
    assert "database is locked" not in log


def test_cli_import_loads_a_reference_jsonl_into_the_project_db(home, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    jsonl = tmp_path / "memory.jsonl"
    jsonl.write_text("\n".join([
        json.dumps({"type": "entity", "name": "Alice", "entityType": "person", "observations": ["likes tea"]}),
        "not json at all",
        json.dumps({"type": "relation", "from": "Alice", "to": "Bob", "relationType": "knows"}),
        json.dumps({"type": "entity", "name": "Bob"}),
        json.dumps({"type": "entity", "name": "Bob", "entityType": "person", "observations": []}),
    ]) + "\n")
    run = lambda *args: subprocess.run([str(MANAGER_BIN), "memory", "import", *args], env=home.env,  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    first = run(str(jsonl), "--project", str(project))
    assert first.returncode == 0, first.stderr
    assert "entities: 2 created, 0 merged, 0 unchanged" in first.stdout
    assert "relations: 1 created, 0 already present" in first.stdout
    assert "line 2:" in first.stdout and "line 4:" in first.stdout
    second = run(str(jsonl), "--project", str(project))
    assert second.returncode == 0
    assert "entities: 0 created, 0 merged, 2 unchanged" in second.stdout
    assert "relations: 0 created, 1 already present" in second.stdout
    with sqlite3.connect(project / ".claude" / "memory.db") as conn:
        assert conn.execute("SELECT count(*) FROM mem_entities").fetchone()[0] == 2
    missing = run(str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1
    assert "nope.jsonl" in missing.stderr


SEED_SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE entities(name TEXT PRIMARY KEY, entity_type TEXT NOT NULL);
CREATE TABLE observations(id INTEGER PRIMARY KEY AUTOINCREMENT, entity_name TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, content TEXT NOT NULL, UNIQUE(entity_name, content));
CREATE TABLE relations(id INTEGER PRIMARY KEY AUTOINCREMENT, from_entity TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, to_entity TEXT NOT NULL REFERENCES entities(name) ON DELETE CASCADE, relation_type TEXT NOT NULL, UNIQUE(from_entity, to_entity, relation_type));
CREATE INDEX idx_obs ON observations(entity_name);
CREATE INDEX idx_rel_from ON relations(from_entity);
CREATE INDEX idx_rel_to ON relations(to_entity);
INSERT INTO entities VALUES ('Seed', 'server'), ('Köln', 'city');
INSERT INTO observations(entity_name, content) VALUES ('Seed', 'written by Node'), ('Köln', 'am Rhein');
INSERT INTO relations(from_entity, to_entity, relation_type) VALUES ('Seed', 'Köln', 'runs in');
"""


def test_a_seed_node_db_is_migrated_with_a_backup_and_a_foreign_db_is_left_alone(host, tmp_path):
    seed_project = tmp_path / "seed"
    foreign_project = tmp_path / "foreign"
    for project in (seed_project, foreign_project):
        (project / ".claude").mkdir(parents=True)
    with sqlite3.connect(seed_project / ".claude" / "memory.db") as conn:
        conn.executescript(SEED_SCHEMA)
    foreign_db = foreign_project / ".claude" / "memory.db"
    with sqlite3.connect(foreign_db) as conn:
        conn.executescript("CREATE TABLE notes(body TEXT); INSERT INTO notes VALUES ('mine');")
    foreign_bytes = foreign_db.read_bytes()

    async def go():
        async with mcp_client(host.url(), host.headers(seed_project), "legacy") as client:
            graph = structured(await client.call_tool("read_graph", {}))
            assert graph == {
                "entities": [
                    {"name": "Seed", "entityType": "server", "observations": ["written by Node"]},
                    {"name": "Köln", "entityType": "city", "observations": ["am Rhein"]},
                ],
                "relations": [{"from": "Seed", "to": "Köln", "relationType": "runs in"}],
            }
            found = structured(await client.call_tool("search_nodes", {"query": "KÖLN"}))
            assert [e["name"] for e in found["entities"]] == ["Köln"]
        async with mcp_client(host.url(), host.headers(foreign_project), "legacy") as client:
            result = await client.call_tool("read_graph", {})
            assert result.is_error
            assert "left untouched" in result.content[0].text

    anyio.run(go)
    backups = list((seed_project / ".claude").glob("memory.db.bak-*"))
    assert len(backups) == 1
    with sqlite3.connect(backups[0]) as conn:
        assert conn.execute("SELECT count(*) FROM entities").fetchone()[0] == 2
    assert foreign_db.read_bytes() == foreign_bytes


def test_a_second_spelling_of_a_project_path_keeps_the_db_safe_from_other_processes(host, tmp_path):
    """Resolving another spelling of an open project (a trailing slash) must not open the DB
    file outside SQLite: closing such a descriptor drops the daemon's POSIX locks, and the next
    process that opens and closes the DB (a `sqlite3` shell, a backup tool) then takes the WAL
    for abandoned, checkpoints and deletes it under the daemon, whose later writes are lost."""
    project = tmp_path / "p"
    project.mkdir()
    db = project / ".claude" / "memory.db"

    def count() -> int:
        # Another process, as a user's `sqlite3` shell would be.
        script = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT count(*) FROM mem_entities').fetchone()[0]); c.close()"
        return int(subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, check=True).stdout)

    async def go():
        async with mcp_client(host.url(), host.headers(project), "legacy") as a:
            structured(await a.call_tool("create_entities", {"entities": [{"name": "first", "entityType": "t", "observations": []}]}))
            async with mcp_client(host.url(), host.headers(f"{project}/"), "legacy") as b:
                structured(await b.call_tool("read_graph", {}))
            assert await anyio.to_thread.run_sync(count) == 1
            structured(await a.call_tool("create_entities", {"entities": [{"name": "second", "entityType": "t", "observations": []}]}))
            assert await anyio.to_thread.run_sync(count) == 2, "a write after another process's visit was lost"

    anyio.run(go)
