"""Every port of the host (the memory target's and the manager's) answers loopback only:
a foreign Origin or Host is 403, a missing or wrong token is 401, /health is open, and hostile
headers never crash anything."""

from __future__ import annotations

import pytest

from _host_util import jsonrpc, raw_bytes_request, raw_request

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def ports_and_paths(host):
    return [(host.ports["memory"], "/mcp", "POST"), (host.manager_port, "/status", "GET")]


def test_health_is_open_and_says_only_alive(host):
    for port in (host.ports["memory"], host.manager_port):
        status, _, body = raw_request(port, "GET", "/health")
        assert status == 200
        assert b"token" not in body and b"version" not in body


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer wrong", "Basic abc", "Bearer ", "bearer"],
)
def test_missing_or_wrong_token_is_401(host, auth):
    for port, path, method in ports_and_paths(host):
        headers = dict(MCP_HEADERS)
        if auth is not None:
            headers["Authorization"] = auth
        body = jsonrpc("tools/list") if method == "POST" else None
        status, response_headers, _ = raw_request(port, method, path, headers, body)
        assert status == 401, (port, path, auth)
        assert response_headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "https://attacker.test:3199", "null", "http://localhost.evil.example", "file://"],
)
def test_foreign_origin_is_403_even_with_the_token(host, origin):
    for port, path, method in ports_and_paths(host):
        headers = host.headers() | MCP_HEADERS | {"Origin": origin}
        status, _, _ = raw_request(port, method, path, headers, jsonrpc("tools/list") if method == "POST" else None)
        assert status == 403, (port, path, origin)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:5173", "http://localhost", "http://[::1]:8080"])
def test_loopback_origin_is_allowed(host, origin):
    status, _, _ = raw_request(host.manager_port, "GET", "/status", host.headers() | {"Origin": origin})
    assert status == 200


def test_dns_rebinding_host_is_403(host):
    for port, path, method in ports_and_paths(host):
        headers = host.headers() | MCP_HEADERS | {"Host": f"evil.example:{port}"}
        status, _, _ = raw_request(port, method, path, headers, jsonrpc("tools/list") if method == "POST" else None)
        assert status == 403


def test_web_ui_page_is_401_without_the_token_and_names_no_token(host):
    for path in ("/", "/index.html", "/?token=wrong", "/?token=", "/?other=1"):
        status, headers, body = raw_request(host.manager_port, "GET", path)
        assert status == 401, path
        assert "set-cookie" not in headers, path
        assert host.home.token.encode() not in body, path
        assert b"Open dashboard" in body and b"mcp-session-manager status" in body, body
    status, _, body = raw_request(host.manager_port, "GET", "/", {"Cookie": "msm_token=" + "0" * 64})
    assert status == 401 and host.home.token.encode() not in body


def test_web_ui_token_link_sets_a_cookie_that_gets_the_page(host):
    token = host.home.token
    status, headers, body = raw_request(host.manager_port, "GET", f"/?token={token}")
    assert status == 303
    assert headers["location"] == "/"
    assert headers["set-cookie"] == f"msm_token={token}; HttpOnly; SameSite=Strict; Path=/"
    assert token.encode() not in body
    status, headers, body = raw_request(host.manager_port, "GET", "/", {"Cookie": f"msm_token={token}"})
    assert status == 200 and headers["cache-control"] == "no-store"
    assert b"<html" in body and token.encode() not in body and b"msm-token" not in body, "the page holds no token"
    for path in ("/app.js", "/style.css"):
        status, _, body = raw_request(host.manager_port, "GET", path)
        assert status == 200 and token.encode() not in body, path


def test_the_cookie_alone_reads_the_api_and_changes_state_only_from_the_dashboards_origin(host):
    cookie = {"Cookie": f"msm_token={host.home.token}"}
    own = f"http://127.0.0.1:{host.manager_port}"
    status, _, _ = raw_request(host.manager_port, "GET", "/status", cookie)
    assert status == 200, "the page reads the API with its cookie"
    for extra, expected in [
        ({}, 403),  # no Origin: a cross-site form or a stripped header
        ({"Origin": "http://127.0.0.1:1"}, 403),  # another local port is another origin
        ({"Origin": "http://evil.example"}, 403),
        ({"Origin": own, "Sec-Fetch-Site": "cross-site"}, 403),
        ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, 200),
    ]:
        headers = cookie | {"Host": f"127.0.0.1:{host.manager_port}"} | extra
        status, _, _ = raw_request(host.manager_port, "POST", "/config/reload", headers)
        assert status == expected, extra
    # Target ports never take the cookie (cookies are not scoped by port).
    status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", cookie | MCP_HEADERS, jsonrpc("tools/list"))
    assert status == 401


@pytest.mark.parametrize("foreign", [{"Origin": "http://evil.example"}, {"Host": "evil.example"}], ids=["origin", "host"])
def test_web_ui_never_goes_to_a_foreign_origin_even_with_the_cookie(host, foreign):
    token = host.home.token
    status, _, body = raw_request(host.manager_port, "GET", "/", {"Cookie": f"msm_token={token}"} | foreign)
    assert status == 403 and token.encode() not in body
    status, headers, body = raw_request(host.manager_port, "GET", f"/?token={token}", foreign)
    assert status == 403 and "set-cookie" not in headers and token.encode() not in body


@pytest.mark.parametrize(
    "project",
    ["relative/dir", "/tmp/../etc", "/nonexistent/dir", "..", "/a/b/../../..", "x" * 20000, "/tmp/\u00e9t\u00e9"],
    ids=["relative", "dotdot", "missing", "bare-dotdot", "deep-dotdot", "huge", "latin1"],
)
def test_project_path_tricks_never_crash(host, project):
    headers = host.headers() | MCP_HEADERS | {"Mcp-Project-Path": project.encode("utf-8").decode("latin-1")}
    init = jsonrpc("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}})
    status, _, _ = raw_request(host.ports["memory"], "POST", "/mcp", headers, init)
    assert status in (200, 400, 431), status
    status, _, _ = raw_request(host.ports["memory"], "GET", "/health")
    assert status == 200
    status, body = host.api("GET", "/sessions")
    assert status == 200
    for session in body["sessions"]:
        assert session["project_path"] in (None, "/nonexistent/dir"), "only plain absolute paths are kept"


@pytest.mark.parametrize(
    "raw_header",
    [
        b"Mcp-Project-Path: /tmp/a\x00b\r\n",
        b"Mcp-Project-Path: \xff\xfe\xfd\r\n",
        b"Origin: \xff\r\n",
        b"Authorization: Bearer \xff\xff\r\n",
        b"Mcp-Session-Id: \xff\r\n",
        b"X-Huge: " + b"a" * 200_000 + b"\r\n",
        b"Mcp-Project-Path: " + b"/x" * 40_000 + b"\r\n",
    ],
    ids=["nul-path", "non-utf8-path", "non-utf8-origin", "non-utf8-token", "non-utf8-session", "huge-header", "huge-path"],
)
def test_hostile_headers_never_crash(host, raw_header):
    token = host.home.token.encode()
    body = jsonrpc("tools/list")
    request = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token + b"\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\n"
        + raw_header
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    raw_bytes_request(host.ports["memory"], request)
    raw_bytes_request(host.manager_port, request.replace(b"POST /mcp", b"POST /shutdown").replace(b"Authorization: Bearer " + token, b"Authorization: Bearer nope"))
    assert host.proc.poll() is None, "host still running"
    status, _, _ = raw_request(host.ports["memory"], "GET", "/health")
    assert status == 200
    status, _ = host.api("GET", "/status")
    assert status == 200
