"""The end-of-text token that stops a choice, as clients read it: one of the choice's tokens and logprobs on
/v1/completions (blocking and streamed), counted in usage, never in the text; left out of chat's content logprobs.

lm-evaluation-harness's `local-completions` scores a continuation by sending context + continuation with
`echo: true, max_tokens: 1, logprobs: 1` and summing `token_logprobs[ctxlen:-1]`: it drops the last entry as the
generated token. Its own `parse_logprobs`, applied to this server's answers, must equal direct scoring by the
engine, also for continuations that end a training line (after which the model's next token is end-of-text).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from lm_eval.models.openai_completions import LocalCompletionsAPI

from core.api import App, Request
from core.generate import log_softmax
from train.config import DEFAULT_CORPUS, TrainConfig
from train.corpus import split_documents

JSON_HEADERS = {"content-type": "application/json"}
EOS_TEXT = "<|endoftext|>"
# lm-evaluation-harness 0.4's loglikelihood request (LocalCompletionsAPI._create_payload, generate=False)
LM_EVAL_SCORING = {"temperature": 0, "max_tokens": 1, "logprobs": 1, "seed": 1234, "echo": True}


@pytest.fixture(scope="module")
def app(loaded):
    return App(loaded, log=lambda record: None)


def completion(app, body: dict) -> bytes:
    response = app.handle(Request.of("POST", "/v1/completions", JSON_HEADERS, json.dumps(body).encode()))
    raw = response.read()
    assert response.status == 200, raw
    return raw


def streamed(raw: bytes) -> list[dict]:
    return [json.loads(b.removeprefix("data: ")) for b in raw.decode().split("\n\n") if b and b != "data: [DONE]"]


def direct_scores(loaded, ids: list[int]) -> tuple[list[float], list[int]]:
    """From one pass of the engine: log P(ids[i] | ids[:i]) for i >= 1, and the greedy token after each prefix
    ids[:i] for i >= 1 (the last one is the token after the whole of ids)."""
    rows = loaded.model.session().feed_every(ids)
    scores = [float(log_softmax(rows[i - 1])[ids[i]]) for i in range(1, len(ids))]
    return scores, [int(np.argmax(row)) for row in rows]


def training_continuations(loaded) -> list[tuple[list[int], int]]:
    """(context + continuation token ids, context length) for training lines split after their first three words:
    each continuation ends the line, as lm-eval's tokenizer_backend=remote would encode it."""
    cfg = TrainConfig()
    pairs = []
    for line in split_documents(DEFAULT_CORPUS, cfg.val_fraction, cfg.seed, False):
        words = line.split()
        if len(words) < 5:
            continue
        context = " ".join(words[:3])
        pairs.append((loaded.tokenizer.encode(line).ids, len(loaded.tokenizer.encode(context).ids)))
    return pairs[:32]


def test_the_issues_prompts_give_one_generated_entry_each_the_first_one_end_of_text(app, loaded):
    """The reproduction: a whole training line (next token: end-of-text) and the start of one (next: a word)."""
    for text, last_token, finish in (
        ("Hello world, this is a tiny dataset line 1.", EOS_TEXT, "stop"),
        ("Hello world, this is a tiny", " dataset", "length"),
    ):
        ids = loaded.tokenizer.encode(text).ids
        reply = json.loads(completion(app, {"prompt": ids, **LM_EVAL_SCORING}))
        (choice,) = reply["choices"]
        logprobs = choice["logprobs"]
        assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == len(ids) + 1
        assert logprobs["tokens"][-1] == last_token and choice["finish_reason"] == finish
        assert choice["text"] == text + ("" if last_token == EOS_TEXT else last_token)  # never the EOS's text
        assert logprobs["text_offset"][-1] == len(text)
        assert reply["usage"]["completion_tokens"] == 1
        streamed_entries = [
            entry
            for event in streamed(completion(app, {"prompt": ids, **LM_EVAL_SCORING, "stream": True}))
            for entry in (event["choices"][0]["logprobs"] or {"tokens": []})["tokens"]
        ]
        assert streamed_entries == logprobs["tokens"]


def test_lm_evals_parse_logprobs_equals_direct_scoring_for_continuations_that_end_a_training_line(app, loaded):
    continuations = training_continuations(loaded)
    parsed = []
    for start in range(0, len(continuations), 16):  # 16 prompts per request, the limit
        batch = continuations[start : start + 16]
        reply = json.loads(completion(app, {"prompt": [ids for ids, _ in batch], **LM_EVAL_SCORING}))
        parsed += LocalCompletionsAPI.parse_logprobs([reply], ctxlens=[ctxlen for _, ctxlen in batch])
    ended_by_eos = 0
    for (ids, ctxlen), (logprob, is_greedy) in zip(continuations, parsed, strict=True):
        scores, greedy = direct_scores(loaded, ids)
        assert logprob == pytest.approx(sum(scores[ctxlen - 1 :]), abs=1e-4)
        assert is_greedy == (greedy[ctxlen - 1 : -1] == ids[ctxlen:])
        ended_by_eos += greedy[-1] == loaded.model.cfg.eos_token_id
    assert len(continuations) == 32
    assert ended_by_eos >= 0.9 * len(continuations)  # the case that was wrong: the next token is end-of-text


def test_chat_content_logprobs_leave_the_end_of_text_token_out_and_usage_counts_it(app, loaded):
    """Forced by logit_bias (logprobs stay the raw model's), the first token is end-of-text: no content."""
    eos = loaded.model.cfg.eos_token_id
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "logit_bias": {str(eos): 100},
        "logprobs": True,
        "top_logprobs": 2,
        "max_tokens": 4,
    }
    response = app.handle(Request.of("POST", "/v1/chat/completions", JSON_HEADERS, json.dumps(body).encode()))
    reply = json.loads(response.read())
    (choice,) = reply["choices"]
    assert choice["message"]["content"] == "" and choice["finish_reason"] == "stop"
    assert choice["logprobs"]["content"] == [] and reply["usage"]["completion_tokens"] == 1
    stream = {**body, "stream": True}
    response = app.handle(Request.of("POST", "/v1/chat/completions", JSON_HEADERS, json.dumps(stream).encode()))
    assert all(event["choices"][0]["logprobs"] is None for event in streamed(response.read()))
    forced = {"prompt": "user: Hi\nassistant:", "logit_bias": {str(eos): 100}, "logprobs": 2, "max_tokens": 4}
    (choice,) = json.loads(completion(app, forced))["choices"]
    assert choice["logprobs"]["tokens"] == [EOS_TEXT] and choice["text"] == ""  # the completions route shows it


def test_chat_content_logprobs_bytes_join_to_the_content(app, loaded):
    body = {"messages": [{"role": "user", "content": "Hello world,"}], "logprobs": True, "temperature": 0}
    response = app.handle(Request.of("POST", "/v1/chat/completions", JSON_HEADERS, json.dumps(body).encode()))
    (choice,) = json.loads(response.read())["choices"]
    content = choice["logprobs"]["content"]
    assert b"".join(bytes(entry["bytes"]) for entry in content).decode() == choice["message"]["content"]
