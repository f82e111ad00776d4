"""OpenAI response objects: whole completions, server-sent-event chunks for `stream: true`, and logprobs.

Completions carry logprobs in OpenAI's legacy shape (`tokens`, `token_logprobs`, `top_logprobs`,
`text_offset`); chat in the chat shape (`content[]` of `token`, `logprob`, `bytes`, `top_logprobs[]`). Each
`top_logprobs` entry of the legacy shape holds the requested number of likeliest tokens plus the chosen one,
so it has up to logprobs + 1 entries, as OpenAI documents. Every value comes from the raw model distribution
(core.generate.TokenScores).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from tokenizers import Tokenizer

from core.generate import Generation, TokenScores, TokenStream

DONE = b"data: [DONE]\n\n"


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


@dataclass(frozen=True)
class Prompt:
    """One prompt of a request: its token ids and its text (what `echo` shows)."""

    ids: list[int]
    text: str


# -- tokens as text and bytes ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet (bytes_to_unicode in openai/gpt-2's encoder.py, which `tokenizers`' ByteLevel
    uses), from character back to byte: printable bytes stand for themselves, the others for 256 + n."""
    byte_values = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    code_points, shifted = list(byte_values), 0
    for b in range(256):
        if b not in byte_values:
            byte_values.append(b)
            code_points.append(256 + shifted)
            shifted += 1
    return {chr(c): b for b, c in zip(byte_values, code_points, strict=True)}


def token_text(tokenizer: Tokenizer, token: int) -> str:
    """A token on its own as text (a partial UTF-8 character shows as U+FFFD; special tokens by name)."""
    return tokenizer.decode([token], skip_special_tokens=False)


def token_bytes(tokenizer: Tokenizer, token: int) -> list[int]:
    """A token's exact bytes, also when it holds only part of a UTF-8 character."""
    piece, decoder = tokenizer.id_to_token(token), byte_decoder()
    if piece is None:
        raise ValueError(f"token id {token} is not in the tokenizer's vocabulary")
    if all(ch in decoder for ch in piece):
        return [decoder[ch] for ch in piece]
    return list(piece.encode("utf-8"))


def text_offsets(tokenizer: Tokenizer, ids: list[int], start: int, end: int, base: int) -> list[int]:
    """Character offset, in a text that has ids' text at `base`, of each token ids[start:end]: the length of
    everything decoded before it (a partial character before it is not counted)."""
    return [
        base + len(tokenizer.decode(ids[:i], skip_special_tokens=False).rstrip("\ufffd")) for i in range(start, end)
    ]


# -- logprobs ---------------------------------------------------------------------------------------------------
def legacy_logprobs(tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int, base: int) -> dict:
    """The legacy completions shape for tokens ids[start:end] (scored by `scores`), text at offset `base`."""
    tokens, top = [], []
    for i in range(start, end):
        tokens.append(token_text(tokenizer, ids[i]))
        if scores.logprobs[i] is None:
            top.append(None)
            continue
        alternatives = {}
        for token, logprob in scores.top[i]:
            alternatives.setdefault(token_text(tokenizer, token), logprob)
        alternatives.setdefault(tokens[-1], scores.logprobs[i])
        top.append(alternatives)
    return {
        "tokens": tokens,
        "token_logprobs": scores.logprobs[start:end],
        "top_logprobs": top,
        "text_offset": text_offsets(tokenizer, ids, start, end, base),
    }


def echo_logprobs(tokenizer: Tokenizer, prompt: Prompt, gen: Generation) -> dict:
    """The legacy shape for an echoed prompt, from the scores a generation made with score_prompt holds."""
    if gen.prompt_scores is None:
        raise RuntimeError("echo with logprobs needs the prompt scored: generate it with score_prompt=True")
    return legacy_logprobs(tokenizer, prompt.ids, gen.prompt_scores, 0, len(prompt.ids), 0)


def joined(first: dict, second: dict) -> dict:
    return {key: first[key] + second[key] for key in first}


def chat_logprobs(tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int) -> dict:
    """The chat shape for tokens ids[start:end]."""

    def entry(token: int, logprob: float | None) -> dict:
        return {"token": token_text(tokenizer, token), "logprob": logprob, "bytes": token_bytes(tokenizer, token)}

    content = [
        {**entry(ids[i], scores.logprobs[i]), "top_logprobs": [entry(t, lp) for t, lp in scores.top[i]]}
        for i in range(start, end)
    ]
    return {"content": content, "refusal": None}


# -- whole responses --------------------------------------------------------------------------------------------
def header(chat: bool, completion_id: str, created: int, model: str, chunk: bool) -> dict:
    if chat:
        obj = "chat.completion.chunk" if chunk else "chat.completion"
    else:
        obj = "text_completion"
    return {"id": completion_id, "object": obj, "created": created, "model": model}


def text_choice(
    tokenizer: Tokenizer, index: int, prompt: Prompt, gen: Generation, echo: bool, logprobs: int | None
) -> dict:
    """A /v1/completions choice; with echo the prompt leads its text (and its logprobs)."""
    prefix = prompt.text if echo else ""
    choice = {"index": index, "text": prefix + gen.text, "finish_reason": gen.finish_reason, "logprobs": None}
    if logprobs is not None:
        block = legacy_logprobs(tokenizer, gen.token_ids, gen.scores, 0, gen.completion_tokens, len(prefix))
        if echo:
            block = joined(echo_logprobs(tokenizer, prompt, gen), block)
        choice["logprobs"] = block
    return choice


def chat_choice(tokenizer: Tokenizer, index: int, gen: Generation, logprobs: int | None) -> dict:
    choice = {
        "index": index,
        "message": {"role": "assistant", "content": gen.text},
        "finish_reason": gen.finish_reason,
        "logprobs": None,
    }
    if logprobs is not None:
        choice["logprobs"] = chat_logprobs(tokenizer, gen.token_ids, gen.scores, 0, gen.completion_tokens)
    return choice


def completion(chat: bool, completion_id: str, created: int, model: str, choices: list[dict], tally: Tally) -> dict:
    return {**header(chat, completion_id, created, model, chunk=False), "choices": choices, "usage": tally.usage()}


# -- streams ----------------------------------------------------------------------------------------------------
def sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


@dataclass(frozen=True)
class StreamedChoice:
    index: int
    prompt: Prompt
    stream: TokenStream


@dataclass(frozen=True)
class StreamSpec:
    """What the events of one streamed response need besides its choices."""

    chat: bool
    completion_id: str
    created: int
    model: str
    echo: bool
    logprobs: int | None
    include_usage: bool


def sse_events(tokenizer: Tokenizer, spec: StreamSpec, choices: list[StreamedChoice], tally: Tally) -> Iterator[bytes]:
    """Events for a streamed answer, one choice after the other: pieces of text with the logprobs of the tokens
    decoded since the previous piece, a chunk with the finish_reason, then (with include_usage) a chunk with
    empty choices and the usage, and `data: [DONE]`. `tally` holds the counts once the events are sent."""
    usage_field = {"usage": None} if spec.include_usage else {}

    def chunk(index: int, piece: str | None, block: dict | None = None, finish: str | None = None) -> bytes:
        choice: dict = {"index": index}
        if spec.chat:
            choice["delta"] = {} if piece is None else {"content": piece}
        else:
            choice["text"] = piece or ""
        choice.update(logprobs=block, finish_reason=finish)
        return sse(
            {
                **header(spec.chat, spec.completion_id, spec.created, spec.model, chunk=True),
                "choices": [choice],
                **usage_field,
            }
        )

    def block(gen: Generation, start: int, end: int, base: int) -> dict | None:
        if spec.logprobs is None:
            return None
        if spec.chat:
            return chat_logprobs(tokenizer, gen.token_ids, gen.scores, start, end)
        return legacy_logprobs(tokenizer, gen.token_ids, gen.scores, start, end, base)

    def echo_block(prompt: Prompt, gen: Generation) -> dict | None:
        if spec.logprobs is None:
            return None
        return echo_logprobs(tokenizer, prompt, gen)

    for choice in choices:
        stream, prompt = choice.stream, choice.prompt
        if spec.chat:
            yield sse(
                {
                    **header(True, spec.completion_id, spec.created, spec.model, chunk=True),
                    "choices": [
                        {
                            "index": choice.index,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                    **usage_field,
                }
            )
        base = len(prompt.text) if spec.echo else 0
        echoed, sent = not spec.echo, 0
        for piece in stream:
            if not echoed:  # the prompt is scored before the first piece: send it, with its logprobs, first
                yield chunk(choice.index, prompt.text, echo_block(prompt, stream.so_far))
                echoed = True
            yield chunk(choice.index, piece, block(stream.so_far, sent, stream.tokens_shown, base))
            sent = stream.tokens_shown
        result = stream.result
        if not echoed:
            yield chunk(choice.index, prompt.text, echo_block(prompt, result))
        tally.count(result)
        rest = block(result, sent, result.completion_tokens, base) if sent < result.completion_tokens else None
        yield chunk(choice.index, None, rest, result.finish_reason)
    if spec.include_usage:
        yield sse(
            {
                **header(spec.chat, spec.completion_id, spec.created, spec.model, chunk=True),
                "choices": [],
                "usage": tally.usage(),
            }
        )
    yield DONE
