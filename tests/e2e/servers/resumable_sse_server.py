"""A streamable HTTP server whose every SSE answer drops after its first event, so that the
client must resume with `Last-Event-ID` (GET) to get the answer. For the proxy's tests.

Usage: python resumable_sse_server.py PORT
A GET without `Last-Event-ID` (the standalone stream) gets 405. Answers carry
`result.resumedFrom`, the Last-Event-ID the resume came with.
"""

import itertools
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

counter = itertools.count(1)
lock = threading.Lock()
pending: dict[str, object] = {}  # event id -> request id


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _stream(self, events: list[tuple[str, str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Mcp-Session-Id", "resumable-session")
        self.send_header("Connection", "close")
        self.end_headers()
        for event_id, data in events:
            self.wfile.write(f"id: {event_id}\ndata: {data}\n\n".encode())
        self.wfile.flush()
        self.close_connection = True

    def do_POST(self):
        message = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if "id" not in message or "method" not in message:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        with lock:
            event_id = f"e{next(counter)}"
            pending[event_id] = message["id"]
        # A priming event with an id and no message, then the stream drops.
        self._stream([(event_id, "")])

    def do_GET(self):
        last = self.headers.get("Last-Event-ID")
        with lock:
            request_id = pending.pop(last, None) if last else None
        if request_id is None:
            self.send_response(405)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = {"jsonrpc": "2.0", "id": request_id, "result": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "resumable", "version": "1"},
            "resumedFrom": last}}
        self._stream([(f"{last}-done", json.dumps(answer))])

    def do_DELETE(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
