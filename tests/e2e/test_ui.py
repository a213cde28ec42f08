"""The web UI, as a user sees it: the real page served by a real `mcp-session-manager daemon`,
driven in headless Chromium (playwright-core, tests/e2e/ui/browser.js) while real MCP clients
use the host. Screenshots land in each test's tmp dir (light and dark)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import anyio
import pytest

from conftest import NODE_MODULES, REPO, start_host, wait_until
from _host_util import mcp_client
from _proxy_util import proxy_params
from _durability_util import RawSession

BROWSER_JS = REPO / "tests" / "e2e" / "ui" / "browser.js"
CHROMIUM = os.environ.get("MSM_CHROMIUM", "/usr/bin/chromium")


class Browser:
    """One headless Chromium page, driven through browser.js one JSON line at a time."""

    def __init__(self, tmp_path: Path, color_scheme: str = "light"):
        env = dict(os.environ, MSM_COLOR_SCHEME=color_scheme, MSM_PEERS_NODE_MODULES=str(NODE_MODULES), MSM_CHROMIUM=CHROMIUM)
        self.log = open(tmp_path / "browser.stderr", "wb")
        self.proc = subprocess.Popen(
            ["node", str(BROWSER_JS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env
        )
        self.shots = tmp_path
        ready = self._read(60)
        assert ready.get("ok"), f"browser did not start: {ready}"

    def _read(self, timeout: float) -> dict:
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not readable:
            raise TimeoutError(f"browser.js did not answer within {timeout}s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"browser.js exited ({self.proc.poll()})")
        return json.loads(line)

    def __call__(self, cmd: str, timeout: float = 60, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        answer = self._read(timeout)
        if not answer.get("ok"):
            console = self.console_text()
            raise AssertionError(f"{cmd} {args}: {answer.get('error')}\npage console:\n{console}")
        return answer.get("value")

    def console_text(self) -> str:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "console"}) + "\n")
            self.proc.stdin.flush()
            return "\n".join(self._read(10).get("value") or [])
        except Exception as e:  # the browser itself is gone
            return f"(no console: {e})"

    def wait(self, selector: str, text: str | None = None, timeout_ms: int = 15000, state: str = "visible"):
        args = {"selector": selector, "timeout": timeout_ms, "state": state}
        if text is not None:
            args["text"] = text
        return self("wait", **args)

    def text(self, selector: str) -> str:
        return self("text", selector=selector)

    def screenshot(self, name: str, scheme: str | None = None) -> Path:
        """A full-page screenshot (scrolled to the top; colour transitions settled)."""
        if scheme:
            self("color_scheme", scheme=scheme)
        self("eval", expression="window.scrollTo(0, 0)")
        time.sleep(0.4)
        path = self.shots / f"{name}.png"
        self("screenshot", path=str(path))
        assert path.stat().st_size > 10_000, "a screenshot of a rendered page is not tiny"
        return path

    def close(self):
        if self.proc.poll() is None:
            try:
                self("close", timeout=15)
            except Exception:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def browser(tmp_path):
    if not Path(CHROMIUM).exists() or shutil.which("node") is None:
        pytest.skip(f"needs {CHROMIUM} and node (see scripts/install-deps.sh)")
    b = Browser(tmp_path)
    yield b
    errors = [line for line in b.console_text().splitlines() if line.startswith("pageerror")]
    b.close()
    assert errors == [], f"the page threw: {errors}"


def dashboard_url(host) -> str:
    """The one-click address the tray and `mcp-session-manager status` open."""
    return f"{host.manager_url}/?token={host.home.token}"


def target_row(name: str) -> str:
    return f'#targets-table tr[data-target="{name}"]'


def use_memory(host, project: Path, instance: str, calls=()):
    """Opens a stateless (2026-07-28) session of the memory target for `project` with the
    official SDK, lists the tools and makes `calls` (tool name, arguments); the host keeps
    counting the session after the client is gone (until it idles out)."""
    headers = host.headers(project) | {"Mcp-Proxy-Instance": instance}

    async def go():
        async with mcp_client(host.url(), headers, "2026-07-28") as client:
            await client.list_tools()
            results = []
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                assert not result.is_error, result
                results.append(result)
            return results

    return anyio.run(go)


def test_targets_table_shows_memory_running_and_a_new_session_appears_live(host, browser, tmp_path):
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    assert browser.text(f"{target_row('memory')} td.num") == str(host.ports["memory"])
    assert browser.wait("#connection[data-state='live']")
    browser.wait("#sessions-empty")

    project = tmp_path / "webshop"
    project.mkdir()
    use_memory(host, project, "ui-test-instance")
    # No reload: the SSE stream (or the polling fallback) brings the session in.
    row = '#sessions-table tr[data-session="proxy:ui-test-instance"]'
    browser.wait(row, text="webshop")
    assert str(project) in browser.text(row)
    assert browser.text(f"{target_row('memory')} td:nth-child(6)") == "1", "sessions column of memory"
    shot = browser.screenshot("servers-and-sessions-light")
    browser.screenshot("servers-and-sessions-dark", scheme="dark")
    print(f"screenshots: {shot.parent}")


def test_stop_and_start_buttons_drive_the_target(host, browser):
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    browser("click", selector=f"{target_row('memory')} button[data-action='stop']")
    browser.wait(f"{target_row('memory')} .badge", text="stopped")
    status, body = host.api("GET", "/status")
    assert [t["state"] for t in body["targets"] if t["name"] == "memory"] == ["stopped"]
    browser("click", selector=f"{target_row('memory')} button[data-action='start']")
    browser.wait(f"{target_row('memory')} .badge", text="running")
    wait_until(lambda: host.api("GET", "/status")[1]["targets"][0]["state"] == "running", what="memory running again")


def test_memory_db_appears_with_counts_and_the_graph_browser_finds_an_entity(host, browser, tmp_path):
    project = tmp_path / "atlas"
    project.mkdir()
    entities = [
        {"name": "Ada Lovelace", "entityType": "person", "observations": ["Wrote the first program", "Worked with Babbage"]},
        {"name": "Analytical Engine", "entityType": "machine", "observations": ["Designed by Charles Babbage"]},
        {"name": "Charles Babbage", "entityType": "person", "observations": []},
    ]
    relations = [
        {"from": "Ada Lovelace", "to": "Analytical Engine", "relationType": "programmed"},
        {"from": "Charles Babbage", "to": "Analytical Engine", "relationType": "designed"},
    ]
    use_memory(
        host, project, "ui-graph-instance",
        calls=[("create_entities", {"entities": entities}), ("create_relations", {"relations": relations})],
    )
    status, body = host.api("GET", "/memory/dbs")
    assert status == 200, body
    mine = [db for db in body["dbs"] if str(project) in json.dumps(db)]
    assert len(mine) == 1, body
    db_id = mine[0]["id"]

    browser("goto", url=dashboard_url(host))
    row = f'#dbs-table tr[data-db="{db_id}"]'
    browser.wait(row, text="atlas")
    assert browser.text(f"{row} td[data-count='entities']") == "3"
    assert browser.text(f"{row} td[data-count='relations']") == "2"
    assert browser.text(f"{row} td[data-count='observations']") == "3"

    browser("click", selector=f"{row} button")
    browser.wait("#graph .entity", text="Analytical Engine")
    browser("fill", selector="#graph-query", value="lovelace")
    browser("press", selector="#graph-query", key="Enter")
    browser.wait('#graph .entity[data-entity="Ada Lovelace"]')
    browser.wait("#graph-status", text="lovelace")
    names = browser("texts", selector="#graph .entity .entity-name")
    assert names == ["Ada Lovelace"], names
    assert "Wrote the first program" in browser.text('#graph .entity[data-entity="Ada Lovelace"]')
    relation_text = browser("texts", selector="#graph-relations li")
    assert any("programmed" in r and "Analytical Engine" in r for r in relation_text), relation_text

    # A relation's endpoint is a link: clicking it searches for that entity.
    browser("click", selector='#graph-relations li[data-to="Analytical Engine"] .entity-link:last-child')
    browser.wait('#graph .entity[data-entity="Analytical Engine"]')
    assert browser("eval", expression="document.getElementById('graph-query').value") == "Analytical Engine"

    browser("fill", selector="#graph-query", value="no such thing anywhere")
    browser("press", selector="#graph-query", key="Enter")
    browser.wait("#graph-entities .empty", text="No entity matches")

    browser("fill", selector="#graph-query", value="babbage")
    browser("press", selector="#graph-query", key="Enter")
    browser.wait('#graph .entity[data-entity="Charles Babbage"]')
    browser.screenshot("memory-graph-light")
    browser.screenshot("memory-graph-dark", scheme="dark")
    browser("color_scheme", scheme="light")

    # Export, as the page's links fetch it (with the page's cookie): JSON and the reference JSONL.
    fetch = "fetch(document.getElementById('{}').href).then(r => r.text())"
    exported = json.loads(browser("eval", expression=fetch.format("graph-export-json")))
    assert sorted(e["name"] for e in exported["entities"]) == sorted(e["name"] for e in entities)
    assert {r["relationType"] for r in exported["relations"]} == {"programmed", "designed"}
    lines = [json.loads(l) for l in browser("eval", expression=fetch.format("graph-export-jsonl")).splitlines()]
    assert [l["type"] for l in lines] == ["entity"] * 3 + ["relation"] * 2
    assert lines[0] == {"type": "entity", "name": "Ada Lovelace", "entityType": "person",
                        "observations": ["Wrote the first program", "Worked with Babbage"]}

    # Delete one entity: it goes, with its relations.
    browser("click", selector='#graph .entity[data-entity="Charles Babbage"] .entity-delete')
    browser.wait('#graph .entity[data-entity="Charles Babbage"]', state="detached")
    browser.wait('#graph .entity[data-entity="Ada Lovelace"]')  # still matches "babbage"
    _, graph = host.api("GET", f"/memory/dbs/{db_id}/graph?q=")
    assert sorted(e["name"] for e in graph["entities"]) == ["Ada Lovelace", "Analytical Engine"]
    assert [r["relationType"] for r in graph["relations"]] == ["programmed"]


def test_configure_claude_code_shows_the_diff_then_writes(host, browser):
    claude_json = host.home.home / ".claude.json"
    claude_json.write_text(json.dumps({"numStartups": 3, "mcpServers": {"other": {"type": "http", "url": "http://example.invalid/mcp"}}}, indent=2))
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    browser("click", selector="#configure-claude")
    browser.wait("#config-diff span.add", text="memory")
    assert json.loads(claude_json.read_text())["mcpServers"].keys() == {"other"}, "the dry run writes nothing"
    browser.screenshot("configure-dialog")
    browser("click", selector="#config-apply")
    browser.wait("#config-summary.result-ok")
    written = json.loads(claude_json.read_text())
    assert written["numStartups"] == 3
    assert set(written["mcpServers"]) == {"other", "memory"}
    assert written["mcpServers"]["memory"]["args"] == ["--target", "memory"]
    summary = browser.text("#config-summary")
    assert summary.count("claude mcp list") == 1, f"the host's next step, said once: {summary}"


def test_adopt_section_previews_adopts_a_stdio_and_a_remote_server_and_undoes_them(host, browser):
    """The Servers page's adopt section: a stdio server and (on request) a remote one, the
    preview diff with secrets hidden, then Apply, then Undo all back to the very bytes."""
    from conftest import FASTMCP_PYTHON

    claude_json = host.home.home / ".claude.json"
    notes = Path(__file__).parent / "servers" / "notes_stdio_server.py"
    claude_json.write_text(json.dumps({"mcpServers": {
        "notes": {"command": str(FASTMCP_PYTHON), "args": [str(notes)], "env": {"NOTES_TOKEN": "ui-SECRET-1"}},
        "team": {"type": "http", "url": "https://team.example.invalid/mcp", "headers": {"Authorization": "Bearer ui-SECRET-2"}},
    }}, indent=2))
    original = claude_json.read_bytes()
    browser("goto", url=dashboard_url(host))
    notes_row, team_row = '#adopt-table tr[data-adopt="notes"]', '#adopt-table tr[data-adopt="team"]'
    browser.wait(notes_row, text="NOTES_TOKEN")
    assert browser.text(team_row).count("Authorization") == 1, "header names are shown, never values"
    assert "ui-SECRET" not in browser("eval", expression="document.body.innerText")
    assert browser("eval", expression=f"document.querySelector('{team_row} button').disabled") is True
    assert browser("texts", selector=f"{team_row} select option") == ["leave", "shared"]
    browser("select", selector=f"{team_row} select", value="shared")
    browser.wait(f"{team_row} button:not([disabled])")

    browser("click", selector="#adopt-all")
    browser.wait("#adopt-diff span.add", text="--target")
    diff = browser.text("#adopt-diff")
    assert "ui-SECRET" not in diff and "<hidden>" in diff, diff
    assert claude_json.read_bytes() == original, "the preview writes nothing"
    browser("click", selector="#adopt-apply")
    browser.wait(notes_row, text="adopted")
    servers = json.loads(claude_json.read_text())["mcpServers"]
    assert servers["notes"]["args"] == ["--target", "notes"]
    assert servers["team"]["args"] == ["--target", "team"]
    status = {t["name"]: t for t in host.api("GET", "/status")[1]["targets"]}
    assert status["team"]["guarded"] is True and status["notes"]["state"] == "idle", status
    browser.screenshot("adopted")

    browser("click", selector="#adopt-undo-all")
    browser.wait("#adopt-diff span.del", text="--target")
    browser("click", selector="#adopt-apply")
    wait_until(lambda: claude_json.read_bytes() == original, what="the original bytes back")
    browser.wait(notes_row, text="started by Claude Code")


def test_tools_page_lists_a_targets_offer_and_calls_a_tool_with_its_timing(host, browser, tmp_path):
    browser("goto", url=dashboard_url(host) + "#tools")
    browser.wait("#tools-target option[value='memory']", state="attached")
    browser("click", selector="#tools-pick button[type='submit']")
    browser.wait("#tools-list li button", text="create_entities")
    assert browser("count", selector="#tools-list li button") == 9, "the memory server's nine tools"
    assert "9 tools" in browser.text("#tools-status")
    assert "memory://knowledge-graph" in browser.text("#resources-list")

    browser("click", selector="#tools-list li button:text-is('create_entities')")
    skeleton = json.loads(browser("eval", expression="document.getElementById('tool-call-args').value"))
    assert skeleton == {"entities": []}, skeleton
    project = tmp_path / "toolsproj"
    project.mkdir()
    args = {"entities": [{"name": "From the Tools page", "entityType": "note", "observations": ["called by hand"]}]}
    browser("fill", selector="#tool-call-args", value=json.dumps(args))
    browser("fill", selector="#tool-call-project", value=str(project))
    browser("click", selector="#tool-call-run")
    browser.wait("#tool-call-timing", text="OK in")
    assert "From the Tools page" in browser.text("#tool-call-result")
    assert (project / ".claude" / "memory.db").exists(), "the call went to the named project's DB"
    browser.screenshot("tools-page")

    # Bad arguments are the tool's error answer, shown as such.
    browser("fill", selector="#tool-call-args", value='{"entities": "not a list"}')
    browser("click", selector="#tool-call-run")
    browser.wait("#tool-call-timing", text="Error in")


def test_clients_page_lists_every_client_file_and_writes_then_removes_with_the_diff_first(host, browser):
    cursor = host.home.home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True, exist_ok=True)
    cursor.write_text('{\n  // mine\n  "mcpServers": {"other": {"command": "x"}}\n}\n')
    original = cursor.read_bytes()
    browser("goto", url=dashboard_url(host) + "#clients")
    row = '#clients-table tr[data-client="cursor"]'
    browser.wait(row, text="none")
    clients = browser("eval", expression="[...document.querySelectorAll('#clients-table tbody tr')].map(r => r.dataset.client)")
    assert clients == ["claude-code", "claude-code-project", "mcp-json", "claude-desktop", "cursor"], clients
    assert browser("eval", expression=f"document.querySelector('{row} button[aria-label^=\"Remove\"]').disabled") is True

    browser("click", selector=f"{row} button[aria-label^='Write']")
    browser.wait("#config-diff span.add", text="memory")
    assert cursor.read_bytes() == original, "the diff comes first; nothing is written yet"
    browser("click", selector="#config-apply")
    browser.wait("#config-summary.result-ok")
    written = cursor.read_text()
    assert "// mine" in written and '"memory"' in written and "mcp-session-proxy" in written
    browser("click", selector="#config-cancel")
    browser.wait(row, text="memory")

    browser("click", selector=f"{row} button[aria-label^='Remove']")
    browser.wait("#config-diff span.del", text="memory")
    browser("click", selector="#config-apply")
    browser.wait("#config-summary.result-ok")
    assert '"memory"' not in cursor.read_text() and "// mine" in cursor.read_text()
    browser("click", selector="#config-cancel")
    browser.wait(row, text="none")


def test_manager_going_away_shows_not_reachable_and_coming_back_recovers(host, browser):
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    assert host.stop() == 0
    browser.wait("#banner", text="Manager not reachable", timeout_ms=20000)
    browser.wait("#connection[data-state='offline']")
    browser.screenshot("manager-not-reachable")


def test_notice_from_the_tray_is_shown_and_dismissed(host, browser):
    browser("goto", url=dashboard_url(host) + "#notice=" + "Updated%20~%2F.claude.json.%20Restart%20Claude%20Code.")
    browser.wait("#notice", text="Updated ~/.claude.json. Restart Claude Code.")
    assert browser("eval", expression="window.location.href") == host.manager_url + "/", "the token and the notice leave the URL"
    browser("click", selector="#notice-close")
    browser.wait("#notice", state="hidden")


def test_a_memory_db_deleted_while_in_use_is_reported_on_the_dashboard(host, browser, tmp_path):
    project = tmp_path / "orbit"
    project.mkdir()
    session = RawSession.of(host, project)
    try:
        session.create("before")
        browser("goto", url=dashboard_url(host))
        browser.wait("#connection[data-state='live']")  # the event stream is open
        shutil.rmtree(project / ".claude")
        session.create("after")
    finally:
        session.close()
    browser.wait("#notice", text="memory DB for orbit was deleted while in use; a new one was created")
    assert "bad" in browser("eval", expression="document.getElementById('notice').className")
    browser.screenshot("memory-db-reopened")


def test_dashboard_opens_only_with_the_token_link_which_leaves_the_address_bar(host, browser):
    assert browser("goto", url=host.manager_url + "/") == 401
    browser.wait("h1", text="Open the dashboard from the tray")
    assert host.home.token not in browser("eval", expression="document.documentElement.outerHTML")
    assert browser("goto", url=host.manager_url + "/?token=" + "0" * 64) == 401

    assert browser("goto", url=dashboard_url(host)) == 200
    assert browser("eval", expression="window.location.href") == host.manager_url + "/"
    assert browser("eval", expression="document.cookie") == "", "the cookie is HttpOnly"
    browser.wait("#connection[data-state='live']")
    # A reload (no token in the URL any more) still gets the page through the cookie.
    assert browser("goto", url=host.manager_url + "/") == 200
    browser.wait(f"{target_row('memory')} .badge", text="running")
    browser.wait("#connection[data-state='live']")


def test_failing_and_remote_targets_show_their_state_and_error(home, browser):
    extra = (
        '[targets.broken]\ncommand = "false"\ntransport = "streamable-http"\nport = {port:broken}\n\n'
        '[targets.team]\nurl = "http://127.0.0.1:9/mcp"\n'
    )
    host = start_host(home, extra_targets=extra)
    try:
        wait_until(
            lambda: {t["name"]: t["state"] for t in host.api("GET", "/status")[1]["targets"]}.get("broken") in ("failed", "crash-loop"),
            timeout=30, what="the broken target failing",
        )
        broken = next(t for t in host.api("GET", "/status")[1]["targets"] if t["name"] == "broken")
        browser("goto", url=dashboard_url(host))
        browser.wait(f"{target_row('memory')} .badge", text="running")
        assert browser.text(f"{target_row('broken')} .badge") in ("failed", "crash-loop")
        assert broken["last_error"] and broken["last_error"][:40] in browser.text(f"{target_row('broken')} .details .error")
        browser.wait(f"{target_row('team')} .badge", text="unreachable")
        team = browser.text(target_row("team"))
        assert "http://127.0.0.1:9/mcp" in team and "not managed here" in team
        assert browser("count", selector=f"{target_row('team')} button") == 0, "a remote target has no buttons"
        assert browser("count", selector=f"{target_row('broken')} button[data-action='start']:not([disabled])") == 1
        assert browser.text("#servers-count") == "1 of 3 running"
        browser.screenshot("failing-and-remote-targets")
    finally:
        assert host.stop() == 0


def test_graph_browser_pages_through_a_large_graph(host, browser, tmp_path):
    project = tmp_path / "big"
    project.mkdir()
    entities = [{"name": f"Module {i:02d}", "entityType": "module", "observations": [f"line count {i * 10}"]} for i in range(45)]
    use_memory(host, project, "ui-paging-instance", calls=[("create_entities", {"entities": entities})])
    db_id = next(db["id"] for db in host.api("GET", "/memory/dbs")[1]["dbs"] if str(project) in json.dumps(db))

    browser("goto", url=dashboard_url(host))
    row = f'#dbs-table tr[data-db="{db_id}"]'
    browser.wait(f"{row} td[data-count='entities']", text="45")
    browser("click", selector=f"{row} button")
    browser.wait("#graph-page", text="1–20 of 45")
    assert browser("count", selector="#graph .entity") == 20
    assert browser("eval", expression="document.getElementById('graph-prev').disabled") is True
    seen = set(browser("texts", selector="#graph .entity .entity-name"))
    browser("click", selector="#graph-next")
    browser.wait("#graph-page", text="21–40 of 45")
    seen |= set(browser("texts", selector="#graph .entity .entity-name"))
    browser("click", selector="#graph-next")
    browser.wait("#graph-page", text="41–45 of 45")
    seen |= set(browser("texts", selector="#graph .entity .entity-name"))
    assert browser("eval", expression="document.getElementById('graph-next').disabled") is True
    assert seen == {e["name"] for e in entities}, "every entity is reachable by paging, none twice"
    browser("click", selector="#graph-prev")
    browser.wait("#graph-page", text="21–40 of 45")


def test_a_session_through_the_proxy_appears_and_leaves_live(host, browser, tmp_path):
    from mcp import Client

    project = tmp_path / "via-proxy"
    project.mkdir()
    browser("goto", url=dashboard_url(host))
    browser.wait("#sessions-empty")

    async def go():
        async with Client(proxy_params(host.home, "memory", project=project), mode="legacy") as client:
            await client.list_tools()
            # The proxy's session (initialize revision) is shown with its project, no reload.
            browser.wait("#sessions-table tbody tr", text="via-proxy")
            row = browser.text("#sessions-table tbody tr")
            assert str(project) in row and "memory" in row
            browser.screenshot("session-through-proxy")
        # The client closed stdin: the proxy DELETEs its session and the row goes away.
        browser.wait("#sessions-empty", timeout_ms=20000)

    anyio.run(go)


def test_ending_a_session_from_the_page_frees_it_and_the_proxy_opens_a_new_one(host, browser, tmp_path):
    """The End button of a session: the row goes, the host forgets the session id, and the
    window's proxy, told "session not found", opens a new session and answers on."""
    from mcp import Client

    project = tmp_path / "ending"
    project.mkdir()
    browser("goto", url=dashboard_url(host))
    browser.wait("#sessions-empty")
    row = "#sessions-table tbody tr"

    async def go():
        async with Client(proxy_params(host.home, "memory", project=project), mode="legacy") as client:
            await client.list_tools()
            browser.wait(row, text="ending")
            ended = browser("eval", expression=f"document.querySelector('{row}').dataset.session")
            browser("click", selector=f"{row} button[aria-label^='End session']")
            browser.wait(f"{row}[data-session='{ended}']", state="detached")
            assert ended not in json.dumps(host.api("GET", "/sessions")[1])
            status, body = host.api("POST", f"/sessions/memory/{ended}/end")
            assert status == 404, body
            assert len((await client.list_tools()).tools) == 9, "the proxy carried on"
            browser.wait(row, text="ending")
            assert browser("eval", expression=f"document.querySelector('{row}').dataset.session") != ended

    anyio.run(go)


API_EXAMPLES = REPO / "docs" / "manager-api.json"


def test_the_page_renders_the_documented_example_answers(host, browser):
    """UI fixture data generated from the types: every API answer the page reads is the
    example of docs/manager-api.json (made from msm_host::api_types by a Rust test), so the page
    reads exactly that shape; the live stream is refused, so the page polls the fixtures."""
    routes = {r["type"]: r for r in json.loads(API_EXAMPLES.read_text())["routes"]}
    db_id = routes["Dbs"]["answer"]["dbs"][0]["id"]
    answers = [
        {"path": "/status", "status": 200, "body": routes["Status"]["answer"]},
        {"path": "/sessions", "status": 200, "body": routes["Sessions"]["answer"]},
        {"path": "/memory/dbs", "status": 200, "body": routes["Dbs"]["answer"]},
        {"path": f"/memory/dbs/{db_id}/graph", "status": 200, "body": routes["GraphPage"]["answer"]},
        {"path": "/config/generate", "status": 200, "body": routes["Generate"]["answer"]},
        {"path": "/daemons/everything/log", "status": 200, "body": routes["LogChunk"]["answer"]},
        {"path": "/events", "status": 404, "body": routes["ErrorBody"]["answer"]},
        {"path": "/api/adopt", "status": 404, "body": routes["ErrorBody"]["answer"]},
    ]
    browser("route", answers=answers)
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    browser.wait(f"{target_row('everything')} .badge", text="crash-loop")
    assert "five times" in browser.text(f"{target_row('everything')} .error")
    assert browser.text(f"{target_row('team')} .badge") == "reachable"
    assert browser.text(f"{target_row('team')} .actions") == "not managed here"
    assert browser.text("#servers-count") == "2 of 4 running"
    # An example whose command is not installed says so and cannot be started.
    assert "needs uvx" in browser.text(f"{target_row('code-index')} .details")
    assert browser("eval", expression=f"document.querySelector(`{target_row('code-index')} button[data-action='start']`).disabled") is True
    assert "46 MiB" in browser.text(f"{target_row('memory')} .usage") and "0.4 % CPU" in browser.text(f"{target_row('memory')} .usage")
    assert "v0.1.0" in browser.text("#host-summary") and "3199" in browser.text("#host-summary")
    session = routes["Sessions"]["answer"]["sessions"][0]
    row = f'#sessions-table tr[data-session="{session["id"]}"]'
    browser.wait(row, text="claude-code")
    assert "v2.0.14" in browser.text(row) and "shop" in browser.text(row)
    assert browser("eval", expression=f"document.querySelector('{row} .session-id').title") == session["id"], "the full id on hover"
    db_row = f'#dbs-table tr[data-db="{db_id}"]'
    browser.wait(db_row, text="shop")
    assert browser("texts", selector=f"{db_row} td.num")[:3] == ["2", "1", "3"]
    browser("click", selector=f"{db_row} button")
    browser.wait("#graph-entities .entity[data-entity='Ada']", text="maintains shop")
    relation = browser.text("#graph-relations li")
    assert relation.startswith("Ada") and "maintains" in relation and relation.endswith("shop"), relation
    browser("click", selector=f"{target_row('everything')} button[data-action='log']")
    browser.wait("#log-text", text="restarting in 4 s")
    browser("click", selector="#log-follow")  # stop following the fixture
    browser("click", selector="#configure-claude")
    browser.wait("#config-summary", text="Would add memory")
    browser.wait("#config-diff .add", text="mcpServers")
    browser.screenshot("fixtures-light")
    # The adopt routes answer 404 here: the section stays hidden.
    assert browser("eval", expression="document.getElementById('servers-adopt').hidden") is True


def test_log_viewer_shows_the_tail_then_follows_appended_lines(host, browser):
    log = host.home.state / "memory.log"
    with open(log, "a") as f:
        f.write("".join(f"old line {i}\n" for i in range(8000)))
    browser("goto", url=dashboard_url(host) + "#log=memory")
    browser.wait("#log-text", text="old line 7999")
    assert "old line 0\n" not in browser.text("#log-text"), "only the tail is loaded"
    with open(log, "a") as f:
        f.write("a line written just now\n")
    browser.wait("#log-text", text="a line written just now", timeout_ms=5000)
    assert browser.text("#log-path") == str(log)
    browser.screenshot("log-viewer")


def test_start_all_and_stop_all(host, browser):
    browser("goto", url=dashboard_url(host))
    browser.wait(f"{target_row('memory')} .badge", text="running")
    assert browser("eval", expression="document.getElementById('start-all').disabled") is True
    browser("click", selector="#stop-all")
    browser.wait(f"{target_row('memory')} .badge", text="stopped")
    assert host.api("GET", "/status")[1]["targets"][0]["state"] == "stopped"
    browser("click", selector="#start-all")
    browser.wait(f"{target_row('memory')} .badge", text="running")


def test_window_only_mode_says_why_and_quit_stops_the_host(home, browser):
    host = start_host(home)
    try:
        reason = "The tray icon cannot be shown: no StatusNotifier host."
        browser("goto", url=dashboard_url(host) + "#no-tray=" + urllib.parse.quote(reason))
        browser.wait("#no-tray", text="no StatusNotifier host")
        assert browser("eval", expression="window.location.hash") == ""
        browser.screenshot("no-tray")
        browser("click", selector="#no-tray-quit")  # confirm() is accepted
        host.proc.wait(20)
        assert host.proc.returncode == 0
        assert not (home.state / "manager.lock").exists()
    finally:
        host.stop()


def serious(violations: list[dict]) -> list[dict]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_violation_in_any_view(host, browser, tmp_path, scheme):
    """axe-core (npm, tests/peers) on each view of the dashboard, in light and dark mode:
    servers with the log open, sessions, memory with the graph browser, the config dialog,
    window-only mode."""
    browser("color_scheme", scheme=scheme)
    project = tmp_path / "a11y"
    project.mkdir()
    use_memory(host, project, "a11y-instance", calls=[("create_entities", {"entities": [
        {"name": "Ada", "entityType": "person", "observations": ["writes tests"]}]})])
    browser("goto", url=dashboard_url(host) + "#no-tray=" + urllib.parse.quote("No tray here."))
    browser.wait("#sessions-table tr[data-session]")
    browser.wait("#dbs-table tr[data-db]", text="a11y")
    found = {}
    found["servers"] = browser("axe")
    browser("click", selector=f"{target_row('memory')} button[data-action='log']")
    browser.wait("#log:not([hidden])")
    found["log"] = browser("axe")
    browser("click", selector="#dbs-table tr[data-db] button")
    browser.wait("#graph-entities .entity")
    found["graph"] = browser("axe")
    browser("click", selector="#configure-claude")
    browser.wait("#config-dialog[open]")
    found["config-dialog"] = browser("axe")
    browser.screenshot(f"axe-{scheme}")
    bad = {view: serious(v) for view, v in found.items() if serious(v)}
    assert bad == {}, json.dumps(bad, indent=1)
