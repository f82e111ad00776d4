"""Property tests on request parsing: whatever arrives, a 4xx in OpenAI's shape (or a 200), never a 500.

The field names and the valid values come from the routes' field tables (core.completion_route.fields,
core.chat_route.fields): the strategy
for a field is derived from the JSON schema it declares, so a new field is fuzzed as soon as it is declared.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import chat_route, completion_route, schema
from core.api import App, Request

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
VALID = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ROUTES = {"completions": "/v1/completions", "chat": "/v1/chat/completions"}
JSON_HEADERS = {"content-type": "application/json"}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.integers(min_value=10**30, max_value=10**40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def from_schema(node: dict) -> st.SearchStrategy:
    """Values valid under the subset of JSON schema the field tables use (sizes kept small to stay fast)."""
    if "oneOf" in node:
        return st.one_of([from_schema(option) for option in node["oneOf"]])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "integer":
        return st.integers(node.get("minimum"), node.get("maximum"))
    if kind == "number":
        return st.floats(node.get("minimum"), node.get("maximum"), exclude_min=node.get("exclusiveMinimum", False))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.text(min_size=node.get("minLength", 0), max_size=min(node.get("maxLength", 40), 40))
    if kind == "array":
        low = node.get("minItems", 0)
        return st.lists(from_schema(node["items"]), min_size=low, max_size=max(low, min(node.get("maxItems", 3), 3)))
    if kind == "object":
        required = {k: from_schema(v) for k, v in node.get("properties", {}).items() if k in node.get("required", [])}
        optional = {k: from_schema(v) for k, v in node.get("properties", {}).items() if k not in required}
        fixed = st.fixed_dictionaries(required, optional=optional)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            keys = st.integers(0, 999).map(str)  # logit_bias keys are token ids; metadata keys any short text
            return st.dictionaries(keys, from_schema(extra), max_size=3)
        return fixed
    raise AssertionError(f"the fuzz strategy does not know this schema: {node}")


LOG: list[dict] = []


@pytest.fixture(scope="module")
def app(loaded):
    return App(loaded, log=LOG.append)


def tables(loaded) -> dict[str, tuple[schema.Field, ...]]:
    cfg = loaded.model.cfg
    return {
        "completions": completion_route.fields(cfg.n_positions, cfg.vocab_size),
        "chat": chat_route.fields(cfg.n_positions, cfg.vocab_size),
    }


def valid_bodies(loaded, route: str) -> st.SearchStrategy:
    """Bodies whose every field is valid on its own (cross-field rules may still refuse them with a 400)."""
    fields = tables(loaded)[route]
    required = "prompt" if route == "completions" else "messages"
    strategies = {f.name: from_schema(f.schema) for f in fields}
    return st.fixed_dictionaries({required: strategies.pop(required)}, optional=strategies)


def assert_clean_answer(response):
    body = response.read()
    assert response.status < 500, LOG[-1].get("exception")
    if response.status >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        return response.status, error
    return response.status, None


@FUZZ
@given(body=st.binary(max_size=300))
def test_arbitrary_bytes(app, body):
    for route in ROUTES.values():
        status, _ = assert_clean_answer(app.handle(Request.of("POST", route, JSON_HEADERS, body)))
        assert status == 400


def test_every_declared_field_is_fuzzed(loaded):
    names = {f.name for fields in tables(loaded).values() for f in fields}
    assert {
        "prompt",
        "messages",
        "logprobs",
        "echo",
        "best_of",
        "logit_bias",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "max_completion_tokens",
        "stream_options",
    } <= names


@FUZZ
@given(data=st.data())
def test_wrong_types_and_huge_numbers(app, loaded, data):
    names = sorted(
        {f.name for fields in tables(loaded).values() for f in fields}
        | set(chat_route.REFUSED)
        | set(completion_route.REFUSED)
        | {"unknown_field"}
    )
    fields = data.draw(st.dictionaries(st.sampled_from(names), json_values, max_size=6))
    for route in ROUTES.values():
        assert_clean_answer(app.handle(Request.of("POST", route, JSON_HEADERS, json.dumps(fields).encode())))


@pytest.fixture
def short_budget(monkeypatch):
    monkeypatch.setattr(schema, "TIME_BUDGET_S", 0.05)  # any valid request answers fast, ending with "length"


@pytest.mark.parametrize("route", ROUTES)
def test_valid_fields_complete_or_say_which_rule_they_break(app, loaded, short_budget, route):
    names = {f.name for f in tables(loaded)[route]}

    @VALID
    @given(body=valid_bodies(loaded, route))
    def check(body):
        body.pop("model", None)  # any other model name is a 404 by design
        status, error = assert_clean_answer(
            app.handle(Request.of("POST", ROUTES[route], JSON_HEADERS, json.dumps(body).encode()))
        )
        assert status == 200 or (status == 400 and error["param"] in names), error

    check()


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"prompt": "hi", "max_tokens": 1' + b"0" * 5000 + b"}",
        b'{"prompt": "hi", "temperature": NaN}',
        b'{"prompt": "hi", "temperature": 1e999}',
        b'{"prompt": "\xff\xfe"}',
        b'{"prompt": "\\ud800"}',
        '{"prompt": "caf\u00e9"}'.encode("latin-1"),
        b'{"prompt": [[1, 2], "mixed"]}',
        b'{"prompt": "hi", "logit_bias": {"-1": 5}}',
        b'{"prompt": "hi", "logit_bias": {"1": 101}}',
        b'{"prompt": "hi", "logit_bias": {"' + b"1" * 5000 + b'": 1}}',  # int() refuses over 4300 digits
    ],
)
def test_pathological_bodies(app, body):
    response = app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, body))
    status, _ = assert_clean_answer(response)
    assert status in (400, 413)
