"""Helpers of the memory tests (test_memory_*.py): the reference memory server over stdio, and
tool results and resource answers of either server as plain dicts that compare equal when the
answers are the same."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from mcp.shared.exceptions import MCPError

from conftest import NODE_MODULES

REFERENCE_JS = NODE_MODULES / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"


class ReferenceServer:
    """`@modelcontextprotocol/server-memory` on stdio, spoken to in raw JSON-RPC (one line per
    message), with its JSONL file at `memory_file` (absolute)."""

    def __init__(self, memory_file: Path, env: dict | None = None):
        self.proc = subprocess.Popen(
            ["node", str(REFERENCE_JS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=(env or dict(os.environ)) | {"MEMORY_FILE_PATH": str(memory_file)},
            text=True,
            encoding="utf-8",
        )
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "parity", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict | None = None) -> dict:
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the reference memory server exited")
            answer = json.loads(line)
            if answer.get("id") == self.next_id:
                return answer

    def call(self, tool: str, arguments: dict) -> dict:
        answer = self.request("tools/call", {"name": tool, "arguments": arguments})
        return normalise(answer["result"])

    def step(self, name: str, arguments: dict) -> dict:
        """One step of a compared sequence: a tool call, or `resources/list` / `resources/read`
        (see `sdk_step`)."""
        if name == "resources/list":
            return {"resources": self.request(name)["result"]["resources"]}
        if name == "resources/read":
            answer = self.request(name, arguments)
            if "error" in answer:
                return {"error": {"code": answer["error"]["code"], "message": answer["error"]["message"]}}
            return {"contents": answer["result"]["contents"]}
        return self.call(name, arguments)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def normalise(result: dict) -> dict:
    """The parts of a tools/call result both servers must agree on."""
    return {
        "content": [{"type": c["type"], "text": c.get("text")} for c in result.get("content", [])],
        "structuredContent": result.get("structuredContent"),
        "isError": bool(result.get("isError", False)),
    }


def sdk_result(result) -> dict:
    """An official-SDK `CallToolResult` as `normalise` shapes a raw one."""
    return normalise(result.model_dump(by_alias=True, mode="json", exclude_none=True))


async def sdk_step(client, name: str, arguments: dict) -> dict:
    """`ReferenceServer.step` through an official-SDK client."""
    if name == "resources/list":
        listed = await client.list_resources()
        return {"resources": [r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in listed.resources]}
    if name == "resources/read":
        try:
            read = await client.read_resource(arguments["uri"])
        except MCPError as error:
            return {"error": {"code": error.code, "message": error.message}}
        return {"contents": [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in read.contents]}
    return sdk_result(await client.call_tool(name, arguments))
