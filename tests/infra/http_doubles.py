"""A local HTTP double for a cloud REST API: a real HTTP server on 127.0.0.1 answering the documented responses.

`serve(routes)` runs a ThreadingHTTPServer on an ephemeral loopback port; `routes(method, path, query, headers,
body)` returns (status, JSON-able body). Every request is recorded in `double.requests` so tests can assert what
the client sent (auth headers, parameters).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Route = Callable[[str, str, dict, dict, bytes], tuple[int, object]]


@dataclass
class Double:
    url: str
    requests: list[tuple[str, str, dict, dict]] = field(default_factory=list)


@contextmanager
def serve(routes: Route) -> Iterator[Double]:
    double = Double(url="")

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {key.lower(): value for key, value in self.headers.items()}
            double.requests.append((self.command, parts.path, query, headers))
            status, payload = routes(self.command, parts.path, query, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
