"""A plain JSON-RPC-over-POST server (no SSE, no sessions) that answers every request with the
HTTP headers it received, so that the proxy's tests can check what the proxy sends.

Usage: python plain_json_server.py PORT [INITIALIZE_DELAY_SECONDS]
(a slow initialize; every answer then carries `answered_before`, how many answers went before it)
"""

import itertools
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        message = json.loads(body)
        if "id" not in message or "method" not in message:
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if message["method"] == "initialize":
            time.sleep(INITIALIZE_DELAY)
        with ANSWERED_LOCK:
            answered_before = next(ANSWERED)
        answer = {
            "jsonrpc": "2.0",
            "id": message["id"],
            "result": {"headers": {k.lower(): v for k, v in self.headers.items()}, "method": message["method"],
                       "answered_before": answered_before},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


INITIALIZE_DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
ANSWERED = itertools.count()
ANSWERED_LOCK = threading.Lock()

if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
