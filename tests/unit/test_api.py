"""core.api at the edge: unforeseen failures become a 500 without internals; log fields per platform."""

from __future__ import annotations

import json

import pytest

from core import api, serving
from core.api import App, Request

GREEDY = json.dumps({"prompt": "Hello world,", "temperature": 0}).encode()
JSON_HEADERS = {"content-type": "application/json"}


@pytest.fixture
def records(loaded):
    lines = []
    return App(loaded, log=lines.append), lines


def test_an_unforeseen_failure_is_a_500_with_the_request_id_and_no_internals(records, monkeypatch):
    app, lines = records

    def broken_check(*args):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(serving, "check_fits", broken_check)
    response = app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, GREEDY, request_id="req-42"))
    body = response.read().decode()
    assert response.status == 500
    assert json.loads(body)["error"] == {
        "message": "internal error; request id req-42",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
    assert "secret" not in body and "Traceback" not in body
    (record,) = lines
    assert record["severity"] == "ERROR" and "secret internal detail" in record["exception"]


def test_a_streamed_response_logs_once_when_the_stream_ends(records):
    app, lines = records
    body = json.dumps({"prompt": "Hello world,", "temperature": 0, "stream": True}).encode()
    response = app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, body))
    assert lines == []  # nothing logged before the events are sent
    response.read()
    (record,) = lines
    assert record["status"] == 200 and record["finish_reason"] == "stop" and record["completion_tokens"] > 0


def test_a_client_that_leaves_early_is_logged_once_with_what_was_counted(records):
    """Closing the stream (a client gone) closes the inner generators first, so the log line has the counts."""
    app, lines = records
    body = json.dumps({"prompt": "Hello world,", "temperature": 0, "stream": True, "n": 2}).encode()
    response = app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, body))
    assert response.chunks is not None
    next(response.chunks)
    response.chunks.close()  # what a server does with a generator it stops sending
    (record,) = lines
    assert record["status"] == 200 and record["completion_tokens"] == 0 and record["finish_reason"] is None


def test_the_time_budget_ends_generation_with_length(records, monkeypatch):
    app, _ = records
    monkeypatch.setattr(serving, "TIME_BUDGET_S", 0.0)
    body = json.dumps({"prompt": "Hello world,", "temperature": 0, "max_tokens": 50}).encode()
    choice = json.loads(app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, body)).read())["choices"][0]
    assert choice["finish_reason"] == "length" and choice["text"] == ""


def test_api_key_hash_from_the_environment_is_enforced(loaded, monkeypatch):
    import hashlib

    monkeypatch.setenv(api.ENV_API_KEY_SHA256, hashlib.sha256(b"k1").hexdigest().upper())
    app = App(loaded, api_key_sha256=api.os.environ[api.ENV_API_KEY_SHA256], log=lambda r: None)
    assert app.handle(Request.of("GET", "/v1/models", {"Authorization": "Bearer k1"})).status == 200
    assert app.handle(Request.of("GET", "/v1/models", {"Authorization": "Basic k1"})).status == 401
    assert app.handle(Request.of("GET", "/v1/models", {"Authorization": "Bearer k2"})).status == 401
