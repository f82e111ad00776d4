"""OpenAI response objects: whole completions, and server-sent-event chunks for `stream: true`."""

from __future__ import annotations

import json
from typing import Iterator

from core.generate import Generation

DONE = b"data: [DONE]\n\n"


def usage(gen: Generation) -> dict:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.completion_tokens,
        "total_tokens": gen.prompt_tokens + gen.completion_tokens,
    }


def header(chat: bool, completion_id: str, created: int, model: str, chunk: bool) -> dict:
    if chat:
        obj = "chat.completion.chunk" if chunk else "chat.completion"
    else:
        obj = "text_completion"
    return {"id": completion_id, "object": obj, "created": created, "model": model}


def completion(chat: bool, completion_id: str, created: int, model: str, gen: Generation) -> dict:
    """The whole answer: `choices[0].text` (completions) or `choices[0].message` (chat)."""
    choice: dict = {"index": 0, "finish_reason": gen.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": gen.text}
    else:
        choice.update(text=gen.text, logprobs=None)
    return {**header(chat, completion_id, created, model, chunk=False), "choices": [choice], "usage": usage(gen)}


def chunk(chat: bool, completion_id: str, created: int, model: str, delta: dict | str,
          finish_reason: str | None = None) -> dict:
    """One streamed piece; `delta` is the chat delta object, or the text piece for completions."""
    choice: dict = {"index": 0, "finish_reason": finish_reason}
    if chat:
        choice["delta"] = delta
    else:
        choice.update(text=delta, logprobs=None)
    return {**header(chat, completion_id, created, model, chunk=True), "choices": [choice]}


def sse(obj: dict) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n\n"


def sse_events(chat: bool, completion_id: str, created: int, model: str,
               deltas: Iterator[str]) -> Iterator[bytes]:
    """Events for a streamed answer, ending with a chunk carrying finish_reason and `data: [DONE]`.

    Returns (as the generator's value) the final Generation, so the caller can log it.
    """
    if chat:
        yield sse(chunk(chat, completion_id, created, model, {"role": "assistant", "content": ""}))
    while True:
        try:
            text = next(deltas)
        except StopIteration as done:
            gen: Generation = done.value
            break
        yield sse(chunk(chat, completion_id, created, model, {"content": text} if chat else text))
    final = chunk(chat, completion_id, created, model, {} if chat else "", gen.finish_reason)
    final["usage"] = usage(gen)
    yield sse(final)
    yield DONE
    return gen
