"""Decoding: greedy, temperature, top-k, top-p, penalties, logit bias, seed, stop strings, EOS, max_new_tokens.

Order of the logit processors, before each token is chosen: the raw logits, plus `logit_bias`, minus the
presence and frequency penalties (OpenAI's formula, over the tokens generated so far), then temperature,
top-k and top-p (as in transformers). Temperature 0 means greedy: the argmax of the biased, penalised logits.
Log-probabilities reported to clients (`Generation.scores`) are those of the raw model distribution, the
log-softmax of the logits before any processor, as vLLM returns them by default.
A seed (or an rng passed in) makes sampling repeat exactly; without one, each call draws fresh entropy.
Stop strings end the text before their first occurrence; text that could still become a stop string is held
back while streaming, so a streamed completion never shows a stop string.
The end-of-text token that stops a generation is one of its tokens (in `token_ids`, scored, counted in
`completion_tokens`) whose text is not in `text`, as in vLLM, whose scheduler appends it to the request's
output tokens before it stops the request (vllm-project/vllm, vllm/v1/core/sched/utils.py, `check_stop`):
a client that scores text by its tokens' logprobs (lm-evaluation-harness) needs its probability.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

from core.model import GPT2Config


class DecodingSession(Protocol):
    """One generation's state over a model: `feed` appends tokens and returns the next token's logits;
    `feed_every` returns the logits after each appended token (scoring a prompt)."""

    def feed(self, ids: list[int]) -> np.ndarray: ...

    def feed_every(self, ids: list[int]) -> np.ndarray: ...


class Engine(Protocol):
    """What decoding needs from a model: its config and a fresh per-generation session."""

    cfg: GPT2Config

    def session(self) -> DecodingSession: ...


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
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias) pairs
    # Log-probabilities, as vLLM's SamplingParams carries them: `logprobs` alternatives recorded with each
    # generated token (None: not asked for; each token's own logprob is recorded anyway, best_of ranks by it),
    # `prompt_logprobs` alternatives with each prompt token, the prompt then scored in one pass (None: not scored).
    logprobs: int | None = None
    prompt_logprobs: int | None = None
    ignore_eos: bool = False  # keep going past EOS (benchmarks want a fixed token count)


@dataclass
class TokenScores:
    """Raw-model log-probabilities of a run of tokens: each token's own, and the likeliest alternatives.

    `logprobs[i]` is None for a token with nothing before it (the first prompt token); `top[i]` holds up to
    `top_logprobs` (token id, logprob) pairs, likeliest first.
    """

    logprobs: list[float | None] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)

    def add(self, logits: np.ndarray | None, token: int, top_logprobs: int) -> None:
        if logits is None:
            self.logprobs.append(None)
            self.top.append([])
            return
        row = log_softmax(logits)
        self.logprobs.append(float(row[token]))
        self.top.append(likeliest(row, top_logprobs))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    scores = logits.astype(np.float64)
    shifted = scores - scores.max()
    return shifted - np.log(np.exp(shifted).sum())


def likeliest(row: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The k highest (token id, logprob) pairs, likeliest first; ties go to the lower id."""
    if k <= 0:
        return []
    k = min(k, row.size)
    candidates = np.argpartition(-row, k - 1)[:k]
    ordered = sorted(candidates.tolist(), key=lambda i: (-row[i], i))
    return [(i, float(row[i])) for i in ordered]


@dataclass
class Generation:
    """The result so far; complete once `finish_reason` is set ('stop' or 'length')."""

    prompt_tokens: int
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    scores: TokenScores = field(default_factory=TokenScores)  # of token_ids
    prompt_scores: TokenScores | None = None  # of the prompt's tokens, when params.prompt_logprobs asks for them
    ended_by_eos: bool = False  # the last of token_ids is the end-of-text token (its text is not in `text`)

    @property
    def completion_tokens(self) -> int:
        """Every generated token, the end-of-text token that stopped the generation included."""
        return len(self.token_ids)

    @property
    def text_tokens(self) -> int:
        """The generated tokens whose text is in `text`: all but a final end-of-text token."""
        return len(self.token_ids) - self.ended_by_eos

    @property
    def cumulative_logprob(self) -> float:
        """Sum of the generated tokens' raw log-probabilities (how best_of ranks samples)."""
        total = 0.0
        for logprob in self.scores.logprobs:
            if logprob is None:  # only a first prompt token goes unscored; a generated token always has logits
                raise RuntimeError("a generated token has no log-probability")
            total += logprob
        return total


def processed_logits(logits: np.ndarray, params: SamplingParams, counts: dict[int, int]) -> np.ndarray:
    """Logits plus logit_bias, minus the presence and frequency penalties of the tokens generated so far.

    Source: OpenAI API reference, parameter details ("mu[j] -> mu[j] - c[j] * alpha_frequency -
    float(c[j] > 0) * alpha_presence", c[j] being how often token j was sampled before the current position),
    and logit_bias ("the bias is added to the logits generated by the model prior to sampling").
    """
    penalised = counts and (params.presence_penalty or params.frequency_penalty)
    if not params.logit_bias and not penalised:
        return logits
    scores = logits.astype(np.float64)  # a copy: the session's logits stay the raw model output
    for token, bias in params.logit_bias:
        scores[token] += bias
    if penalised:
        for token, count in counts.items():
            scores[token] -= count * params.frequency_penalty + params.presence_penalty
    return scores


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


def check_fits(engine: Engine, prompt_ids: list[int], max_new_tokens: int) -> list[int]:
    """`prompt_ids`, or ContextOverflow when they are empty or they and max_new_tokens do not fit the context."""
    n_ctx = engine.cfg.n_positions
    if not prompt_ids:
        raise ContextOverflow("prompt must contain at least one token", 0)
    if len(prompt_ids) + max_new_tokens > n_ctx:
        raise ContextOverflow(
            f"prompt has {len(prompt_ids)} tokens and max_new_tokens is {max_new_tokens}: "
            f"together they must fit the context of {n_ctx} tokens",
            len(prompt_ids),
        )
    return prompt_ids


def encode_prompt(engine: Engine, tokenizer: Tokenizer, prompt: str, params: SamplingParams) -> list[int]:
    """The prompt's token ids, or ContextOverflow when they and max_new_tokens do not fit the context."""
    return check_fits(engine, tokenizer.encode(prompt).ids, params.max_new_tokens)


class TokenStream:
    """A generation in progress: iterate for its text pieces as they are decoded, then read `result`.

    After each piece, `tokens_shown` is how many of `result.token_ids` have been decoded so far, so a caller
    can send each token's log-probability with the piece it arrived in. `prompt_ids` come from encode_prompt
    or check_fits. With params.prompt_logprobs, the prompt is fed in one pass (`feed_every`) and
    `result.prompt_scores` holds each prompt token's log-probability given the ones before it. Past `deadline`
    (time.monotonic; None: no limit) generation ends with "length": the caller computes it once per request,
    so every generation of the request shares one budget.
    """

    def __init__(
        self,
        engine: Engine,
        tokenizer: Tokenizer,
        prompt_ids: list[int],
        params: SamplingParams,
        rng: np.random.Generator | None = None,
        deadline: float | None = None,
    ):
        self.engine, self.tokenizer, self.params = engine, tokenizer, params
        self.prompt_ids = prompt_ids
        self.rng = rng if rng is not None else np.random.default_rng(params.seed)
        self.deadline = deadline
        self.tokens_shown = 0
        self._result = Generation(prompt_tokens=len(prompt_ids))
        self._pieces = self._decode()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    @property
    def so_far(self) -> Generation:
        """The generation as decoded up to now (prompt scores are there once the first piece has come)."""
        return self._result

    @property
    def result(self) -> Generation:
        """The whole generation; only once the stream has been iterated to its end."""
        if self._result.finish_reason is None:
            raise RuntimeError("TokenStream.result is read before the stream has ended")
        return self._result

    def finish(self) -> Generation:
        """Decode whatever is left and return the result."""
        for _ in self:
            pass
        return self.result

    def _prefill(self, session: DecodingSession) -> np.ndarray | None:
        """Feed the prompt; return the logits for the first new token (None when none will be generated)."""
        ids, result, params = self.prompt_ids, self._result, self.params
        if params.prompt_logprobs is None:
            return session.feed(ids) if params.max_new_tokens else None
        result.prompt_scores = scores = TokenScores()
        scores.add(None, ids[0], 0)
        every = session.feed_every(ids)  # (T, V): the logits after ids[i] score ids[i + 1]
        for logits, token in zip(every[:-1], ids[1:], strict=True):
            scores.add(logits, token, params.prompt_logprobs)
        return every[-1]

    def _decode(self) -> Iterator[str]:
        params, result, tokenizer = self.params, self._result, self.tokenizer
        session = self.engine.session()
        logits = self._prefill(session)
        counts: dict[int, int] = {}
        shown = 0
        while True:
            out_of_time = self.deadline is not None and time.monotonic() > self.deadline
            if len(result.token_ids) == params.max_new_tokens or out_of_time:
                result.finish_reason = "length"
                break
            assert logits is not None  # _prefill gives None only for max_new_tokens 0, which ended the loop above
            token = next_token(processed_logits(logits, params, counts), params, self.rng)
            result.token_ids.append(token)
            result.scores.add(logits, token, params.logprobs or 0)
            if token == self.engine.cfg.eos_token_id and not params.ignore_eos:
                result.finish_reason, result.ended_by_eos = "stop", True
                break
            counts[token] = counts.get(token, 0) + 1
            text = tokenizer.decode(result.token_ids)
            cut = stop_index(text, params.stop)
            if cut is not None:
                result.text, result.finish_reason = text[:cut], "stop"
                break
            result.text = text
            visible = safe_prefix_length(text, params.stop)
            if visible > shown:
                self.tokens_shown = len(result.token_ids)
                yield text[shown:visible]
                shown = visible
            if len(result.token_ids) < params.max_new_tokens:
                logits = session.feed([token])
        self.tokens_shown = len(result.token_ids)
        if len(result.text) > shown:
            yield result.text[shown:]


def stream(engine: Engine, tokenizer: Tokenizer, prompt_ids: list[int], params: SamplingParams) -> TokenStream:
    """Decode from `prompt_ids` (checked by encode_prompt): iterate for text pieces, then read `.result`."""
    return TokenStream(engine, tokenizer, prompt_ids, params)


def generate(engine: Engine, tokenizer: Tokenizer, prompt: str, params: SamplingParams) -> Generation:
    """Encode `prompt`, decode to the end and return the whole Generation."""
    return stream(engine, tokenizer, encode_prompt(engine, tokenizer, prompt, params), params).finish()


def sample_rng(seed: int | None, sample: int) -> np.random.Generator:
    """The random stream of a request's sample `sample`: sample 0 draws from `seed` itself (so the API and
    `tinyllm generate --seed` agree), sample i > 0 from the seed sequence (seed, i); fresh entropy without seed."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(seed if sample == 0 else [seed, sample])


def sample_streams(
    engine: Engine,
    tokenizer: Tokenizer,
    prompt_ids: list[int],
    params: SamplingParams,
    samples: int,
    deadline: float | None,
) -> list[TokenStream]:
    """`samples` independent generations from one prompt, each with its own session (KV cache) and rng, all
    ending by `deadline`."""
    return [
        TokenStream(engine, tokenizer, prompt_ids, params, sample_rng(params.seed, i), deadline) for i in range(samples)
    ]


def best_of(streams: list[TokenStream], n: int) -> list[Generation]:
    """Run every stream to its end; return the n results with the highest summed logprob (all, in sample
    order, when n is their number), as vLLM ranks best_of samples by cumulative logprob."""
    results = [s.finish() for s in streams]
    if n >= len(results):
        return results
    return sorted(results, key=lambda g: -g.cumulative_logprob)[:n]
