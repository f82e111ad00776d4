"""Decoding on the real model: greedy, seeds, top-k, top-p, temperature, penalties, logit bias, stop strings, EOS,
limits, log-probabilities, best_of."""

from __future__ import annotations

import numpy as np
import pytest

from core.generate import (
    ContextOverflow,
    SamplingParams,
    TokenStream,
    best_of,
    encode_prompt,
    filter_logits,
    generate,
    log_softmax,
    next_token,
    processed_logits,
    sample_streams,
    stream,
)

UNSEEN = "Serverless functions"


def run(loaded, prompt, **params):
    return generate(loaded.model, loaded.tokenizer, prompt, SamplingParams(**params))


def test_same_seed_gives_the_same_text_and_other_seeds_differ(loaded):
    first = run(loaded, UNSEEN, max_new_tokens=24, temperature=1.5, seed=7)
    assert run(loaded, UNSEEN, max_new_tokens=24, temperature=1.5, seed=7).text == first.text
    others = {run(loaded, UNSEEN, max_new_tokens=24, temperature=1.5, seed=s).text for s in range(8)}
    assert len(others) > 1


def test_top_k_of_one_is_greedy_whatever_the_seed_and_temperature(loaded):
    greedy = run(loaded, UNSEEN, max_new_tokens=24, temperature=0)
    for seed in range(3):
        assert run(loaded, UNSEEN, max_new_tokens=24, temperature=2.0, top_k=1, seed=seed).token_ids == greedy.token_ids


def test_top_k_keeps_exactly_the_k_best_tokens():
    logits = np.array([3.0, 1.0, 2.0, 0.0, -1.0])
    kept = np.isfinite(filter_logits(logits, SamplingParams(top_k=2)))
    assert kept.tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("top_p, kept", [(0.45, 1), (0.75, 2), (0.9, 3), (0.99, 4), (1.0, 4)])
def test_top_p_keeps_the_smallest_set_whose_mass_reaches_p(top_p, kept):
    probs = np.array([0.5, 0.3, 0.15, 0.05])
    scores = filter_logits(np.log(probs), SamplingParams(top_p=top_p))
    assert np.isfinite(scores).sum() == kept
    assert np.isfinite(scores[:kept]).all()


def test_lower_temperature_concentrates_samples_on_the_likeliest_token():
    logits = np.array([2.0, 1.5, 1.0, 0.5])
    rng = np.random.default_rng(0)

    def share_of_best(temperature):
        picks = [next_token(logits, SamplingParams(temperature=temperature), rng) for _ in range(2000)]
        return picks.count(0) / len(picks)

    cold, warm, hot = share_of_best(0.2), share_of_best(1.0), share_of_best(5.0)
    assert cold > 0.9 > warm
    assert warm > hot > 0.25  # near uniform when hot, still ordered
    expected_warm = np.exp(2.0) / np.exp(logits).sum()
    assert abs(warm - expected_warm) < 0.04  # temperature 1 samples the model's own distribution


def test_stop_string_cuts_the_text_before_it_and_stream_never_shows_it(loaded):
    full = run(loaded, "Hello world,", max_new_tokens=32, temperature=0).text
    assert "tiny" in full
    cut = run(loaded, "Hello world,", max_new_tokens=32, temperature=0, stop=("tiny",))
    assert cut.text == full[: full.index("tiny")]
    assert cut.finish_reason == "stop"
    params = SamplingParams(temperature=0, stop=("tiny",))
    ids = encode_prompt(loaded.model, loaded.tokenizer, "Hello world,", params)
    deltas = list(stream(loaded.model, loaded.tokenizer, ids, params))
    assert "".join(deltas) == cut.text
    assert all("tin" not in d for d in deltas)


def test_eos_ends_generation_at_the_end_of_a_memorised_line(loaded):
    result = run(loaded, "Hello world,", max_new_tokens=64, temperature=0)
    assert result.finish_reason == "stop"
    assert result.completion_tokens < 64
    assert "Hello world," + result.text == "Hello world, this is a tiny dataset line 1."


def test_max_new_tokens_ends_with_length(loaded):
    result = run(loaded, "Hello world,", max_new_tokens=3, temperature=0)
    assert (result.finish_reason, result.completion_tokens) == ("length", 3)


def test_prompt_and_new_tokens_must_fit_the_context(loaded):
    n_ctx = loaded.model.cfg.n_positions
    with pytest.raises(ContextOverflow, match=f"context of {n_ctx} tokens"):
        run(loaded, "Hello world,", max_new_tokens=n_ctx)
    with pytest.raises(ContextOverflow, match="at least one token"):
        run(loaded, "", max_new_tokens=1)


def test_streamed_deltas_add_up_to_the_generated_text(loaded):
    params = SamplingParams(max_new_tokens=40, temperature=1.0, seed=3)
    ids = encode_prompt(loaded.model, loaded.tokenizer, "日本 🚀", params)
    tokens = stream(loaded.model, loaded.tokenizer, ids, params)
    deltas = list(tokens)  # a plain for loop: the result is still there afterwards
    final = tokens.result
    assert "".join(deltas) == final.text
    assert final.text == generate(loaded.model, loaded.tokenizer, "日本 🚀", params).text


def test_ignore_eos_generates_exactly_max_new_tokens(loaded):
    result = run(loaded, "Hello world,", max_new_tokens=40, temperature=0, ignore_eos=True)
    assert (result.finish_reason, result.completion_tokens) == ("length", 40)


def test_penalties_and_bias_follow_openais_formula():
    logits = np.array([1.0, 2.0, 3.0, 4.0])
    params = SamplingParams(presence_penalty=0.5, frequency_penalty=0.25, logit_bias=((0, 10.0),))
    counts = {2: 3, 3: 1}  # token 2 generated three times, token 3 once, token 1 never
    expected = [1.0 + 10.0, 2.0, 3.0 - 3 * 0.25 - 0.5, 4.0 - 1 * 0.25 - 0.5]
    assert processed_logits(logits, params, counts).tolist() == expected
    assert logits.tolist() == [1.0, 2.0, 3.0, 4.0]  # the raw logits are untouched


def test_a_stream_result_is_there_after_a_plain_for_loop_and_not_before(loaded):
    params = SamplingParams(max_new_tokens=8, temperature=0, logprobs=2)
    tokens = stream(loaded.model, loaded.tokenizer, loaded.tokenizer.encode("Hello world,").ids, params)
    with pytest.raises(RuntimeError, match="before the stream has ended"):
        _ = tokens.result
    shown = []
    for _ in tokens:
        shown.append(tokens.tokens_shown)
    result = tokens.result
    assert shown == sorted(shown) and result.completion_tokens == len(result.scores.logprobs) == 8
    assert all(len(top) == 2 and top[0][1] >= top[1][1] for top in result.scores.top)


def test_chosen_tokens_logprobs_are_the_engines_log_softmax(loaded):
    ids = loaded.tokenizer.encode(UNSEEN).ids
    params = SamplingParams(max_new_tokens=10, temperature=1.3, seed=5, frequency_penalty=1.0, prompt_logprobs=0)
    result = TokenStream(loaded.model, loaded.tokenizer, ids, params).finish()
    session = loaded.model.session()
    logits = session.feed(ids)  # the whole prompt at once; the stream fed it token by token (float32 rounding)
    for token, logprob in zip(result.token_ids, result.scores.logprobs, strict=True):
        assert logprob == pytest.approx(float(log_softmax(logits)[token]), abs=1e-5)
        logits = session.feed([token])
    assert result.prompt_scores.logprobs[0] is None and len(result.prompt_scores.logprobs) == len(ids)


def test_best_of_keeps_the_samples_with_the_highest_summed_logprob_and_seeds_repeat(loaded):
    ids = loaded.tokenizer.encode(UNSEEN).ids
    params = SamplingParams(max_new_tokens=12, temperature=1.5, seed=11)

    def samples():
        return sample_streams(loaded.model, loaded.tokenizer, ids, params, 4, deadline=None)

    everything = best_of(samples(), 4)
    assert [g.token_ids for g in everything] == [g.token_ids for g in best_of(samples(), 4)]
    assert len({tuple(g.token_ids) for g in everything}) > 1
    ranked = sorted(everything, key=lambda g: -g.cumulative_logprob)
    assert [g.token_ids for g in best_of(samples(), 2)] == [g.token_ids for g in ranked[:2]]
    # sample 0 draws from the seed itself, as `generate` does
    assert everything[0].token_ids == generate(loaded.model, loaded.tokenizer, UNSEEN, params).token_ids
