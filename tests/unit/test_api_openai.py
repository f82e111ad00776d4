"""The OpenAI surface on the real model through core.api: batched prompts, logprobs, echo, n/best_of, penalties,
logit_bias, refusals, streaming with logprobs and usage, tokenizer routes, model retrieval and CORS."""

from __future__ import annotations

import itertools
import json

import pytest

from core import schema
from core.api import App, Request, cors_origins
from core.chat_route import render_chat
from core.completion_route import echo_logprobs
from core.generate import Generation, log_softmax
from core.serving import Prompt, Tally
from core.tokens import token_bytes, token_text

JSON_HEADERS = {"content-type": "application/json"}
LINE = "Hello world, this is a tiny dataset line 1."


@pytest.fixture(scope="module")
def app(loaded):
    return App(loaded, log=lambda record: None)


def post(app, path: str, body: dict, headers: dict | None = None):
    response = app.handle(Request.of("POST", path, {**JSON_HEADERS, **(headers or {})}, json.dumps(body).encode()))
    raw = response.read()
    return response.status, raw


def ok(app, path: str, body: dict) -> dict:
    status, raw = post(app, path, body)
    assert status == 200, raw
    return json.loads(raw)


def error(app, path: str, body: dict, param: str) -> dict:
    status, raw = post(app, path, body)
    err = json.loads(raw)["error"]
    assert (status, err["param"]) == (400, param), raw
    assert f"'{param}'" in err["message"]
    return err


def events(raw: bytes) -> list[dict]:
    blocks = [b.removeprefix("data: ") for b in raw.decode().split("\n\n") if b]
    assert blocks[-1] == "[DONE]"
    return [json.loads(b) for b in blocks[:-1]]


# -- prompts ---------------------------------------------------------------------------------------------------
def test_every_prompt_shape_gives_one_choice_per_prompt_in_order(app, loaded):
    ids = loaded.tokenizer.encode("Hello world,").ids
    greedy = {"temperature": 0, "max_tokens": 12}
    one = ok(app, "/v1/completions", {"prompt": "Hello world,", **greedy})["choices"]
    assert [c["text"] for c in one] == [" this is a tiny dataset line 1."]
    assert ok(app, "/v1/completions", {"prompt": ids, **greedy})["choices"] == one
    other = loaded.tokenizer.encode("Terraform").ids
    many = ok(app, "/v1/completions", {"prompt": [ids, other, ids], **greedy})
    assert [c["index"] for c in many["choices"]] == [0, 1, 2]
    assert many["choices"][0]["text"] == many["choices"][2]["text"] == one[0]["text"]
    assert many["usage"]["prompt_tokens"] == 2 * len(ids) + len(other)
    texts = ok(app, "/v1/completions", {"prompt": ["Hello world,", "Terraform"], **greedy})["choices"]
    assert [c["text"] for c in texts] == [one[0]["text"], many["choices"][1]["text"]]
    error(app, "/v1/completions", {"prompt": [ids, "Terraform"]}, "prompt")  # no mix, as in OpenAI's API


def test_prompt_limits_per_prompt_and_in_total(app, loaded):
    error(app, "/v1/completions", {"prompt": ["Hi"] * (schema.MAX_PROMPTS + 1)}, "prompt")
    error(app, "/v1/completions", {"prompt": [[1, 2], [loaded.model.cfg.vocab_size]]}, "prompt")
    error(app, "/v1/completions", {"prompt": [[]]}, "prompt")
    long_ids = [5] * 100  # 8 prompts x best_of 4 x (100 + 40 tokens) = 4480 > 4096
    err = error(app, "/v1/completions", {"prompt": [long_ids] * 8, "max_tokens": 40, "best_of": 4}, "max_tokens")
    assert str(schema.MAX_REQUEST_TOKENS) in err["message"]


# -- logprobs and echo -----------------------------------------------------------------------------------------
def test_echo_with_max_tokens_0_scores_the_prompt_in_the_legacy_shape(app, loaded):
    choice = ok(app, "/v1/completions", {"prompt": LINE, "max_tokens": 0, "echo": True, "logprobs": 2})["choices"][0]
    ids = loaded.tokenizer.encode(LINE).ids
    logprobs = choice["logprobs"]
    assert choice["text"] == LINE and choice["finish_reason"] == "length"
    assert len(logprobs["tokens"]) == len(ids) and "".join(logprobs["tokens"]) == LINE
    assert logprobs["token_logprobs"][0] is None and logprobs["top_logprobs"][0] is None
    for token, offset in zip(logprobs["tokens"], logprobs["text_offset"], strict=True):
        assert LINE[offset : offset + len(token)] == token
    rows = zip(logprobs["tokens"][1:], logprobs["token_logprobs"][1:], logprobs["top_logprobs"][1:], strict=True)
    for token, logprob, top in rows:
        assert logprob <= 0 and top[token] == logprob and 2 <= len(top) <= 3
    # a memorised line: every token after the first few is the model's first choice
    firsts = zip(logprobs["token_logprobs"][3:], logprobs["top_logprobs"][3:], strict=True)
    assert all(lp == max(top.values()) for lp, top in firsts)


def test_echo_logprobs_need_a_generation_that_scored_its_prompt(loaded):
    """A caller that forgot prompt_logprobs gets an error that says so, not a TypeError from inside."""
    unscored = Generation(prompt_tokens=1, finish_reason="length")
    with pytest.raises(RuntimeError, match="set prompt_logprobs"):
        echo_logprobs(loaded.tokenizer, Prompt([1], "x"), unscored)


def test_a_choice_is_counted_only_once_its_generation_has_finished():
    tally = Tally()
    with pytest.raises(RuntimeError, match="before its generation has finished"):
        tally.count(Generation(prompt_tokens=1, token_ids=[5]))
    tally.count(Generation(prompt_tokens=1, token_ids=[5, 6], finish_reason="stop"))
    assert tally.completion_tokens == 2 and tally.finish_reasons == ["stop"]


def test_max_tokens_0_needs_echo(app):
    error(app, "/v1/completions", {"prompt": "Hi", "max_tokens": 0}, "max_tokens")


def test_logprobs_are_the_raw_model_distribution_whatever_the_sampling(app, loaded):
    """Penalties, bias and temperature change which token is chosen, never the logprob reported for it."""
    body = {
        "prompt": "Terraform",
        "max_tokens": 6,
        "logprobs": 3,
        "temperature": 0.7,
        "seed": 3,
        "presence_penalty": 1.5,
        "frequency_penalty": 0.5,
        "logit_bias": {"5": 3},
        "echo": True,
    }
    logprobs = ok(app, "/v1/completions", body)["choices"][0]["logprobs"]
    text = "".join(logprobs["tokens"])
    ids = loaded.tokenizer.encode(text).ids
    assert loaded.tokenizer.decode(ids) == text
    session, expected = loaded.model.session(), [None]
    for previous, token in itertools.pairwise(ids):  # replay the whole text: each position's raw log-softmax
        expected.append(float(log_softmax(session.feed([previous]))[token]))
    assert len(expected) == len(logprobs["token_logprobs"])
    assert logprobs["token_logprobs"][1:] == pytest.approx(expected[1:], abs=1e-5)


def test_streamed_logprobs_add_up_to_the_whole_response(app):
    body = {"prompt": "Hello world,", "max_tokens": 20, "temperature": 0, "logprobs": 2, "echo": True}
    whole = ok(app, "/v1/completions", body)
    status, raw = post(app, "/v1/completions", {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert status == 200
    chunks = events(raw)
    pieces = [c for c in chunks if c["choices"]]
    joined = {key: [] for key in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}
    for chunk in pieces:
        for key in joined:
            joined[key] += (chunk["choices"][0]["logprobs"] or {}).get(key, [])
    assert "".join(c["choices"][0]["text"] for c in pieces) == whole["choices"][0]["text"]
    assert joined == whole["choices"][0]["logprobs"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert all(c["usage"] is None for c in chunks[:-1])
    status, raw = post(app, "/v1/completions", {**body, "stream": True})
    assert all("usage" not in c for c in events(raw))


# -- n, best_of, seeds -----------------------------------------------------------------------------------------
def test_n_samples_differ_and_a_seed_repeats_the_whole_response(app):
    body = {"prompt": "Serverless functions", "max_tokens": 12, "temperature": 1.5, "n": 4, "seed": 7, "logprobs": 0}
    first, second = ok(app, "/v1/completions", body), ok(app, "/v1/completions", body)
    assert first["choices"] == second["choices"]
    assert [c["index"] for c in first["choices"]] == [0, 1, 2, 3]
    assert len({c["text"] for c in first["choices"]}) > 1


def test_best_of_returns_the_samples_with_the_highest_summed_logprob(app):
    body = {"prompt": "Serverless functions", "max_tokens": 12, "temperature": 1.5, "seed": 7, "logprobs": 0}
    samples = ok(app, "/v1/completions", {**body, "n": 4})["choices"]
    ranked = sorted(samples, key=lambda c: -sum(c["logprobs"]["token_logprobs"]))
    best = ok(app, "/v1/completions", {**body, "n": 2, "best_of": 4})["choices"]
    assert [c["text"] for c in best] == [c["text"] for c in ranked[:2]]
    assert [c["index"] for c in best] == [0, 1]
    error(app, "/v1/completions", {**body, "n": 3, "best_of": 2}, "best_of")
    error(app, "/v1/completions", {**body, "best_of": 2, "stream": True}, "best_of")


# -- penalties and logit_bias ----------------------------------------------------------------------------------
def test_logit_bias_bans_and_forces_tokens(app, loaded):
    greedy = {"prompt": "Hello world,", "max_tokens": 12, "temperature": 0}
    plain = ok(app, "/v1/completions", greedy)["choices"][0]["text"]
    first = loaded.tokenizer.encode(plain).ids[0]
    banned = ok(app, "/v1/completions", {**greedy, "logit_bias": {str(first): -100}})["choices"][0]["text"]
    assert first not in loaded.tokenizer.encode(banned).ids
    forced = ok(app, "/v1/completions", {**greedy, "max_tokens": 3, "logit_bias": {"300": 100}})["choices"][0]
    assert loaded.tokenizer.encode(forced["text"]).ids == [300, 300, 300]


def test_penalties_break_a_repetition_the_bias_started(app, loaded):
    """A bias just large enough to make ' e' the first greedy token makes it repeat; penalties stop that."""
    prompt_ids = loaded.tokenizer.encode("Hello world,").ids
    logits = loaded.model.session().feed(prompt_ids)
    token = loaded.tokenizer.encode(" e").ids[0]
    bias = float(logits.max() - logits[token]) + 0.5
    body = {"prompt": prompt_ids, "max_tokens": 12, "temperature": 0, "logit_bias": {str(token): bias}}

    def count(**penalties) -> int:
        text = ok(app, "/v1/completions", {**body, **penalties})["choices"][0]["text"]
        return loaded.tokenizer.encode(text).ids.count(token)

    repeated = count()
    assert repeated == 12
    assert count(frequency_penalty=2.0, presence_penalty=2.0) < repeated / 2
    assert count(frequency_penalty=2.0) < repeated  # grows with the count; a presence penalty alone is a constant


# -- refusals and metadata -------------------------------------------------------------------------------------
CHAT = {"messages": [{"role": "user", "content": "Hello world,"}], "max_tokens": 8, "temperature": 0}


@pytest.mark.parametrize(
    "route, extra, param",
    [
        ("/v1/completions", {"suffix": " end"}, "suffix"),
        ("/v1/completions", {"frequency_penalty": 3}, "frequency_penalty"),
        ("/v1/completions", {"logprobs": 6}, "logprobs"),
        ("/v1/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
        ("/v1/completions", {"n": 5}, "n"),
        ("/v1/completions", {"logit_bias": {str(i): 1 for i in range(301)}}, "logit_bias"),
        ("/v1/completions", {"guided_json": {}}, "guided_json"),
        ("/v1/chat/completions", {"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
        ("/v1/chat/completions", {"tool_choice": "auto"}, "tool_choice"),
        ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
        ("/v1/chat/completions", {"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ("/v1/chat/completions", {"top_logprobs": 2}, "top_logprobs"),
        ("/v1/chat/completions", {"max_completion_tokens": 4}, "max_completion_tokens"),
        (
            "/v1/chat/completions",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}],
                    }
                ]
            },
            "messages[0].content",
        ),
    ],
)
def test_what_would_change_the_answer_and_is_not_implemented_is_a_400_naming_it(app, route, extra, param):
    body = {"prompt": "Hi", "max_tokens": 4} if route == "/v1/completions" else CHAT
    error(app, route, {**body, **extra}, param)


def test_harmless_metadata_is_accepted_and_changes_nothing(app):
    plain = ok(app, "/v1/chat/completions", CHAT)["choices"]
    tagged = ok(
        app,
        "/v1/chat/completions",
        {**CHAT, "user": "u-1", "metadata": {"team": "a"}, "store": False, "response_format": {"type": "text"}},
    )["choices"]
    assert tagged == plain


# -- chat -----------------------------------------------------------------------------------------------------
def test_chat_logprobs_in_the_chat_shape_and_n(app, loaded):
    body = {
        **CHAT,
        "logprobs": True,
        "top_logprobs": 2,
        "n": 2,
        "seed": 1,
        "temperature": 1.0,
        "max_completion_tokens": 10,
    }
    del body["max_tokens"]
    reply = ok(app, "/v1/chat/completions", body)
    assert [c["index"] for c in reply["choices"]] == [0, 1]
    for choice in reply["choices"]:
        content = choice["logprobs"]["content"]
        assert "".join(t["token"] for t in content) == choice["message"]["content"]
        assert bytes(b for t in content for b in t["bytes"]).decode() == choice["message"]["content"]
        for token in content:
            alternatives = [t["logprob"] for t in token["top_logprobs"]]
            assert len(alternatives) == 2 and alternatives == sorted(alternatives, reverse=True)
            assert token["logprob"] <= alternatives[0] + 1e-12
        assert reply["usage"]["completion_tokens"] >= len(content)


def test_chat_content_may_be_a_list_of_text_parts(app):
    parts = {**CHAT, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello world,"}]}]}
    assert ok(app, "/v1/chat/completions", parts)["choices"] == ok(app, "/v1/chat/completions", CHAT)["choices"]


# -- tokenizer routes, model retrieval -------------------------------------------------------------------------
def test_tokenize_and_detokenize_round_trip_in_vllms_shapes(app, loaded):
    reply = ok(app, "/tokenize", {"prompt": LINE, "add_special_tokens": True, "return_token_strs": True})
    assert reply["tokens"] == loaded.tokenizer.encode(LINE).ids and reply["count"] == len(reply["tokens"])
    assert reply["max_model_len"] == loaded.model.cfg.n_positions and "".join(reply["token_strs"]) == LINE
    assert ok(app, "/detokenize", {"tokens": reply["tokens"]}) == {"prompt": LINE}
    error(app, "/detokenize", {"tokens": [-1]}, "tokens")
    error(app, "/tokenize", {"prompt": 3}, "prompt")


def test_tokenizer_info_chat_template_renders_the_documented_template(app):
    import jinja2

    info = json.loads(app.handle(Request.of("GET", "/tokenizer_info", {})).read())
    assert info["eos_token"] == "<|endoftext|>" and info["model_max_length"] == 256
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rendered = jinja2.Template(info["chat_template"]).render(messages=messages, add_generation_prompt=True)
    assert rendered == render_chat(messages) == "system: Be brief.\nuser: Hi\nassistant:"


def test_model_retrieval(app):
    reply = app.handle(Request.of("GET", "/v1/models/tinyllm", {}))
    assert (reply.status, json.loads(reply.read())["id"]) == (200, "tinyllm")
    missing = app.handle(Request.of("GET", "/v1/models/gpt-4", {}))
    assert missing.status == 404 and json.loads(missing.read())["error"]["code"] == "model_not_found"


# -- CORS ------------------------------------------------------------------------------------------------------
def test_cors_is_off_by_default(app):
    reply = app.handle(Request.of("OPTIONS", "/v1/completions", {"Origin": "https://app.example"}))
    assert reply.status == 405 and "access-control-allow-origin" not in reply.headers


def test_cors_allows_exactly_the_configured_origins(loaded):
    import hashlib

    cors = App(
        loaded,
        api_key_sha256=hashlib.sha256(b"k").hexdigest(),
        log=lambda r: None,
        cors=cors_origins(" https://app.example , http://localhost:3000/"),
    )
    preflight = cors.handle(
        Request.of(
            "OPTIONS",
            "/v1/chat/completions",
            {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
    )
    assert preflight.status == 204  # no API key needed for the preflight
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "POST"
    assert "authorization" in preflight.headers["access-control-allow-headers"]
    refused = cors.handle(Request.of("OPTIONS", "/v1/models", {"Origin": "https://evil.example"}))
    assert refused.status == 403 and "access-control-allow-origin" not in refused.headers
    got = cors.handle(Request.of("GET", "/v1/models", {"Origin": "http://localhost:3000", "Authorization": "Bearer k"}))
    assert got.status == 200 and got.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert got.headers["access-control-expose-headers"] == "x-request-id"
    other = cors.handle(Request.of("GET", "/healthz", {"Origin": "https://evil.example"}))
    assert "access-control-allow-origin" not in other.headers


def test_every_tokens_bytes_are_exact(loaded):
    """token_bytes undoes the byte-level alphabet: a partial UTF-8 character keeps its real bytes."""
    tokenizer = loaded.tokenizer
    for token in range(loaded.model.cfg.vocab_size):
        assert bytes(token_bytes(tokenizer, token)).decode("utf-8", "replace") == token_text(tokenizer, token)
    ids = tokenizer.encode("日本語 🚀 café").ids
    assert b"".join(bytes(token_bytes(tokenizer, t)) for t in ids) == "日本語 🚀 café".encode()


def test_a_token_id_outside_the_vocabulary_is_refused_by_name(loaded):
    with pytest.raises(ValueError, match=f"token id {loaded.model.cfg.vocab_size} is not in the tokenizer's"):
        token_bytes(loaded.tokenizer, loaded.model.cfg.vocab_size)
