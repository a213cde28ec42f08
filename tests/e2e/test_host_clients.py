"""Third-party clients straight against the memory target's port (no proxy): Claude Code's own
health check (`claude mcp list`, an initialize/2025-11-25 client that never DELETEs) and the
TypeScript SDK's streamable HTTP transport."""

from __future__ import annotations

import json
import subprocess

from conftest import NODE_BIN, NODE_MODULES


def test_claude_code_connects_with_the_token_and_is_refused_without(host):
    (host.home.home / ".claude.json").write_text(json.dumps({"mcpServers": {
        "withtoken": {"type": "http", "url": host.url(), "headers": host.headers()},
        "notoken": {"type": "http", "url": host.url()},
    }}))
    result = subprocess.run([str(NODE_BIN / "claude"), "mcp", "list"], env=host.home.env, capture_output=True, text=True, timeout=60)
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines() if ":" in line}
    assert "Connected" in lines["withtoken"], result.stdout
    assert "Failed" in lines["notoken"], result.stdout
    status, body = host.api("GET", "/sessions")
    (session,) = body["sessions"]
    assert session["client_name"] == "claude-code"
    assert session["protocol_version"] == "2025-11-25"


TS_CLIENT = r"""
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");
(async () => {
  const [url, token] = process.argv.slice(1);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${token}`, "Mcp-Project-Path": "/tmp" } },
  });
  const client = new Client({ name: "ts-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  const tools = await client.listTools();
  const sessionId = transport.sessionId;
  await transport.terminateSession();
  await client.close();
  console.log(JSON.stringify({ tools: tools.tools.length, sessionId }));
})().catch((e) => { console.error(e); process.exit(1); });
"""


def test_typescript_sdk_session_round_trip(host):
    result = subprocess.run(["node", "-e", TS_CLIENT, host.url(), host.home.token], env=host.home.env | {"NODE_PATH": str(NODE_MODULES)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["sessionId"], answer
    status, body = host.api("GET", "/sessions")
    assert body["sessions"] == [], "terminateSession (DELETE) removed it"
