"""A real functions-framework server (`python -m functions.devtools serve`) on a free loopback port, with an API key."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
from dataclasses import dataclass

import pytest

from functions.devtools.local import background_server

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

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None, auth: bool = True
    ):
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


@pytest.fixture(scope="session")
def live_server(model_dir, tmp_path_factory):
    env = {**os.environ, "TINYLLM_API_KEY_SHA256": hashlib.sha256(API_KEY.encode()).hexdigest()}
    log = tmp_path_factory.mktemp("live") / "server.log"
    with background_server(env, log, "127.0.0.1", START_TIMEOUT_S) as (process, port):
        yield LiveServer("127.0.0.1", port, process)
