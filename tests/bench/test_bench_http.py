"""The HTTP load generator counts what happened: every request once, failures as errors, with the API key."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.http import HOST, Settings, generate_load, peak_rss_kb, process_tree

API_KEY = "bench-test-key"


class FakeCompletions(BaseHTTPRequestHandler):
    """Answers like core's /v1/completions, but every fifth request fails with 500; a wrong key gets 401."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the load generator expects
    counter = itertools.count(1)
    seen_bodies: ClassVar[list[dict]] = []  # shared: the server makes one handler per request

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen_bodies.append(body)
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            status, answer = 401, {"error": {"message": "unauthorized"}}
        elif next(self.counter) % 5 == 0:
            status, answer = 500, {"error": {"message": "boom"}}
        else:
            status, answer = 200, {"choices": [{"text": "x"}], "usage": {"completion_tokens": body["max_tokens"]}}
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    FakeCompletions.counter = itertools.count(1)
    FakeCompletions.seen_bodies = []
    server = ThreadingHTTPServer((HOST, 0), FakeCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_every_request_is_counted_once_and_failures_are_errors(fake_server):
    settings = Settings(requests=100, clients=4)
    result = generate_load(fake_server, settings, API_KEY)
    # 4 untimed warm-up requests come first, so the 500s fall on requests 5, 10, … of all 104.
    assert len(result.errors) == 104 // 5
    assert len(result.latencies) + len(result.errors) == settings.requests
    assert all("HTTP 500" in error for error in result.errors)
    assert set(result.completion_tokens) == {16}
    assert result.seconds > 0
    assert {b["max_tokens"] for b in FakeCompletions.seen_bodies} == {16}
    assert {b["temperature"] for b in FakeCompletions.seen_bodies} == {0}


def test_a_wrong_key_makes_every_request_an_error(fake_server):
    result = generate_load(fake_server, Settings(requests=10, clients=2), "not-the-key")
    assert result.latencies == [] and len(result.errors) == 10
    assert all("HTTP 401" in error for error in result.errors)


def test_server_rss_counts_forked_children():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in process_tree(os.getpid())
        with open(f"/proc/{child.pid}/status") as f:
            child_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        with open(f"/proc/{os.getpid()}/status") as f:
            own_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        assert peak_rss_kb(os.getpid()) >= own_kb + child_kb
    finally:
        child.communicate(b"")
