"""A real functions-framework server (`python -m core serve`) on a free loopback port, with an API key."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

API_KEY = "sk-tinyllm-live-test"
START_TIMEOUT_S = 60


@dataclass
class LiveServer:
    host: str
    port: int
    process: subprocess.Popen
    api_key: str = API_KEY

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                auth: bool = True):
        """Raw HTTP: (status, lower-case headers, body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            all_headers = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
            conn.request(method, path, body=body, headers={**all_headers, **(headers or {})})
            reply = conn.getresponse()
            return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
        finally:
            conn.close()

    def post_json(self, path: str, obj, **kwargs):
        return self.request("POST", path, json.dumps(obj).encode(), {"Content-Type": "application/json"}, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(model_dir, tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("live") / "server.log", "w+")
    env = {**os.environ, "TINYLLM_API_KEY_SHA256": hashlib.sha256(API_KEY.encode()).hexdigest()}
    process = subprocess.Popen([sys.executable, "-m", "core", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    server = LiveServer("127.0.0.1", port, process)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"server exited with {process.returncode}:\n{log.read()}")
            try:
                if server.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server did not answer /healthz within {START_TIMEOUT_S} s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
