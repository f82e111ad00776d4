"""Request limits and validation for the OpenAI-compatible routes.

Every limit is a named constant here and is published in the OpenAPI document (core/openapi.py) and README.
Validation turns a parsed JSON body into a typed request or raises ApiError naming the field and the limit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import overload

from core.generate import SamplingParams

MAX_BODY_BYTES = 16 * 1024  # larger bodies get 413
MAX_PROMPT_CHARS = 4096  # before tokenizing; the context limit in tokens applies after
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64
MAX_MESSAGES = 32
MAX_JSON_DEPTH = 32  # deeper bodies are refused before validation
DEFAULT_MAX_TOKENS = 16
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**63 - 1
TIME_BUDGET_S = 10.0  # wall-clock budget of one generation; past it the completion ends with "length"
CHAT_ROLES = ("system", "user", "assistant")


class ApiError(Exception):
    """An error the client should see, in OpenAI's shape, with its HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


def invalid(param: str, message: str) -> ApiError:
    return ApiError(400, f"'{param}': {message}", param=param, code="invalid_value")


@dataclass(frozen=True)
class GenerationRequest:
    """A validated completion or chat request, ready for core.generate."""

    prompt: str
    params: SamplingParams
    stream: bool
    chat: bool


def parse_json(body: bytes) -> dict:
    """The body as a JSON object, or ApiError 400 (invalid UTF-8, invalid JSON, too deep, not an object)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})", code="invalid_json") from None
    if json_depth_exceeds(text, MAX_JSON_DEPTH):
        raise ApiError(400, f"request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
    try:
        data = json.loads(text, parse_constant=reject_constant)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers over Python's digit limit
        raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object", code="invalid_json")
    return data


def reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Bracket depth outside strings, counted without recursion (json.loads would recurse on it)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


@overload
def integer(body: dict, name: str, default: int, low: int, high: int) -> int: ...
@overload
def integer(body: dict, name: str, default: None, low: int, high: int) -> int | None: ...
def integer(body: dict, name: str, default: int | None, low: int, high: int) -> int | None:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"must be an integer from {low} to {high}")
    if not low <= value <= high:
        raise invalid(name, f"must be from {low} to {high}, got {value}")
    return value


def number(body: dict, name: str, default: float, low: float, high: float, low_open: bool = False) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise invalid(name, f"must be a number from {low} to {high}")
    if value > high or value < low or (low_open and value == low):
        bound = f"greater than {low}" if low_open else f"at least {low}"
        raise invalid(name, f"must be {bound} and at most {high}, got {value}")
    return float(value)


def stop_strings(body: dict) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop", "must be a string or a list of strings")
    if len(stops) > MAX_STOP_STRINGS:
        raise invalid("stop", f"at most {MAX_STOP_STRINGS} stop strings, got {len(stops)}")
    for s in stops:
        unicode_text("stop", s)
        if not 1 <= len(s) <= MAX_STOP_CHARS:
            raise invalid("stop", f"each stop string must have 1 to {MAX_STOP_CHARS} characters")
    return tuple(stops)


def prompt_text(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]  # OpenAI clients may send a one-element batch
    if not isinstance(prompt, str):
        raise invalid("prompt", "is required and must be a string")
    return checked_length("prompt", prompt)


def unicode_text(param: str, text: str) -> str:
    """JSON escapes can smuggle lone surrogates into a str; they are not text and no tokenizer takes them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(param, "must be valid Unicode (it contains a lone surrogate escape)") from None
    return text


def checked_length(param: str, text: str) -> str:
    unicode_text(param, text)
    if not text:
        raise invalid(param, "must not be empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise invalid(param, f"at most {MAX_PROMPT_CHARS} characters, got {len(text)}")
    return text


def chat_prompt(body: dict) -> str:
    """Render messages with the chat template: one `role: content` line each, then `assistant:`."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "is required and must be a non-empty list")
    if len(messages) > MAX_MESSAGES:
        raise invalid("messages", f"at most {MAX_MESSAGES} messages, got {len(messages)}")
    lines = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]", "must be an object with 'role' and 'content'")
        role, content = message.get("role"), message.get("content")
        if role not in CHAT_ROLES:
            raise invalid(f"messages[{i}].role", f"must be one of {', '.join(CHAT_ROLES)}")
        if not isinstance(content, str):
            raise invalid(f"messages[{i}].content", "must be a string")
        unicode_text(f"messages[{i}].content", content)
        lines.append(f"{role}: {content}\n")
    return checked_length("messages", "".join(lines) + "assistant:")


CHAT_STOPS = ("\nuser:", "\nsystem:")  # the model must not speak the next turn


def generation_request(body: dict, chat: bool, model_name: str, n_ctx: int, vocab_size: int) -> GenerationRequest:
    """Validate a /v1/completions (chat=False) or /v1/chat/completions body."""
    model = body.get("model")
    if model is not None and model != model_name:
        raise ApiError(404, f"'model': unknown model {str(model)[:64]!r}; this server has {model_name!r}",
                       param="model", code="model_not_found")
    integer(body, "n", 1, 1, 1)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream", "must be true or false")
    prompt = chat_prompt(body) if chat else prompt_text(body)
    max_tokens_name = "max_completion_tokens" if chat and "max_completion_tokens" in body else "max_tokens"
    params = SamplingParams(
        max_new_tokens=integer(body, max_tokens_name, DEFAULT_MAX_TOKENS, 1, n_ctx - 1),
        temperature=number(body, "temperature", 1.0, 0.0, MAX_TEMPERATURE),
        top_p=number(body, "top_p", 1.0, 0.0, 1.0, low_open=True),
        top_k=integer(body, "top_k", 0, 0, vocab_size),
        seed=integer(body, "seed", None, 0, MAX_SEED),
        stop=stop_strings(body) + (CHAT_STOPS if chat else ()),
        time_budget_s=TIME_BUDGET_S,
    )
    return GenerationRequest(prompt, params, stream, chat)
