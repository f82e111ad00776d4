"""One HTTP contract on every adapter: the same request gets the same status, shape and text everywhere."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.generate import SamplingParams, generate
from core.schema import MAX_BODY_BYTES

GREEDY = {"prompt": "Hello world,", "max_tokens": 32, "temperature": 0}
CHAT = {
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello world,"}],
    "max_tokens": 24,
    "temperature": 0.7,
    "seed": 11,
}


def sse_events(body: bytes) -> list:
    """Parse a buffered or streamed server-sent-event body into its JSON payloads (and the final [DONE])."""
    events = [block.removeprefix("data: ") for block in body.decode("utf-8").split("\n\n") if block]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def assert_openai_error(reply, status: int, param=None):
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in error["message"]
    if param:
        assert error["param"] == param and f"'{param}'" in error["message"]
    return error


def test_completion_text_is_the_core_engines_text(client, loaded):
    reply = client.post_json("/v1/completions", GREEDY)
    assert reply.status == 200
    body = reply.json()
    expected = generate(
        loaded.model, loaded.tokenizer, "Hello world,", SamplingParams(max_new_tokens=32, temperature=0)
    )
    assert body["object"] == "text_completion" and body["model"] == "tinyllm"
    assert body["choices"][0]["text"] == expected.text == " this is a tiny dataset line 1."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": expected.prompt_tokens,
        "completion_tokens": expected.completion_tokens,
        "total_tokens": expected.prompt_tokens + expected.completion_tokens,
    }
    assert body["id"] == "cmpl-" + reply.headers["x-request-id"]


def test_chat_answers_with_an_assistant_message_and_a_seed_repeats_it(client):
    first, second = client.post_json("/v1/chat/completions", CHAT), client.post_json("/v1/chat/completions", CHAT)
    assert first.status == second.status == 200
    choice = first.json()["choices"][0]
    assert first.json()["object"] == "chat.completion"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == second.json()["choices"][0]["message"]["content"]
    assert "\nuser:" not in choice["message"]["content"]


@pytest.mark.parametrize("route, request_body", [("/v1/completions", GREEDY), ("/v1/chat/completions", CHAT)])
def test_stream_sends_openai_chunks_ending_with_done_and_the_same_text(client, route, request_body):
    whole = client.post_json(route, request_body).json()["choices"][0]
    reply = client.post_json(route, {**request_body, "stream": True})
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/event-stream")
    events = sse_events(reply.body)
    if route == "/v1/chat/completions":
        assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
        assert text == whole["message"]["content"]
    else:
        assert "".join(e["choices"][0]["text"] for e in events) == whole["text"]
    assert events[-1]["choices"][0]["finish_reason"] == whole["finish_reason"]
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])


def test_models_health_and_openapi(client, loaded):
    models = client.request("GET", "/v1/models")
    assert models.status == 200 and models.json()["data"][0]["id"] == "tinyllm"
    health = client.request("GET", "/healthz").json()
    assert health == {
        "status": "ok",
        "model": "tinyllm",
        "engine": "numpy",
        "manifest_sha256": loaded.manifest_sha256,
        "context_tokens": 256,
    }
    doc = client.request("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.") and "/v1/completions" in doc["paths"]


def test_invalid_json_is_400(client):
    reply = client.request("POST", "/v1/completions", {"Content-Type": "application/json"}, b'{"prompt": ')
    assert "not valid JSON" in assert_openai_error(reply, 400)["message"]


@pytest.mark.parametrize(
    "body, param, limit",
    [
        ({"prompt": "Hi", "max_tokens": 100000}, "max_tokens", "255"),
        ({"prompt": "Hi", "temperature": 9}, "temperature", "2.0"),
        ({"prompt": "Hi", "stop": [chr(ord("a") + i) for i in range(17)]}, "stop", "16"),
        ({"prompt": "x" * 5000}, "prompt", "4096"),
        ({"prompt": "Hello " * 60, "max_tokens": 200}, "max_tokens", "256"),
        ({"prompt": "Hello " * 300, "max_tokens": 1}, "prompt", "256"),
        ({"prompt": "Hi", "n": 5}, "n", "4"),
        ({"prompt": "Hi", "suffix": "!"}, "suffix", None),
        ({"messages": [{"role": "user", "content": "Hi"}], "tools": [{"type": "function"}]}, "tools", None),
        ({"messages": "hi"}, "messages", None),
    ],
)
def test_invalid_fields_are_400_naming_the_field_and_the_limit(client, body, param, limit):
    route = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    error = assert_openai_error(client.post_json(route, body), 400, param)
    if limit:
        assert limit in error["message"]


def test_unknown_model_is_404_naming_the_model_field(client):
    assert_openai_error(client.post_json("/v1/completions", {"prompt": "Hi", "model": "gpt-4"}), 404, "model")


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow(client):
    assert_openai_error(client.request("GET", "/v2/nothing"), 404)
    reply = client.request("GET", "/v1/completions")
    assert_openai_error(reply, 405)
    assert reply.headers["allow"] == "POST"


def test_body_over_the_limit_is_413(client):
    big = json.dumps({"prompt": "x" * MAX_BODY_BYTES}).encode()
    assert_openai_error(client.request("POST", "/v1/completions", {"Content-Type": "application/json"}, big), 413)


def test_a_body_that_is_not_json_is_415(client):
    reply = client.request("POST", "/v1/completions", {"Content-Type": "text/plain"}, b"prompt=hi")
    assert_openai_error(reply, 415)


@pytest.fixture
def api_key(client):
    """Configure the adapter's app as an operator would (TINYLLM_API_KEY_SHA256), then restore it."""
    key = "sk-tinyllm-test-key"
    app = client.app
    saved, app.api_key_sha256 = app.api_key_sha256, hashlib.sha256(key.encode()).hexdigest()
    yield key
    app.api_key_sha256 = saved


def test_api_key_when_configured_is_required_on_v1_routes(client, api_key):
    assert_openai_error(client.post_json("/v1/completions", GREEDY), 401)
    wrong = client.post_json("/v1/completions", GREEDY, {"Authorization": "Bearer sk-wrong"})
    assert assert_openai_error(wrong, 401)["code"] == "invalid_api_key"
    assert wrong.headers["www-authenticate"] == "Bearer"
    ok = client.post_json("/v1/completions", GREEDY, {"Authorization": f"Bearer {api_key}"})
    assert ok.status == 200
    assert client.request("GET", "/healthz").status == 200  # health stays open for probes


def test_each_request_writes_one_json_log_line_without_the_prompt(client, capsys):
    capsys.readouterr()
    secret_prompt = "Hello world, my password is hunter2"
    reply = client.post_json("/v1/completions", {**GREEDY, "prompt": secret_prompt})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert len(lines) == 1
    record = lines[0]
    assert record["request_id"] == reply.headers["x-request-id"]
    assert record["route"] == "/v1/completions" and record["status"] == 200 and record["severity"] == "INFO"
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] >= 0 and record["finish_reason"]
    assert isinstance(record["latency_ms"], float)
    assert "hunter2" not in json.dumps(record)
    platform_field = {"gcp": None, "azure": "invocation_id"}.get(client.kind, "aws_request_id")
    if platform_field:
        assert record[platform_field] == reply.headers["x-request-id"]


def test_gcp_trace_header_becomes_the_cloud_logging_trace_field(client, capsys, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "my-project")
    capsys.readouterr()
    client.request("GET", "/healthz", {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"})
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    trace = record.get("logging.googleapis.com/trace")
    if client.kind == "gcp":
        assert trace == "projects/my-project/traces/105445aa7843bc8bf206b12000100000"
    else:
        assert trace is None  # only Cloud Run sets that header; the other platforms log their own ids


@pytest.fixture
def cors(client):
    """Configure the adapter's app with TINYLLM_CORS_ORIGINS' parsed value, then restore it."""
    app = client.app
    saved, app.cors = app.cors, frozenset({"https://app.example"})
    yield "https://app.example"
    app.cors = saved


def test_a_cors_preflight_reaches_core_through_every_adapter(client, cors):
    reply = client.request("OPTIONS", "/v1/completions", {"Origin": cors, "Access-Control-Request-Method": "POST"})
    assert reply.status == 204 and reply.headers["access-control-allow-origin"] == cors
    assert reply.headers["access-control-allow-methods"] == "POST"
    answer = client.post_json("/v1/completions", GREEDY, {"Origin": cors})
    assert answer.status == 200 and answer.headers["access-control-allow-origin"] == cors


def test_tokenizer_routes_and_model_retrieval_on_every_adapter(client, loaded):
    ids = client.post_json("/tokenize", {"prompt": "Hello world,"}).json()["tokens"]
    assert ids == loaded.tokenizer.encode("Hello world,").ids
    assert client.post_json("/detokenize", {"tokens": ids}).json() == {"prompt": "Hello world,"}
    assert client.request("GET", "/tokenizer_info").json()["eos_token"] == "<|endoftext|>"
    assert client.request("GET", "/v1/models/tinyllm").json()["id"] == "tinyllm"
    assert_openai_error(client.request("GET", "/v1/models/other"), 404, "model")
