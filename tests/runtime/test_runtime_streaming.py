"""Streamed answers on each package as its cloud runs it, read over HTTP by real clients: events leave while the
answer is still being decoded where the package streams (GCP, AWS behind a RESPONSE_STREAM Function URL), and
`openai` with stream=True and a plain server-sent-event reader see the same events on every cloud (Azure
included, which buffers them into one body)."""

from __future__ import annotations

import pytest
from openai import OpenAI

from bench import PROMPT, runtime
from functions.devtools import runtimes

STREAMING = ["gcp", "aws-url-stream"]
FRONTED = [*STREAMING, "azure"]
TRIES = 3
# First to last of 128 streamed events: decoding time (16–22 ms for the tiny model on an idle machine, more under
# load), against ~1 ms when one buffered body brings them all (`python -m bench --quick --only runtime`).
STREAM_SPREAD_S = 0.005


@pytest.fixture(scope="session")
def front_urls(gcp_runtime, lambda_stream_runtime, azure_host):
    """{kind: base URL}: functions-framework itself; the streaming Lambda runtime and the Azure worker's indexed
    function each behind the HTTP part of their cloud (runtimes.function_url_answer / azure_answer)."""
    fronts = [
        runtimes.HttpFront(runtimes.function_url_answer(lambda_stream_runtime[0])),
        runtimes.HttpFront(runtimes.azure_answer(azure_host)),
    ]
    try:
        yield {"gcp": f"http://127.0.0.1:{gcp_runtime[0]}", "aws-url-stream": fronts[0].url, "azure": fronts[1].url}
    finally:
        for front in fronts:
            front.close()


@pytest.fixture(scope="session")
def long_completion(loaded) -> dict:
    """128 tokens, every one decoded (end-of-text banned), streamed."""
    return runtime.streamed_completion(loaded.tokenizer.token_to_id("<|endoftext|>"))


def event_times(url: str, body: dict) -> tuple[float, float]:
    """(first event, last event) arrival, in seconds from the request's sending."""
    events = runtime.timed_events(url, body)
    assert sum(1 for _, event in events if event["choices"][0]["text"]) == runtime.STREAMED_TOKENS
    return events[0][0], events[-1][0]


def spreads(url: str, body: dict) -> list[float]:
    """First to last event, in seconds, of TRIES answers."""
    return [last - first for first, last in (event_times(url, body) for _ in range(TRIES))]


@pytest.mark.parametrize("kind", STREAMING)
def test_the_first_event_arrives_long_before_the_last_token_is_decoded(kind, front_urls, long_completion):
    """A buffered body brings every event at once, after the last token: they arrive within a millisecond or so of
    each other (Azure's below). A stream spreads them over the 127 decoding steps after the first. The share of the
    whole answer that the first event waits for depends on the machine's load (fixed per-request costs against a
    fraction of a millisecond a token); the spread does not shrink with it. A stall can hide it in one try, not in
    all."""
    assert max(spreads(front_urls[kind], long_completion)) > STREAM_SPREAD_S


def test_azure_buffers_so_every_event_arrives_with_the_last(front_urls, long_completion):
    """The contrast that shows the measure above tells streaming from buffering (docs/deploying.md says why
    Azure buffers)."""
    first, last = event_times(front_urls["azure"], long_completion)
    assert first / last > 0.9, (first, last)
    assert min(spreads(front_urls["azure"], long_completion)) < STREAM_SPREAD_S  # a stall can spread one try only


def openai_events(url: str) -> dict[str, list]:
    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    completion = client.completions.create(model="tinyllm", prompt=PROMPT, max_tokens=24, temperature=0, stream=True)
    chat = client.chat.completions.create(
        model="tinyllm",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=16,
        temperature=0,
        stream=True,
    )
    return {
        "completion": [(c.choices[0].text, c.choices[0].finish_reason) for c in completion],
        "chat": [(c.choices[0].delta.role, c.choices[0].delta.content, c.choices[0].finish_reason) for c in chat],
    }


def test_openai_and_a_plain_sse_reader_see_the_same_events_on_every_cloud(front_urls):
    seen = {kind: openai_events(front_urls[kind]) for kind in FRONTED}
    assert seen["gcp"] == seen["aws-url-stream"] == seen["azure"]
    assert len(seen["gcp"]["completion"]) > 1 and seen["gcp"]["completion"][-1][1] in ("stop", "length")
    assert seen["gcp"]["chat"][0][:2] == ("assistant", "")
    body = {"prompt": PROMPT, "max_tokens": 24, "temperature": 0, "stream": True}
    for kind in FRONTED:
        plain = [
            (e["choices"][0]["text"], e["choices"][0]["finish_reason"])
            for _, e in runtime.timed_events(front_urls[kind], body)
        ]
        assert plain == seen[kind]["completion"], kind
