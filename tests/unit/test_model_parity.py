"""The numpy engine computes what transformers' GPT2LMHeadModel computes, token for token."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.artifacts import load_from, sha256_file
from core.generate import SamplingParams, generate
from core.model import KVCache
from functions.devtools.reference import ReferenceEngine
from train.config import DEFAULT_CORPUS, read_corpus_lines

LOGIT_TOLERANCE = 1e-4
MAX_NEW = 24


def parity_prompts(n_ctx: int, tokenizer) -> list[tuple[str, int]]:
    """(prompt, max_new_tokens): corpus prefixes, unseen text, unicode, one token, near the context limit."""
    lines = read_corpus_lines(DEFAULT_CORPUS)
    corpus_prefixes = [" ".join(line.split()[:3]) for line in lines[::3]]  # 34 lines
    unseen = [
        "The quick brown fox",
        "Once upon a time",
        "Serverless functions scale to zero",
        "Why is the sky blue?",
        "1234567890",
        "def main():",
        "SELECT * FROM users;",
        "   leading spaces",
        "trailing spaces   ",
        "MiXeD CaSe WoRdS",
    ]
    unicode = ["café crème", "日本語のテキスト", "emoji 🚀🔥", "naïve façade", "Ελληνικά και русский"]
    one_token = [tokenizer.decode([i]) for i in (5, 40, 100, 300, 700)]
    long_ids = (tokenizer.encode(" ".join(lines)).ids)[: n_ctx - 6]
    near_limit = [tokenizer.decode(long_ids)]
    prompts = [(p, MAX_NEW) for p in corpus_prefixes + unseen + unicode + one_token]
    return prompts + [(p, n_ctx - len(tokenizer.encode(p).ids)) for p in near_limit]


def assert_greedy_parity(loaded, reference, prompt: str, max_new: int) -> None:
    ids = loaded.tokenizer.encode(prompt).ids
    ours = generate(loaded.model, loaded.tokenizer, prompt, SamplingParams(max_new_tokens=max_new, temperature=0))
    theirs = reference.greedy(ids, max_new)
    eos = loaded.model.cfg.eos_token_id
    if eos in theirs:  # transformers pads with EOS after the first; ours ends with that first one
        theirs = theirs[: theirs.index(eos) + 1]
        assert ours.finish_reason == "stop" and ours.ended_by_eos
    assert ours.token_ids == theirs


def assert_logit_parity(model, reference, ids: list[int]) -> None:
    """Last-position logits, once for the whole prompt and once token by token through the KV cache."""
    expected = reference.session().feed(ids)
    np.testing.assert_allclose(model.session().feed(ids), expected, atol=LOGIT_TOLERANCE, rtol=0)
    session = model.session()
    for tok in ids:
        stepped = session.feed([tok])
    np.testing.assert_allclose(stepped, expected, atol=LOGIT_TOLERANCE, rtol=0)


@pytest.fixture(scope="module")
def reference(model_dir):
    return ReferenceEngine(model_dir)


def test_there_are_at_least_50_parity_prompts(loaded):
    assert len(parity_prompts(loaded.model.cfg.n_positions, loaded.tokenizer)) >= 50


def test_greedy_tokens_and_logits_match_transformers_on_the_trained_model(loaded, reference):
    for prompt, max_new in parity_prompts(loaded.model.cfg.n_positions, loaded.tokenizer):
        assert_greedy_parity(loaded, reference, prompt, max_new)
        assert_logit_parity(loaded.model, reference, loaded.tokenizer.encode(prompt).ids)


@pytest.fixture(scope="module")
def small_preset_dir(tmp_path_factory):
    """A `small` preset model (4 layers × 256) trained briefly on the bundled corpus."""
    from train.__main__ import main as train_main

    out = tmp_path_factory.mktemp("small-preset") / "model"
    assert train_main(["--quiet", "--preset", "small", "--steps", "10", "--batch-size", "8", "--out", str(out)]) == 0
    return out


def test_greedy_tokens_and_logits_match_transformers_on_a_small_preset_model(small_preset_dir):
    small, reference = load_from(small_preset_dir), ReferenceEngine(small_preset_dir)
    assert (small.model.cfg.n_layer, small.model.cfg.n_embd, small.model.cfg.n_head) == (4, 256, 4)
    for prompt, max_new in parity_prompts(small.model.cfg.n_positions, small.tokenizer):
        assert_greedy_parity(small, reference, prompt, max_new)
        assert_logit_parity(small.model, reference, small.tokenizer.encode(prompt).ids)


RANDOM_CONFIGS = {
    "3 layers, 2 heads": dict(n_layer=3, n_head=2, n_embd=48, n_positions=64),
    "2 layers, 6 heads, n_inner, relu, scaled by layer": dict(
        n_layer=2,
        n_head=6,
        n_embd=48,
        n_positions=40,
        n_inner=80,
        activation_function="relu",
        scale_attn_by_inverse_layer_idx=True,
    ),
    "untied head": dict(n_layer=2, n_head=4, n_embd=32, n_positions=32, tie_word_embeddings=False),
}


@pytest.mark.parametrize("shape", RANDOM_CONFIGS, ids=list(RANDOM_CONFIGS))
def test_engine_is_not_tied_to_one_shape(shape, loaded, tmp_path):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    vocab = loaded.tokenizer.get_vocab_size()
    config = GPT2Config(vocab_size=vocab, eos_token_id=0, bos_token_id=0, **RANDOM_CONFIGS[shape])
    GPT2LMHeadModel(config).save_pretrained(tmp_path)
    loaded.tokenizer.save(str(tmp_path / "tokenizer.json"))
    files = {p.name: sha256_file(p) for p in tmp_path.iterdir()}
    (tmp_path / "manifest.json").write_text(json.dumps({"files": files}))

    random_model = load_from(tmp_path)
    reference = ReferenceEngine(tmp_path)
    rng = np.random.default_rng(0)
    for length in (1, 5, config.n_positions):
        ids = rng.integers(0, vocab, size=length).tolist()
        assert_logit_parity(random_model.model, reference, ids)
    for prompt in ("Hello world", "DevOps", "日本"):
        assert_greedy_parity(random_model, reference, prompt, 8)


def test_single_token_step_equals_the_general_forward(loaded):
    model = loaded.model
    block_cache, step_cache = KVCache(model.cfg), KVCache(model.cfg)
    for tok in loaded.tokenizer.encode("Hello world, this is").ids:
        np.testing.assert_allclose(model.step(tok, step_cache), model.forward([tok], block_cache), atol=1e-5, rtol=0)
    assert step_cache.length == block_cache.length
    np.testing.assert_allclose(
        step_cache.k[:, :, : step_cache.length], block_cache.k[:, :, : block_cache.length], atol=1e-6
    )


def test_feeding_a_prompt_at_once_gives_each_positions_logits_as_feeding_it_token_by_token(loaded):
    ids = loaded.tokenizer.encode("Terraform provisions ephemeral cloud resources quickly.").ids
    at_once, one_by_one = loaded.model.session(), loaded.model.session()
    every = at_once.feed_every(ids)  # (T, V)
    assert every.shape == (len(ids), loaded.model.cfg.vocab_size)
    for position, token in enumerate(ids):
        np.testing.assert_allclose(every[position], one_by_one.feed([token]), atol=1e-4, rtol=0)
    # Both sessions continue from the same cache.
    np.testing.assert_allclose(at_once.feed([ids[0]]), one_by_one.feed([ids[0]]), atol=1e-4, rtol=0)
