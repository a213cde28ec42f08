"""The host process: one per user, clean stops, stale locks, ports held by others, hot reload."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import MANAGER_BIN, free_port, http_ok, start_host, wait_until


def run_daemon(home, *args, timeout=30):
    return subprocess.run([str(MANAGER_BIN), "daemon", *args], env=home.env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_removes_locks(home, sig):
    host = start_host(home)
    lock = json.loads((home.state / "manager.lock").read_text())
    assert lock["pid"] == host.proc.pid and lock["port"] == host.manager_port
    assert json.loads((home.state / "memory.lock").read_text())["port"] == host.ports["memory"]
    host.proc.send_signal(sig)
    assert host.proc.wait(15) == 0
    assert not (home.state / "manager.lock").exists()
    assert not (home.state / "memory.lock").exists()
    assert not http_ok(f"{host.manager_url}/health")


def test_second_host_says_so_and_exits_0(home):
    host = start_host(home)
    try:
        result = run_daemon(home, "--only", "memory")
        assert result.returncode == 0
        assert "already running" in result.stderr and str(host.proc.pid) in result.stderr
        assert host.proc.poll() is None, "the first host is untouched"
        assert http_ok(f"{host.manager_url}/health")
    finally:
        assert host.stop() == 0


def test_stale_locks_of_a_killed_host_are_taken_over(home):
    first = start_host(home)
    os.killpg(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)
    assert (home.state / "manager.lock").exists(), "a killed host leaves its lock files"
    # Same ports again: the new host must take over the stale files and the ports.
    proc = subprocess.Popen([str(MANAGER_BIN), "daemon"], env=home.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_until(lambda: proc.poll() is not None or http_ok(f"http://127.0.0.1:{first.ports['memory']}/health"), what="memory on the new host")
        assert proc.poll() is None
        assert json.loads((home.state / "manager.lock").read_text())["pid"] == proc.pid
        assert json.loads((home.state / "memory.lock").read_text())["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_manager_port_held_by_a_foreign_process_is_a_clear_error(home):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        home.write_config(f"[manager]\nport = {port}\n[targets.memory]\nbuiltin = \"memory\"\nport = {free_port()}\n")
        result = run_daemon(home)
    assert result.returncode == 1
    assert f"port {port}" in result.stderr and "in use" in result.stderr
    assert not (home.state / "manager.lock").exists()


def test_target_port_held_by_a_foreign_process_fails_that_target_only(home):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        host = start_host(home, f"[targets.second]\nbuiltin = \"memory\"\nport = {port}\n")
        try:
            def second():
                _, body = host.api("GET", "/status")
                (t,) = [t for t in body["targets"] if t["name"] == "second"]
                return t if t["state"] == "failed" else None

            failed = wait_until(second, what="second failed")
            assert f"port {port}" in failed["last_error"] and "in use" in failed["last_error"]
            assert http_ok(f"http://127.0.0.1:{host.ports['memory']}/health"), "memory is unaffected"
            status, body = host.api("POST", "/daemons/second/ensure")
            assert status == 503 and f"port {port}" in body["error"]
        finally:
            assert host.stop() == 0


def test_only_limits_what_starts_eagerly(home):
    host = start_host(home, "[targets.lazy]\nbuiltin = \"memory\"\nport = {port:lazy}\n", args=("--only", "memory"))
    try:
        assert not http_ok(f"http://127.0.0.1:{host.ports['lazy']}/health")
        status, body = host.api("POST", "/daemons/lazy/ensure")
        assert status == 200 and body["state"] == "running"
        assert http_ok(f"http://127.0.0.1:{host.ports['lazy']}/health")
    finally:
        assert host.stop() == 0


def test_editing_config_hot_reloads_only_what_changed(home):
    host = start_host(home)
    try:
        _, before = host.api("GET", "/status")
        memory_started = before["targets"][0]["started_at"]
        extra = free_port()
        config = home.state / "config.toml"
        config.write_text(config.read_text() + f"\n[targets.extra]\nbuiltin = \"memory\"\nport = {extra}\n")
        wait_until(lambda: http_ok(f"http://127.0.0.1:{extra}/health"), timeout=10, what="extra started by the watcher")
        _, after = host.api("GET", "/status")
        (memory,) = [t for t in after["targets"] if t["name"] == "memory"]
        assert memory["started_at"] == memory_started, "memory was left alone"
        config.write_text("this is [not toml\n")
        time.sleep(1)
        assert http_ok(f"http://127.0.0.1:{extra}/health"), "a bad file changes nothing"
        status, body = host.api("POST", "/config/reload")
        assert status == 400 and "config.toml" in body["error"]
    finally:
        assert host.stop() == 0


def test_bad_config_is_refused_naming_file_and_line(home):
    home.write_config("[manager]\nport = 1\n[targets.memory]\nbuiltin = 7\n")
    result = run_daemon(home)
    assert result.returncode == 1
    assert "config.toml:4" in result.stderr
