"""A remote https MCP server adopted as a `url` target with a `port`: the host fronts it (rustls,
the platform's roots plus the target's `ca_file`), every window's proxy reaches it over loopback
HTTP, the remote gets the headers config.toml gives it (kept in secrets.toml) and never our
token or the session's project path. A TLS server whose CA is not trusted is refused with an
error that says so."""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import anyio
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from _proxy_util import proxy_params, tool_text
from conftest import FASTMCP_PYTHON, Home, free_port, start_host, wait_until

SERVER = Path(__file__).parent / "servers" / "tls_http_server.py"


def make_ca_and_server_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for localhost and 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "msm test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_server(home: Home):
    ca, cert, key = make_ca_and_server_cert(home.root)
    port = free_port()
    log = open(home.root / "tls-server.log", "ab")
    proc = subprocess.Popen([str(FASTMCP_PYTHON), str(SERVER), str(port), str(cert), str(key)],
                            stdout=log, stderr=log, start_new_session=True)

    def listening() -> bool:
        import socket
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(lambda: proc.poll() is not None or listening(), what="the TLS server")
        assert proc.poll() is None, (home.root / "tls-server.log").read_text()
        yield port, ca
    finally:
        proc.terminate()
        proc.wait(10)


async def call_through_proxy(home: Home, target: str, project: Path):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with stdio_client(proxy_params(home, target, project=project)) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            names = {t.name for t in (await s.list_tools()).tools}
            echo = tool_text(await s.call_tool("echo", {"message": "over tls"}))
            seen = json.loads(tool_text(await s.call_tool("headers", {})))
            return names, echo, seen


def test_an_https_remote_is_fronted_by_the_host_with_the_configured_ca_and_headers(home: Home, tls_server):
    remote_port, ca = tls_server
    (home.state / "secrets.toml").write_text('[targets.team.headers]\nAuthorization = "Bearer remote-secret"\n')
    host = start_host(
        home,
        f'[targets.team]\nurl = "https://localhost:{remote_port}/mcp"\nport = {{port:team}}\n'
        f'ca_file = "{ca}"\n\n'
        f'[targets.untrusted]\nurl = "https://127.0.0.1:{remote_port}/mcp"\nport = {{port:untrusted}}\n',
        wait_for=("memory", "team", "untrusted"),
    )
    try:
        code, body = host.api("GET", "/status")
        assert code == 200, body
        team = next(t for t in body["targets"] if t["name"] == "team")
        assert team["state"] == "running" and team["guarded"] is True, team
        assert team["url"] == f"http://127.0.0.1:{host.ports['team']}/mcp"

        project = home.root / "projA"
        project.mkdir()
        names, echo, seen = anyio.run(call_through_proxy, home, "team", project)
        assert {"echo", "headers"} <= names
        assert echo == "Echo: over tls"
        seen = {k.lower(): v for k, v in seen.items()}
        assert seen.get("authorization") == "Bearer remote-secret", seen
        assert home.token not in json.dumps(seen), "our token never leaves the machine"
        assert "mcp-project-path" not in seen and str(project) not in json.dumps(seen), seen

        # Without the CA, TLS refuses the server, and the answer says why.
        request = urllib.request.Request(
            f"http://127.0.0.1:{host.ports['untrusted']}/mcp",
            data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
            headers={"Authorization": f"Bearer {home.token}", "Content-Type": "application/json",
                     "Accept": "application/json, text/event-stream"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 502
        text = refused.value.read().decode()
        assert "certificate" in text.lower() and "UnknownIssuer" in text, text
    finally:
        host.stop()
    logs = "".join(p.read_text(errors="replace") for p in home.state.rglob("*.log"))
    assert "remote-secret" not in logs
