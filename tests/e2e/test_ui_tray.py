"""The tray app (`mcp-session-manager` with no arguments) under a virtual display (Xvfb) and
its own D-Bus session bus: it hosts the daemons, answers the manager API, shows the dashboard
window when no tray area exists, takes over from a headless host, lets a second instance
focus the first, and stops cleanly on SIGTERM."""

from __future__ import annotations

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
    import json
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
        # The window shows the manager's own page; it loads it with the token and goes live.
        time.sleep(3)
        shot = desktop.screenshot(tmp_path / "tray-desktop.png")
        assert distinct_colours(shot) > 50, "the dashboard window rendered (not a blank screen)"
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
