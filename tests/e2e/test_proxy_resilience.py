"""The proxy's promises under stress: SIGINT ignored, a clean end on SIGTERM or stdin EOF with
every pending request answered, re-attach after the daemon is killed, one daemon for many
proxies started at once. Real processes throughout."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from conftest import wait_until
from _proxy_util import RawProxy, daemon_pids, start_fastmcp_sse, stop_daemons, url_target, write_config


def _slow_calls(proxy: RawProxy, ids, seconds: float = 0.5) -> None:
    for i in ids:
        proxy.request(i, "tools/call", {"name": "slow_echo", "arguments": {"message": str(i), "seconds": seconds}})


def _assert_echoes(answers: dict, ids) -> None:
    for i in ids:
        assert answers[i]["result"]["content"][0]["text"] == f"Echo: {i}", answers[i]


def test_sigint_storm_changes_nothing(home):
    server = start_fastmcp_sse(home)
    try:
        write_config(home, url_target("fast", server.url, "sse"))
        proxy = RawProxy(home, "fast")
        try:
            proxy.initialize()
            ids = list(range(1, 21))
            _slow_calls(proxy, ids, seconds=0.8)
            for _ in range(100):
                proxy.signal(signal.SIGINT)
                time.sleep(0.003)
            answers = proxy.read_answers(ids)
            _assert_echoes(answers, ids)
            assert proxy.proc.poll() is None, "SIGINT must not end the proxy"
            proxy.request(99, "ping")
            assert proxy.read_answers([99])[99]["result"] == {}
        finally:
            proxy.kill()
    finally:
        server.stop()


def test_sigint_then_sigterm_answers_then_exits_zero(home):
    server = start_fastmcp_sse(home)
    try:
        write_config(home, url_target("fast", server.url, "sse"))
        proxy = RawProxy(home, "fast")
        proxy.initialize()
        ids = list(range(1, 11))
        _slow_calls(proxy, ids, seconds=0.6)
        time.sleep(0.1)
        proxy.signal(signal.SIGINT)
        time.sleep(0.1)
        proxy.signal(signal.SIGTERM)
        time.sleep(0.1)
        # Nothing new is sent once leaving, and the refusal says so.
        proxy.request(50, "tools/call", {"name": "echo", "arguments": {"message": "too late"}})
        answers = proxy.read_answers([*ids, 50])
        _assert_echoes(answers, ids)
        assert "shutting down" in answers[50]["error"]["message"], answers[50]
        assert proxy.wait() == 0, proxy.stderr()
    finally:
        server.stop()


def test_sigterm_leaves_our_daemon_running_and_a_new_proxy_attaches(home):
    write_config(home, "")
    try:
        first = RawProxy(home, "memory")
        first.initialize()
        first.request(1, "tools/list")
        assert "result" in first.read_answers([1])[1]
        (daemon,) = daemon_pids(home)
        for i in range(2, 30):
            first.request(i, "ping")
        first.signal(signal.SIGINT)
        time.sleep(0.1)
        first.signal(signal.SIGTERM)
        answers = first.read_answers(range(2, 30))
        assert all("result" in a for a in answers.values()), answers
        assert first.wait() == 0, first.stderr()
        time.sleep(0.3)
        assert daemon_pids(home) == [daemon], "the daemon must outlive the proxy"

        started = time.monotonic()
        second = RawProxy(home, "memory")
        second.initialize()
        second.request(1, "tools/list")
        assert "result" in second.read_answers([1])[1]
        assert time.monotonic() - started < 5
        assert daemon_pids(home) == [daemon], "the new proxy attaches to the same daemon"
        second.close_stdin()
        assert second.wait() == 0
    finally:
        stop_daemons(home)


def test_stdin_closed_with_requests_pending_answers_them_all(home):
    server = start_fastmcp_sse(home)
    try:
        write_config(home, url_target("fast", server.url, "sse"))
        proxy = RawProxy(home, "fast")
        proxy.initialize()
        ids = list(range(1, 16))
        _slow_calls(proxy, ids, seconds=0.5)
        proxy.close_stdin()
        answers = proxy.read_answers(ids)
        _assert_echoes(answers, ids)
        assert proxy.read(5) is None, "stdout closes after the last answer"
        assert proxy.wait() == 0, proxy.stderr()
    finally:
        server.stop()


def test_kill_9_of_the_daemon_mid_stream_restarts_it(home):
    write_config(home, "")
    try:
        proxy = RawProxy(home, "memory", extra_env={"RUST_LOG": "debug"})
        proxy.initialize()
        proxy.request(1, "tools/list")
        assert "result" in proxy.read_answers([1])[1]
        (daemon,) = daemon_pids(home)
        # Requests in flight while the daemon dies: each gets an answer, result or error.
        for i in range(2, 40):
            proxy.request(i, "ping")
        os.kill(daemon, signal.SIGKILL)
        answers = proxy.read_answers(range(2, 40))
        for answer in answers.values():
            assert "result" in answer or answer["error"]["message"], answer
        # The next requests succeed, on a fresh daemon, through the replayed session.
        for i in range(100, 105):
            proxy.request(i, "tools/list")
        later = proxy.read_answers(range(100, 105), timeout=30)
        assert all("result" in a for a in later.values()), later
        new = wait_until(lambda: daemon_pids(home), what="a restarted daemon")
        assert len(new) == 1 and new[0] != daemon
        assert proxy.proc.poll() is None
        proxy.close_stdin()
        assert proxy.wait() == 0
    finally:
        stop_daemons(home)


def test_twenty_proxies_at_once_start_exactly_one_daemon(home):
    write_config(home, "")
    proxies = []
    try:
        assert daemon_pids(home) == []
        proxies = [RawProxy(home, "memory") for _ in range(20)]
        for proxy in proxies:
            proxy.request("init", "initialize", {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "many", "version": "1"}})
        for proxy in proxies:
            assert "result" in proxy.read_answers(["init"], timeout=60)["init"], proxy.stderr()
            proxy.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            proxy.request(1, "tools/list")
        for proxy in proxies:
            assert "result" in proxy.read_answers([1])[1]
        assert len(daemon_pids(home)) == 1
        for proxy in proxies:
            proxy.close_stdin()
        for proxy in proxies:
            assert proxy.wait() == 0
    finally:
        for proxy in proxies:
            proxy.kill()
        stop_daemons(home)


def test_request_timeout_answers_and_progress_extends_it(home):
    server = start_fastmcp_sse(home)
    try:
        write_config(home, url_target("fast", server.url, "sse"), proxy="[proxy]\nrequest_timeout_secs = 2\n")
        proxy = RawProxy(home, "fast")
        try:
            proxy.initialize()
            started = time.monotonic()
            # Silent for 4 s: timed out after 2 s with an error naming the setting.
            proxy.request(1, "tools/call", {"name": "slow_echo", "arguments": {"message": "late", "seconds": 4}})
            # 4 s in all, but progress every 0.4 s keeps it alive (a 5x margin for a loaded machine).
            proxy.request(2, "tools/call", {"name": "progress", "arguments": {"steps": 10, "interval": 0.4},
                                            "_meta": {"progressToken": "tok"}})
            answers = proxy.read_answers([1, 2], timeout=20)
            assert answers[1]["error"]["code"] == -31003, answers[1]
            assert "request_timeout_secs" in answers[1]["error"]["message"]
            assert "result" in answers[2], answers[2]
            assert answers[2]["result"]["content"][0]["text"] == "done 10", answers[2]
            assert time.monotonic() - started >= 4
            # The late answer to request 1 is dropped, not sent after its error.
            proxy.request(3, "ping")
            later = proxy.read_answers([3], timeout=10)
            assert "result" in later[3]
            proxy.close_stdin()
            while (message := proxy.read(10)) is not None:
                assert message.get("id") != 1, f"a second answer to request 1: {message}"
            assert proxy.wait() == 0
        finally:
            proxy.kill()
    finally:
        server.stop()


def test_legacy_sse_server_restart_is_invisible_to_the_client(home):
    server = start_fastmcp_sse(home)
    port = server.port
    try:
        write_config(home, url_target("fast", server.url, "sse"))
        proxy = RawProxy(home, "fast")
        try:
            proxy.initialize()
            proxy.request(1, "tools/call", {"name": "echo", "arguments": {"message": "before"}})
            assert proxy.read_answers([1])[1]["result"]["content"][0]["text"] == "Echo: before"
            # In flight when the server goes: answered with an error, not left hanging.
            proxy.request(2, "tools/call", {"name": "slow_echo", "arguments": {"message": "x", "seconds": 5}})
            time.sleep(0.3)
            server.proc.kill()
            server.proc.wait()
            lost = proxy.read_answers([2])[2]
            assert lost["error"]["code"] == -31002 and "may have reached" in lost["error"]["message"], lost
            # Down: a clear error naming the target, and the pipe stays open.
            proxy.request(3, "tools/call", {"name": "echo", "arguments": {"message": "while down"}})
            down = proxy.read_answers([3])[3]
            assert "fast" in down["error"]["message"], down
            assert proxy.proc.poll() is None
            # Back on the same port: the proxy replays initialize on a new SSE session.
            server = start_fastmcp_sse(home, port)
            proxy.request(4, "tools/call", {"name": "echo", "arguments": {"message": "after"}})
            assert proxy.read_answers([4])[4]["result"]["content"][0]["text"] == "Echo: after"
            proxy.close_stdin()
            assert proxy.wait() == 0
        finally:
            proxy.kill()
    finally:
        server.stop()


def test_dropped_sse_answers_are_resumed_with_last_event_id(home):
    import sys
    from pathlib import Path

    from conftest import free_port
    from _proxy_util import port_open

    port = free_port()
    script = Path(__file__).parent / "servers" / "resumable_sse_server.py"
    server = subprocess.Popen([sys.executable, str(script), str(port)], stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_open(port), what="resumable server")
        write_config(home, url_target("resumable", f"http://127.0.0.1:{port}/mcp"))
        proxy = RawProxy(home, "resumable")
        try:
            answer = proxy.initialize()
            assert answer["result"]["resumedFrom"].startswith("e"), answer
            for i in range(1, 6):
                proxy.request(i, "tools/list")
            answers = proxy.read_answers(range(1, 6))
            assert all(a["result"]["resumedFrom"].startswith("e") for a in answers.values()), answers
            proxy.close_stdin()
            assert proxy.wait() == 0
        finally:
            proxy.kill()
    finally:
        server.terminate()
        server.wait()
