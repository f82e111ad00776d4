"""Property tests on request parsing: whatever arrives, a 4xx in OpenAI's shape (or a 200), never a 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.api import App, Request

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = ["prompt", "messages", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "n", "stream", "model"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.integers(min_value=10**30, max_value=10**40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


LOG: list[dict] = []


@pytest.fixture(scope="module")
def app(loaded):
    return App(loaded, log=LOG.append)


def assert_clean_answer(response):
    body = response.read()
    assert response.status < 500, LOG[-1].get("exception")
    if response.status >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return response.status


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(app, body):
    for route in ("/v1/completions", "/v1/chat/completions"):
        status = assert_clean_answer(app.handle(Request.of("POST", route, {"content-type": "application/json"}, body)))
        assert status == 400


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_wrong_types_and_huge_numbers(app, fields):
    for route in ("/v1/completions", "/v1/chat/completions"):
        body = json.dumps(fields).encode()
        assert_clean_answer(app.handle(Request.of("POST", route, {"content-type": "application/json"}, body)))


@FUZZ
@given(prompt=st.text(min_size=1, max_size=200), max_tokens=st.integers(1, 300),
       temperature=st.floats(0, 2), top_p=st.floats(0.01, 1), top_k=st.integers(0, 2000),
       stop=st.lists(st.text(min_size=1, max_size=5), max_size=4), seed=st.integers(0, 2**63 - 1))
def test_valid_shapes_complete_or_say_why(app, prompt, max_tokens, temperature, top_p, top_k, stop, seed):
    body = json.dumps({"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                       "top_k": top_k, "stop": stop, "seed": seed}).encode()
    response = app.handle(Request.of("POST", "/v1/completions", {"content-type": "application/json"}, body))
    status = assert_clean_answer(response)
    assert status in (200, 400)


@pytest.mark.parametrize("body", [
    b"[" * 100_000,
    b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"prompt": "hi", "max_tokens": 1' + b"0" * 5000 + b"}",
    b'{"prompt": "hi", "temperature": NaN}',
    b'{"prompt": "hi", "temperature": 1e999}',
    b'{"prompt": "\xff\xfe"}',
    b'{"prompt": "\\ud800"}',
    "{\"prompt\": \"caf\u00e9\"}".encode("latin-1"),
])
def test_pathological_bodies(app, body):
    response = app.handle(Request.of("POST", "/v1/completions", {"content-type": "application/json"}, body))
    status = assert_clean_answer(response)
    assert status in (400, 413)
