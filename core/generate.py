"""Decoding: greedy, temperature, top-k, top-p, seed, stop strings, EOS and max_new_tokens.

Order of the sampling filters (as in transformers): temperature, then top-k, then top-p. Temperature 0 means
greedy. A seed makes sampling repeat exactly; without one, each call draws fresh entropy.
Stop strings end the text before their first occurrence; text that could still become a stop string is held
back while streaming, so a streamed completion never shows a stop string.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np
from tokenizers import Tokenizer

from core.model import GPT2Config


class Session(Protocol):
    def feed(self, ids: list[int]) -> np.ndarray: ...


class Engine(Protocol):
    """What decoding needs from a model: its config and a fresh per-generation session."""

    cfg: GPT2Config

    def session(self) -> Session: ...


class ContextOverflow(ValueError):
    """Prompt tokens plus max_new_tokens do not fit the model's context."""

    def __init__(self, message: str, prompt_tokens: int):
        super().__init__(message)
        self.prompt_tokens = prompt_tokens


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 32
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k filter
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # keep going past EOS (benchmarks want a fixed token count)
    time_budget_s: float | None = None  # wall clock; when spent, generation ends with "length"


@dataclass
class Generation:
    """The result so far; complete once `finish_reason` is set ('stop' or 'length')."""

    prompt_tokens: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)


def filter_logits(logits: np.ndarray, params: SamplingParams) -> np.ndarray:
    """Scaled log-probabilities with the top-k / top-p tails set to -inf (temperature must be > 0)."""
    # Shift so the best score is 0 before dividing: a tiny temperature then gives -inf tails, never inf - inf.
    with np.errstate(over="ignore"):
        scores = (logits.astype(np.float64) - logits.max()) / params.temperature
    if 0 < params.top_k < scores.size:
        kth = np.partition(scores, -params.top_k)[-params.top_k]
        scores = np.where(scores < kth, -np.inf, scores)
    if params.top_p < 1.0:
        order = np.argsort(-scores, kind="stable")
        probs = np.exp(scores[order] - scores[order[0]])
        probs /= probs.sum()
        # Keep the smallest prefix whose mass reaches top_p (always at least the most likely token).
        cut = int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1
        scores[order[cut:]] = -np.inf
    return scores


def next_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    if params.temperature == 0:
        return int(np.argmax(logits))
    scores = filter_logits(logits, params)
    probs: np.ndarray = np.exp(scores - scores.max())  # declared: np.exp's result type is Any
    probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))


def stop_index(text: str, stops: tuple[str, ...]) -> int | None:
    """Index of the earliest stop string in text, or None."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def safe_prefix_length(text: str, stops: tuple[str, ...]) -> int:
    """How much of `text` can be shown: not a trailing partial UTF-8 char, nor a possible stop-string start."""
    end = len(text.rstrip("\ufffd"))
    for stop in stops:
        for n in range(min(len(stop) - 1, end), 0, -1):
            if text[:end].endswith(stop[:n]):
                end -= n
                break
    return end


def encode_prompt(engine: Engine, tokenizer: Tokenizer, prompt: str, params: SamplingParams) -> list[int]:
    """The prompt's token ids, or ContextOverflow when they and max_new_tokens do not fit the context."""
    prompt_ids = tokenizer.encode(prompt).ids
    n_ctx = engine.cfg.n_positions
    if not prompt_ids:
        raise ContextOverflow("prompt must contain at least one token", 0)
    if len(prompt_ids) + params.max_new_tokens > n_ctx:
        raise ContextOverflow(
            f"prompt has {len(prompt_ids)} tokens and max_new_tokens is {params.max_new_tokens}: "
            f"together they must fit the context of {n_ctx} tokens",
            len(prompt_ids),
        )
    return prompt_ids


def stream(engine: Engine, tokenizer: Tokenizer, prompt_ids: list[int], params: SamplingParams) -> Iterator[str]:
    """Yield text deltas as they are decoded; the generator's return value is the final Generation.

    `prompt_ids` come from encode_prompt, which checks that they fit the context.
    """
    result = Generation(prompt_tokens=len(prompt_ids))
    rng = np.random.default_rng(params.seed)
    session = engine.session()
    logits = session.feed(prompt_ids)
    shown = 0
    deadline = None if params.time_budget_s is None else time.monotonic() + params.time_budget_s
    while True:
        out_of_time = deadline is not None and time.monotonic() > deadline
        if len(result.token_ids) == params.max_new_tokens or out_of_time:
            result.finish_reason = "length"
            break
        token = next_token(logits, params, rng)
        if token == engine.cfg.eos_token_id and not params.ignore_eos:
            result.finish_reason = "stop"
            break
        result.token_ids.append(token)
        text = tokenizer.decode(result.token_ids)
        cut = stop_index(text, params.stop)
        if cut is not None:
            result.text, result.finish_reason = text[:cut], "stop"
            break
        result.text = text
        visible = safe_prefix_length(text, params.stop)
        if visible > shown:
            yield text[shown:visible]
            shown = visible
        if len(result.token_ids) < params.max_new_tokens:
            logits = session.feed([token])
    if len(result.text) > shown:
        yield result.text[shown:]
    return result


def drain(deltas: Iterator[str]) -> Generation:
    """Run a `stream` generator to its end and return its final Generation."""
    while True:
        try:
            next(deltas)
        except StopIteration as done:
            return done.value


def generate(engine: Engine, tokenizer: Tokenizer, prompt: str, params: SamplingParams) -> Generation:
    """Encode `prompt`, run `stream` to the end and return the whole Generation."""
    return drain(stream(engine, tokenizer, encode_prompt(engine, tokenizer, prompt, params), params))
