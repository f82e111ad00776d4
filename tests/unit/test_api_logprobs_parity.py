"""`echo` + `logprobs` of the parity prompts equal transformers' log-softmax of the same tokens (1e-4)."""

from __future__ import annotations

import json

import pytest
from test_model_parity import parity_prompts

from core.api import App, Request

LOGPROB_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference_model(model_dir):
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel.from_pretrained(str(model_dir)).eval()


def transformers_logprobs(model, ids: list[int]) -> list[float]:
    """log P(ids[i] | ids[:i]) for i >= 1, from GPT2LMHeadModel's logits over the whole sequence at once."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    rows = torch.log_softmax(logits, dim=-1)
    return [float(rows[i - 1, ids[i]]) for i in range(1, len(ids))]


def test_echoed_prompt_logprobs_equal_transformers_log_softmax(loaded, reference_model):
    app = App(loaded, log=lambda record: None)
    prompts = [p for p, _ in parity_prompts(loaded.model.cfg.n_positions, loaded.tokenizer)]
    for start in range(0, len(prompts), 16):  # 16 prompts per request, the limit
        batch = [loaded.tokenizer.encode(p).ids for p in prompts[start : start + 16]]
        body = json.dumps({"prompt": batch, "max_tokens": 0, "echo": True, "logprobs": 1}).encode()
        reply = app.handle(Request.of("POST", "/v1/completions", {"content-type": "application/json"}, body))
        assert reply.status == 200
        for ids, choice in zip(batch, json.loads(reply.read())["choices"], strict=True):
            served = choice["logprobs"]["token_logprobs"]
            assert served[0] is None and len(served) == len(ids)
            assert served[1:] == pytest.approx(transformers_logprobs(reference_model, ids), abs=LOGPROB_TOLERANCE)
