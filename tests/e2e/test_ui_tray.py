"""The tray app (`mcp-session-manager` with no arguments) under a virtual display (Xvfb) and
its own D-Bus session bus: it hosts the daemons, answers the manager API, shows the dashboard
window when no tray area exists, takes over from a headless host, lets a second instance
focus the first, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MANAGER_BIN, Home, free_port, http_ok, start_host, wait_until

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("dbus-daemon") is None,
    reason="the tray tests need Xvfb and dbus-daemon (scripts/install-deps.sh installs them)",
)


@dataclass
class Desktop:
    """A virtual X display and a private session bus, torn down after the test."""

    display: str
    bus_address: str
    procs: list

    def env(self, base: dict) -> dict:
        env = dict(base, DISPLAY=self.display, DBUS_SESSION_BUS_ADDRESS=self.bus_address)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def screenshot(self, path: Path) -> Path:
        subprocess.run(["import", "-display", self.display, "-window", "root", str(path)], check=True, timeout=30)
        return path


@pytest.fixture
def desktop(tmp_path):
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    number = xvfb.stdout.readline().strip()
    assert number.isdigit(), "Xvfb did not report its display number"
    bus_path = tmp_path / "bus"
    bus = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address=unix:path={bus_path}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until(bus_path.exists, timeout=10, what="the session bus socket")
    yield Desktop(display=f":{number}", bus_address=f"unix:path={bus_path}", procs=[xvfb, bus])
    for proc in (bus, xvfb):
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def write_config(home: Home) -> tuple[int, int]:
    manager_port, memory_port = free_port(), free_port()
    home.write_config(f"[manager]\nport = {manager_port}\n\n[targets.memory]\nbuiltin = \"memory\"\nport = {memory_port}\n")
    return manager_port, memory_port


def start_tray(home: Home, desktop: Desktop, name: str = "tray") -> subprocess.Popen:
    log = open(home.root / f"{name}.stderr", "ab")
    return subprocess.Popen(
        [str(MANAGER_BIN)], env=desktop.env(home.env), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        start_new_session=True,
    )


def api_status(home: Home, manager_port: int):
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{manager_port}/status", headers={"Authorization": f"Bearer {home.token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def stop_tray(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the tray app did not stop on SIGTERM")
    return proc.returncode


def distinct_colours(png: Path) -> int:
    out = subprocess.run(["identify", "-format", "%k", str(png)], capture_output=True, text=True, timeout=30)
    return int(out.stdout.strip() or 0)


def test_tray_app_hosts_the_daemons_shows_the_dashboard_and_stops_cleanly(home, desktop, tmp_path):
    manager_port, memory_port = write_config(home)
    tray = start_tray(home, desktop)
    try:
        wait_until(lambda: tray.poll() is not None or http_ok(f"http://127.0.0.1:{manager_port}/health"), what="manager /health")
        assert tray.poll() is None, (home.root / "tray.stderr").read_text()[-3000:]
        wait_until(lambda: http_ok(f"http://127.0.0.1:{memory_port}/health"), what="memory /health")
        status = api_status(home, manager_port)
        assert status["pid"] == tray.pid, "the daemons run inside the tray app"
        assert [(t["name"], t["state"]) for t in status["targets"]] == [("memory", "running")]

        # This bus has no StatusNotifier host: the app says so and opens its window instead.
        stderr = home.root / "tray.stderr"
        wait_until(lambda: "StatusNotifier" in stderr.read_text(), timeout=10, what="the no-tray warning")
        # The window shows the manager's own page: it opens the token link, the webview keeps
        # the cookie across the redirect and gets the page (with the token) through it.
        wait_until(lambda: "web UI: page served" in stderr.read_text(), timeout=20, what="the page served to the window")
        log = stderr.read_text()
        assert log.index("web UI: token link accepted") < log.index("web UI: page served")
        assert "web UI: page refused" not in log
        # The webview paints some time after the page is served: seconds on a loaded machine.
        shot = tmp_path / "tray-desktop.png"
        wait_until(lambda: distinct_colours(desktop.screenshot(shot)) > 50, timeout=45, interval=1.0,
                   what="the dashboard window to render (not a blank screen)")
        print(f"screenshot: {shot}")
    finally:
        code = stop_tray(tray)
    assert code == 0, (home.root / "tray.stderr").read_text()[-3000:]
    assert not (home.state / "manager.lock").exists(), "a clean stop removes the lock files"
    assert not http_ok(f"http://127.0.0.1:{manager_port}/health")


def test_tray_app_takes_over_from_a_headless_host(home, desktop):
    headless = start_host(home)
    tray = start_tray(home, desktop)
    try:
        headless.proc.wait(30)
        assert headless.proc.returncode == 0, "the headless host hands over and exits 0"
        wait_until(
            lambda: http_ok(f"{headless.manager_url}/health") and api_status(home, headless.manager_port)["pid"] == tray.pid,
            timeout=30, what="the tray app serving the manager port",
        )
        wait_until(lambda: http_ok(f"http://127.0.0.1:{headless.ports['memory']}/health"), what="memory /health on the same port")
        assert tray.poll() is None
    finally:
        assert stop_tray(tray) == 0, (home.root / "tray.stderr").read_text()[-3000:]


def test_second_tray_app_focuses_the_first_and_exits(home, desktop):
    manager_port, _ = write_config(home)
    first = start_tray(home, desktop, "first")
    try:
        wait_until(lambda: first.poll() is not None or http_ok(f"http://127.0.0.1:{manager_port}/health"), what="manager /health")
        second = start_tray(home, desktop, "second")
        second.wait(30)
        assert second.returncode == 0, (home.root / "second.stderr").read_text()[-3000:]
        assert first.poll() is None
        assert api_status(home, manager_port)["pid"] == first.pid, "the first instance keeps hosting"
        wait_until(lambda: "another instance" in (home.root / "first.stderr").read_text(), timeout=10, what="the first instance noticing")
    finally:
        assert stop_tray(first) == 0, (home.root / "first.stderr").read_text()[-3000:]


# A stand-in StatusNotifier host (what a desktop panel is), run by the system python3 with
# PyGObject: it owns org.kde.StatusNotifierWatcher, records the items that register, and can
# read (GetLayout) and click (Event) an item's menu over com.canonical.dbusmenu, exactly as a
# panel does.
SNI_HOST_SCRIPT = r'''
"""A stand-in StatusNotifier host for tests: owns org.kde.StatusNotifierWatcher on the session
bus and records the items that register; also reads (GetLayout) and clicks (Event) an item's
dbusmenu. Runs under the system python3 (PyGObject)."""
import json, os, sys, time
import gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib

WATCHER_XML = """<node><interface name="org.kde.StatusNotifierWatcher">
<method name="RegisterStatusNotifierItem"><arg type="s" direction="in"/></method>
<method name="RegisterStatusNotifierHost"><arg type="s" direction="in"/></method>
<property name="RegisteredStatusNotifierItems" type="as" access="read"/>
<property name="IsStatusNotifierHostRegistered" type="b" access="read"/>
<property name="ProtocolVersion" type="i" access="read"/>
<signal name="StatusNotifierItemRegistered"><arg type="s"/></signal>
<signal name="StatusNotifierItemUnregistered"><arg type="s"/></signal>
<signal name="StatusNotifierHostRegistered"/>
</interface></node>"""

def watch(items_file):
    items = []
    def on_call(conn, sender, path, iface, method, params, invocation):
        if method == "RegisterStatusNotifierItem":
            service = params.unpack()[0]
            bus, obj = (sender, service) if service.startswith("/") else (service, "/StatusNotifierItem")
            items.append({"bus": bus, "path": obj})
            with open(items_file + ".tmp", "w") as f:
                json.dump(items, f)
            os.replace(items_file + ".tmp", items_file)  # readers never see a half-written file
            conn.emit_signal(None, "/StatusNotifierWatcher", "org.kde.StatusNotifierWatcher",
                             "StatusNotifierItemRegistered", GLib.Variant("(s)", (bus + obj,)))
        invocation.return_value(None)
    def on_get(conn, sender, path, iface, prop):
        return {"RegisteredStatusNotifierItems": GLib.Variant("as", [i["bus"] + i["path"] for i in items]),
                "IsStatusNotifierHostRegistered": GLib.Variant("b", True),
                "ProtocolVersion": GLib.Variant("i", 0)}[prop]
    node = Gio.DBusNodeInfo.new_for_xml(WATCHER_XML)
    def on_bus(conn, name):
        conn.register_object("/StatusNotifierWatcher", node.interfaces[0], on_call, on_get, None)
    def on_name(conn, name):
        print("owned", flush=True)
    Gio.bus_own_name(Gio.BusType.SESSION, "org.kde.StatusNotifierWatcher", Gio.BusNameOwnerFlags.NONE, on_bus, on_name, None)
    GLib.MainLoop().run()

def menu_path(conn, bus, path):
    v = conn.call_sync(bus, path, "org.freedesktop.DBus.Properties", "Get",
                       GLib.Variant("(ss)", ("org.kde.StatusNotifierItem", "Menu")), GLib.VariantType("(v)"),
                       Gio.DBusCallFlags.NONE, 5000, None)
    return v.unpack()[0]

def layout(bus, path):
    conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    mp = menu_path(conn, bus, path)
    v = conn.call_sync(bus, mp, "com.canonical.dbusmenu", "GetLayout",
                       GLib.Variant("(iias)", (0, -1, [])), None, Gio.DBusCallFlags.NONE, 5000, None)
    revision, root = v.unpack()
    def node(n):
        ident, props, children = n
        return {"id": ident, "label": props.get("label", ""), "type": props.get("type", "standard"),
                "enabled": props.get("enabled", True), "toggle_state": props.get("toggle-state"),
                "children": [node(c) for c in children]}
    print(json.dumps(node(root)))

def click(bus, path, ident):
    conn = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    mp = menu_path(conn, bus, path)
    conn.call_sync(bus, mp, "com.canonical.dbusmenu", "Event",
                   GLib.Variant("(isvu)", (int(ident), "clicked", GLib.Variant("i", 0), int(time.time()))),
                   None, Gio.DBusCallFlags.NONE, 5000, None)
    print("clicked")

if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "watch": watch(sys.argv[2])
    elif mode == "layout": layout(sys.argv[2], sys.argv[3])
    elif mode == "click": click(sys.argv[2], sys.argv[3], sys.argv[4])
'''

SYSTEM_PYTHON = "/usr/bin/python3"


def system_python_has_gi() -> bool:
    if not Path(SYSTEM_PYTHON).exists():
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('Gio', '2.0')"], capture_output=True)
    return probe.returncode == 0


@dataclass
class Panel:
    """The stand-in StatusNotifier host and the tray item that registered with it."""

    script: Path
    items_file: Path
    env: dict

    def item(self) -> tuple[str, str]:
        items = json.loads(self.items_file.read_text())
        return items[-1]["bus"], items[-1]["path"]

    def layout(self) -> dict:
        out = subprocess.run([SYSTEM_PYTHON, str(self.script), "layout", *self.item()], env=self.env, capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def find(self, *labels: str) -> dict:
        """The menu node reached through `labels` (prefixes of each level's label)."""
        node = self.layout()
        for label in labels:
            matches = [c for c in node["children"] if c["label"].startswith(label)]
            assert matches, f"no menu item {label!r} among {[c['label'] for c in node['children']]}"
            node = matches[0]
        return node

    def has(self, *labels: str) -> bool:
        """Whether `find(*labels)` would succeed now (for waiting on a menu rebuild)."""
        try:
            self.find(*labels)
            return True
        except AssertionError:
            return False

    def click(self, *labels: str) -> None:
        # Ids change whenever the menu is rebuilt (each status refresh may rebuild it): look up,
        # click, and look up again if the menu was rebuilt in between.
        for _ in range(5):
            node = self.find(*labels)
            out = subprocess.run([SYSTEM_PYTHON, str(self.script), "click", *self.item(), str(node["id"])], env=self.env, capture_output=True, text=True, timeout=20)
            if "does not refer to a menu item" not in out.stderr:
                break
        assert out.returncode == 0, out.stderr


@pytest.fixture
def panel(desktop, home, tmp_path):
    if not system_python_has_gi():
        pytest.skip("needs the system python3 with PyGObject (python3-gi) to act as a tray host")
    script = tmp_path / "sni_host.py"
    script.write_text(SNI_HOST_SCRIPT)
    items_file = tmp_path / "items.json"
    env = desktop.env(home.env)
    proc = subprocess.Popen([SYSTEM_PYTHON, str(script), "watch", str(items_file)], env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "owned", "the stand-in tray host owns the watcher name"
    yield Panel(script=script, items_file=items_file, env=env)
    proc.terminate()
    proc.wait(10)


def labels(node: dict) -> list[str]:
    return [c["label"] for c in node["children"] if c["type"] != "separator"]


def test_tray_menu_shows_the_host_and_its_clicks_act(home, desktop, panel, tmp_path):
    manager_port, memory_port = write_config(home)
    tray = start_tray(home, desktop)
    try:
        wait_until(lambda: tray.poll() is not None or panel.items_file.exists(), what="the tray item registering")
        assert tray.poll() is None, (home.root / "tray.stderr").read_text()[-3000:]
        wait_until(lambda: panel.has("1 of 1 servers running"), timeout=20, what="the status line")
        menu = panel.layout()
        assert labels(menu) == [
            "1 of 1 servers running · 0 sessions",
            f"memory: running · :{memory_port}",
            "Start all",
            "Stop all",
            "Configure Claude Code…",
            "Adopt servers from Claude Code…",
            "Open dashboard",
            "Start at login",
            "Quit",
        ]
        memory = panel.find("memory:")
        assert [(c["label"], c["enabled"]) for c in memory["children"] if c["type"] != "separator"] == [
            ("Start", False), ("Stop", True), ("Restart", True), ("Open log", True)]
        assert not panel.find("Start all")["enabled"] and panel.find("Stop all")["enabled"]
        assert not panel.find("1 of 1")["enabled"], "the status line is not clickable"
        assert panel.find("Start at login")["toggle_state"] == 0
        assert "StatusNotifier" not in (home.root / "tray.stderr").read_text(), "a tray host exists: no warning"

        panel.click("memory:", "Stop")
        wait_until(lambda: api_status(home, manager_port)["targets"][0]["state"] == "stopped", what="memory stopped")
        wait_until(lambda: panel.has("memory: stopped"), timeout=10, what="the menu showing memory stopped")
        assert panel.find("Start all")["enabled"]
        panel.click("Start all")
        wait_until(lambda: panel.has("memory: running"), timeout=20, what="the menu showing memory running")
        panel.click("Stop all")
        wait_until(lambda: api_status(home, manager_port)["targets"][0]["state"] == "stopped", what="Stop all stopped memory")
        panel.click("memory:", "Start")
        wait_until(lambda: panel.has("memory: running"), timeout=20, what="the menu showing memory running")

        panel.click("Start at login")
        desktop_file = home.home / ".config" / "autostart" / "MCP Session Manager.desktop"
        wait_until(desktop_file.exists, timeout=10, what="the autostart entry")
        assert str(MANAGER_BIN) in desktop_file.read_text()
        wait_until(lambda: panel.find("Start at login")["toggle_state"] == 1, timeout=10, what="the checkbox checked")

        # Configure Claude Code opens the dashboard's dialog with the diff: nothing is written blind.
        tray_log = home.root / "tray.stderr"
        served_before = tray_log.read_text().count("web UI: page served")
        panel.click("Configure Claude Code…")
        wait_until(lambda: tray_log.read_text().count("web UI: page served") > served_before, timeout=20, what="the dashboard (re)loaded through the token link")
        assert "web UI: page refused" not in tray_log.read_text()
        wait_until(lambda: "config generate requested client=ClaudeCode dry_run=true" in tray_log.read_text(), timeout=20, what="the dialog asking for the dry run")
        shot = tmp_path / "tray-configure-dialog.png"
        wait_until(lambda: distinct_colours(desktop.screenshot(shot)) > 50, timeout=15, what="the dashboard window showing the diff")
        assert not (home.home / ".claude.json").exists(), "the tray never writes Claude Code's config without the diff shown"

        panel.click("Quit")
        tray.wait(20)
    finally:
        code = stop_tray(tray)
    assert code == 0, (home.root / "tray.stderr").read_text()[-3000:]
    assert not (home.state / "manager.lock").exists(), "Quit stops the host cleanly"


def test_bad_config_keeps_the_tray_up_and_the_menu_says_why(home, desktop, panel):
    home.write_config("[manager]\nport = \"not a port\"\n")
    tray = start_tray(home, desktop)
    try:
        wait_until(lambda: tray.poll() is not None or panel.items_file.exists(), what="the tray item registering")
        assert tray.poll() is None, (home.root / "tray.stderr").read_text()[-3000:]
        wait_until(lambda: panel.has("Manager not reachable"), timeout=20, what="the error in the menu")
        status_line = panel.layout()["children"][0]["label"]
        assert "config.toml" in status_line, status_line
        assert not panel.find("Configure Claude Code…")["enabled"], "nothing to configure without a host"
        panel.click("Quit")
        tray.wait(20)
    finally:
        code = stop_tray(tray)
    assert code == 0


def test_without_a_session_bus_the_app_still_hosts_and_says_why(home, desktop, tmp_path):
    manager_port, _ = write_config(home)
    no_bus = Desktop(display=desktop.display, bus_address=f"unix:path={tmp_path / 'no-such-bus'}", procs=[])
    tray = start_tray(home, no_bus)
    try:
        wait_until(lambda: tray.poll() is not None or http_ok(f"http://127.0.0.1:{manager_port}/health"), what="manager /health")
        assert tray.poll() is None, (home.root / "tray.stderr").read_text()[-3000:]
        stderr = home.root / "tray.stderr"
        wait_until(lambda: "no D-Bus session bus" in stderr.read_text(), timeout=10, what="the no-bus warning")
    finally:
        assert stop_tray(tray) == 0, (home.root / "tray.stderr").read_text()[-3000:]


def test_a_proxy_session_survives_the_hand_over_to_the_tray_app(home, desktop, tmp_path):
    """DESIGN.md, "One host per user": the tray app takes over from a headless host that a
    proxy started, and the proxy's client never notices."""
    import anyio
    from mcp import Client

    from _proxy_util import proxy_params

    project = tmp_path / "project"
    project.mkdir()
    headless = start_host(home)
    tray = None

    async def go():
        nonlocal tray
        async with Client(proxy_params(home, "memory", project=project), mode="legacy") as client:
            first = await client.call_tool("create_entities", {"entities": [{"name": "before", "entityType": "t", "observations": []}]})
            assert not first.is_error
            tray = start_tray(home, desktop)
            headless.proc.wait(30)
            wait_until(lambda: api_status(home, headless.manager_port)["pid"] == tray.pid if http_ok(f"{headless.manager_url}/health") else False,
                       timeout=30, what="the tray app hosting")
            second = await client.call_tool("create_entities", {"entities": [{"name": "after", "entityType": "t", "observations": []}]})
            assert not second.is_error, second
            graph = await client.call_tool("read_graph", {})
            text = "".join(getattr(c, "text", "") for c in graph.content)
            assert '"before"' in text and '"after"' in text, text

    try:
        anyio.run(go)
        assert headless.proc.returncode == 0
    finally:
        if tray is not None:
            assert stop_tray(tray) == 0, (home.root / "tray.stderr").read_text()[-3000:]
        headless.stop()
