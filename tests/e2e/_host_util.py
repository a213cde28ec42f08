"""Helpers of the host tests (test_host_*.py, test_security.py, test_manager_api.py)."""

from __future__ import annotations

import http.client
import json
import socket

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def mcp_client(url: str, headers: dict, mode: str) -> Client:
    """An official-SDK client of `url` sending `headers` (token, project path, ...)."""
    transport = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    return Client(transport, mode=mode)


def raw_request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    """One HTTP/1.1 request with exactly these headers (none added but Host unless given);
    returns (status, headers dict, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest(method, path, skip_host="Host" in (headers or {}) or "host" in (headers or {}), skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def raw_bytes_request(port: int, raw: bytes) -> bytes:
    """Sends raw bytes (hostile headers) and returns whatever comes back (maybe nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(raw)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return b"".join(chunks)


def jsonrpc(method: str, params: dict | None = None, id: int | None = 1) -> bytes:
    message = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    return json.dumps(message).encode()
