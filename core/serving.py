"""Serving a generation request: `admit` applies every limit, `run` decodes and returns the body or the stream.

Between the HTTP shell (core.api) and decoding (core.generate): a route module's `parse` turns a body into a
`GenerationRequest`; `admit` tokenizes its prompts and checks what only the prompts' tokens can tell (each
prompt and max_tokens within the context, the whole request's work within MAX_REQUEST_TOKENS); `run` starts
every sample under one deadline and builds the route's response objects, whole or as server-sent events.
What differs between routes (choice and chunk shapes, logprobs shape, object names) is the route object's;
the order of events and the counts are the same for every route, so they are here once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from tokenizers import Tokenizer

from core.artifacts import LoadedModel
from core.generate import (
    ContextOverflow,
    Generation,
    TokenScores,
    TokenStream,
    best_of,
    check_fits,
    sample_streams,
)
from core.schema import MAX_REQUEST_TOKENS, TIME_BUDGET_S, ApiError, GenerationRequest, invalid

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Prompt:
    """One admitted prompt of a request: its token ids and its text (what `echo` shows)."""

    ids: list[int]
    text: str


@dataclass
class Tally:
    """Token counts of a response, filled in as its choices finish (the log line reads it at the end)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reasons: list[str] = field(default_factory=list)

    def count(self, gen: Generation) -> None:
        """Add a finished choice's tokens and finish_reason."""
        if gen.finish_reason is None:
            raise RuntimeError("a choice is counted before its generation has finished")
        self.completion_tokens += gen.completion_tokens
        self.finish_reasons.append(gen.finish_reason)

    def usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def log_fields(self) -> dict:
        reasons = sorted(set(self.finish_reasons))
        return {"completion_tokens": self.completion_tokens, "finish_reason": ",".join(reasons) or None}


class GenerationRoute(Protocol):
    """What serving needs of a generation route (core.completion_route, core.chat_route): its names and the
    shapes of its choices, stream deltas and logprobs."""

    id_prefix: str
    object_name: str
    chunk_object_name: str
    shows_end_of_text: bool  # whether the end-of-text token that stops a choice is in its logprobs

    def choice(
        self, tokenizer: Tokenizer, index: int, prompt: Prompt, gen: Generation, request: GenerationRequest
    ) -> dict:
        """A whole response's choice."""
        ...

    def opening(self, index: int) -> dict | None:
        """The choice of a stream's first chunk for a choice, before any text (None: no such chunk)."""
        ...

    def delta(self, index: int, piece: str | None) -> dict:
        """A stream chunk's choice carrying `piece` of text (None: none), before logprobs and finish_reason."""
        ...

    def logprobs(
        self, tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int, base: int
    ) -> dict:
        """The logprobs block of tokens ids[start:end], whose text starts at character `base` of the choice."""
        ...


# -- admission --------------------------------------------------------------------------------------------------
def admit(request: GenerationRequest, loaded: LoadedModel) -> list[Prompt]:
    """The prompts to run, tokenized, once every limit holds; else ApiError 400 naming the field to change."""
    max_tokens = request.params.max_new_tokens
    if max_tokens == 0 and not request.echo:
        raise invalid("max_tokens", "must be at least 1 (0 is allowed with echo: true, to score the prompt only)")
    prompts = [prompt_of(p, max_tokens, loaded) for p in request.prompts]
    check_request_tokens([len(p.ids) for p in prompts], request.best_of, max_tokens)
    return prompts


def prompt_of(prompt: str | tuple[int, ...], max_tokens: int, loaded: LoadedModel) -> Prompt:
    """Token ids and text of one prompt, checked against the context (400 naming prompt or max_tokens)."""
    tokenizer, n_ctx = loaded.tokenizer, loaded.model.cfg.n_positions
    if isinstance(prompt, str):
        ids, text = tokenizer.encode(prompt).ids, prompt
    else:
        ids, text = list(prompt), tokenizer.decode(list(prompt), skip_special_tokens=False)
    try:
        check_fits(loaded.model, ids, max_tokens)
    except ContextOverflow as exc:
        param = "prompt" if exc.prompt_tokens >= n_ctx or not ids else "max_tokens"
        raise ApiError(400, f"'{param}': {exc}", param=param, code="context_length_exceeded") from None
    return Prompt(ids, text)


def check_request_tokens(prompt_lengths: list[int], best_of: int, max_tokens: int) -> None:
    """One request's work, sum over prompts of best_of x (prompt tokens + max_tokens), within MAX_REQUEST_TOKENS."""
    work = best_of * (sum(prompt_lengths) + len(prompt_lengths) * max_tokens)
    if work > MAX_REQUEST_TOKENS:
        param = "prompt" if best_of * sum(prompt_lengths) > MAX_REQUEST_TOKENS else "max_tokens"
        raise invalid(
            param,
            f"this request needs {work} tokens of work (sum over prompts of best_of x (prompt "
            f"tokens + max_tokens)); the limit is {MAX_REQUEST_TOKENS}: send fewer or shorter "
            "prompts, or lower max_tokens or best_of",
            code="request_too_large",
        )


# -- running ----------------------------------------------------------------------------------------------------
def run(
    route: GenerationRoute, request: GenerationRequest, prompts: list[Prompt], loaded: LoadedModel, request_id: str
) -> tuple[Tally, dict | Iterator[bytes]]:
    """Decode every choice of an admitted request (best_of samples per prompt, n kept) under one deadline: the
    whole response object, or (stream) its server-sent events. The tally holds the counts once the object is
    built or the events are all sent."""
    model, tokenizer = loaded.model, loaded.tokenizer
    deadline = time.monotonic() + TIME_BUDGET_S  # one budget for every choice of the request
    streams = [sample_streams(model, tokenizer, p.ids, request.params, request.best_of, deadline) for p in prompts]
    tally = Tally(prompt_tokens=sum(len(p.ids) for p in prompts))
    head = {
        "id": route.id_prefix + request_id,
        "object": route.object_name,
        "created": int(time.time()),
        "model": loaded.name,
    }
    if request.stream:
        choices = [
            (i * request.n + j, prompt, stream)
            for i, (prompt, samples) in enumerate(zip(prompts, streams, strict=True))
            for j, stream in enumerate(samples)
        ]
        return tally, sse_events(route, tokenizer, request, head, choices, tally)
    choices = []
    for i, (prompt, samples) in enumerate(zip(prompts, streams, strict=True)):
        for j, gen in enumerate(best_of(samples, request.n)):
            tally.count(gen)
            choices.append(route.choice(tokenizer, i * request.n + j, prompt, gen, request))
    return tally, {**head, "choices": choices, "usage": tally.usage()}


def sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


def sse_events(
    route: GenerationRoute,
    tokenizer: Tokenizer,
    request: GenerationRequest,
    head: dict,
    choices: list[tuple[int, Prompt, TokenStream]],
    tally: Tally,
) -> Iterator[bytes]:
    """Events for a streamed answer, one choice after the other: the route's opening chunk, pieces of text with
    the logprobs of the tokens decoded since the previous piece (the echoed prompt first, with echo), a chunk
    with the finish_reason, then (with include_usage) a chunk with empty choices and the usage, and
    `data: [DONE]`. `tally` holds the counts once the events are sent. `head`: the response's id, object, created
    and model, whose object each chunk names as the route's chunk object."""
    head = {**head, "object": route.chunk_object_name}
    usage_field = {"usage": None} if request.include_usage else {}
    with_logprobs = request.params.logprobs is not None

    def shown(gen: Generation, tokens: int) -> int:
        """How many of gen's first `tokens` tokens the route's logprobs show."""
        return tokens if route.shows_end_of_text else min(tokens, gen.text_tokens)

    def chunk(choice: dict) -> bytes:
        return sse({**head, "choices": [choice], **usage_field})

    def piece(index: int, text: str | None, block: dict | None = None, finish: str | None = None) -> bytes:
        return chunk({**route.delta(index, text), "logprobs": block, "finish_reason": finish})

    def block(ids: list[int], scores: TokenScores | None, start: int, end: int, base: int) -> dict | None:
        if not with_logprobs:
            return None
        if scores is None:
            raise RuntimeError("echo with logprobs needs the prompt scored: set prompt_logprobs")
        return route.logprobs(tokenizer, ids, scores, start, end, base)

    for index, prompt, stream in choices:
        opening = route.opening(index)
        if opening is not None:
            yield chunk(opening)
        base = len(prompt.text) if request.echo else 0
        echoed, sent = not request.echo, 0
        for text in stream:
            if not echoed:  # the prompt is scored before the first piece: send it, with its logprobs, first
                yield piece(index, prompt.text, block(prompt.ids, stream.so_far.prompt_scores, 0, len(prompt.ids), 0))
                echoed = True
            gen = stream.so_far
            end = shown(gen, stream.tokens_shown)
            yield piece(index, text, block(gen.token_ids, gen.scores, sent, end, base))
            sent = end
        result = stream.result
        if not echoed:
            yield piece(index, prompt.text, block(prompt.ids, result.prompt_scores, 0, len(prompt.ids), 0))
        tally.count(result)
        end = shown(result, result.completion_tokens)
        rest = block(result.token_ids, result.scores, sent, end, base) if sent < end else None
        yield piece(index, None, rest, result.finish_reason)
    if request.include_usage:
        yield sse({**head, "choices": [], "usage": tally.usage()})
    yield DONE
