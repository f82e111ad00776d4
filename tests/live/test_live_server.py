"""The local server as users run it: the real openai client, raw HTTP errors, parallel clients."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai import APIStatusError, AuthenticationError, OpenAI

from core.schema import MAX_BODY_BYTES


@pytest.fixture(scope="module")
def openai_client(live_server):
    return OpenAI(base_url=live_server.url + "/v1", api_key=live_server.api_key, max_retries=0, timeout=30)


def test_openai_client_completion(openai_client):
    done = openai_client.completions.create(model="tinyllm", prompt="Hello world,", max_tokens=32, temperature=0)
    assert done.choices[0].text == " this is a tiny dataset line 1."
    assert done.choices[0].finish_reason == "stop"
    assert done.usage.completion_tokens > 0


def test_openai_client_chat(openai_client):
    done = openai_client.chat.completions.create(
        model="tinyllm", messages=[{"role": "user", "content": "Tell me about DevOps"}], max_tokens=20, seed=5
    )
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].finish_reason in ("stop", "length")


def test_openai_client_streams_completions_and_chat(openai_client):
    pieces = [
        c.choices[0].text
        for c in openai_client.completions.create(
            model="tinyllm", prompt="Hello world,", max_tokens=32, temperature=0, stream=True
        )
    ]
    assert "".join(pieces) == " this is a tiny dataset line 1."
    assert len(pieces) > 2  # really streamed in pieces
    chat = openai_client.chat.completions.create(
        model="tinyllm", messages=[{"role": "user", "content": "Hello"}], max_tokens=12, seed=1, stream=True
    )
    chunks = list(chat)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    whole = openai_client.chat.completions.create(
        model="tinyllm", messages=[{"role": "user", "content": "Hello"}], max_tokens=12, seed=1
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole.choices[0].message.content


def test_openai_client_parses_echo_logprobs_and_n_into_its_typed_objects(openai_client):
    done = openai_client.completions.create(
        model="tinyllm", prompt=["Hello world,", "Terraform"], max_tokens=6, logprobs=2, echo=True, n=2, seed=4
    )
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    first = done.choices[0]
    assert first.text.startswith("Hello world,") and first.logprobs.token_logprobs[0] is None
    assert len(first.logprobs.tokens) == len(first.logprobs.text_offset) == len(first.logprobs.top_logprobs)
    assert all(len(top) <= 3 for top in first.logprobs.top_logprobs[1:])
    assert done.usage.completion_tokens > 0


def test_openai_client_parses_chat_logprobs_into_its_typed_objects(openai_client):
    done = openai_client.chat.completions.create(
        model="tinyllm",
        messages=[{"role": "user", "content": "Hello world,"}],
        max_completion_tokens=8,
        logprobs=True,
        top_logprobs=2,
        seed=2,
    )
    content = done.choices[0].logprobs.content
    assert "".join(t.token for t in content) == done.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.bytes for t in content)


def test_openai_client_streams_usage_when_asked(openai_client):
    chunks = list(
        openai_client.completions.create(
            model="tinyllm",
            prompt="Hello world,",
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_openai_client_retrieves_the_model(openai_client):
    assert openai_client.models.retrieve("tinyllm").id == "tinyllm"


def test_openai_client_sees_errors_as_exceptions(live_server, openai_client):
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=live_server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(APIStatusError) as err:
        openai_client.completions.create(model="tinyllm", prompt="Hi", max_tokens=100000)
    assert err.value.status_code == 400 and "max_tokens" in str(err.value)


def error_of(reply):
    status, headers, body = reply
    assert headers["content-type"] == "application/json"
    return status, json.loads(body)["error"]


def test_every_error_status_over_raw_http(live_server):
    assert (
        error_of(live_server.request("POST", "/v1/completions", b"{", {"Content-Type": "application/json"}))[0] == 400
    )
    status, error = error_of(live_server.post_json("/v1/completions", {"prompt": "Hi", "top_p": 0}))
    assert (status, error["param"]) == (400, "top_p")
    assert error_of(live_server.post_json("/v1/completions", {"prompt": "Hi"}, auth=False))[0] == 401
    assert error_of(live_server.request("GET", "/nowhere"))[0] == 404
    status, headers, _ = live_server.request("DELETE", "/v1/models")
    assert (status, headers["allow"]) == (405, "GET")
    big = json.dumps({"prompt": "x" * (4 * MAX_BODY_BYTES)}).encode()
    assert error_of(live_server.request("POST", "/v1/completions", big, {"Content-Type": "application/json"}))[0] == 413
    assert error_of(live_server.request("POST", "/v1/completions", b"hi", {"Content-Type": "text/plain"}))[0] == 415


def test_parallel_clients_get_the_answers_serial_clients_get(live_server):
    bodies = [
        {"prompt": p, "max_tokens": 16, "temperature": 0.9, "seed": i}
        for i, p in enumerate(["Hello world,", "Terraform", "DevOps culture", "Serverless", "日本"] * 8)
    ]

    def text(body):
        status, _, raw = live_server.post_json("/v1/completions", body)
        assert status == 200
        return json.loads(raw)["choices"][0]["text"]

    serial = [text(b) for b in bodies]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(text, bodies))
    assert parallel == serial
