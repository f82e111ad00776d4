"""The generic request machinery: limits, errors, the `Field` table, the fields every generation route shares.

Each request field is declared once, as a `Field` in its route's table (core/completion_route.py,
core/chat_route.py, core/tokenizer_route.py; the fields both generation routes share are here): its name, its
JSON schema with the bounds, its default and its doc. `read_fields` reads a body through a table,
core/openapi.py publishes the same entries as the request schemas' properties, and the fuzz tests draw their
values from them. A table of small frozen dataclasses rather than pydantic models (as vLLM's protocol.py
uses): pydantic would add ~10 MB to every package and its import time to every cold start, for ~25 fields;
the table does the job in plain code, with errors in OpenAI's shape that name the field and the limit.

A field that is absent or null takes its default. A field the server knows but does not implement (a route's
REFUSED) is a 400 naming it; so is any field the server does not know: nothing that could change the answer is
silently ignored. Every limit is a named constant here, published in the OpenAPI document and README.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.generate import SamplingParams

MAX_BODY_BYTES = 64 * 1024  # larger bodies get 413 (16 prompts of 256 token ids fit)
MAX_PROMPT_CHARS = 4096  # per prompt, before tokenizing; the context limit in tokens applies after
MAX_PROMPTS = 16  # prompts in one /v1/completions request
MAX_REQUEST_TOKENS = 4096  # sum over prompts of best_of x (prompt tokens + max_tokens): one request's work
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 64
MAX_MESSAGES = 32
MAX_JSON_DEPTH = 32  # deeper bodies are refused before validation
MAX_CHOICES = 4  # n and best_of
MAX_LOGPROBS = 5  # completions' logprobs, chat's top_logprobs
MAX_LOGIT_BIAS = 300  # entries
MAX_BIAS = 100.0
MAX_PENALTY = 2.0
MAX_METADATA = 16  # key/value pairs, as OpenAI allows
MAX_METADATA_CHARS = 512
MAX_USER_CHARS = 256
DEFAULT_MAX_TOKENS = 16
MAX_TEMPERATURE = 2.0
MAX_SEED = 2**63 - 1
TIME_BUDGET_S = 10.0  # wall-clock budget of one request; past it the completions end with "length"
FINISH_REASON = {"type": "string", "enum": ["stop", "length"]}  # of every choice, both routes


class ApiError(Exception):
    """An error the client should see, in OpenAI's shape, with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


def invalid(param: str, message: str, code: str = "invalid_value") -> ApiError:
    return ApiError(400, f"'{param}': {message}", param=param, code=code)


# -- the field table -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One request field: its JSON schema (OpenAPI 3.0, with the bounds), how a JSON value becomes a typed
    value (or an ApiError naming the field), the value when absent or null, and the doc."""

    name: str
    schema: dict
    parse: Callable[[Any], Any]
    default: Any
    doc: str

    def openapi(self) -> dict:
        scalar_default = isinstance(self.default, (bool, int, float, str))
        return {**self.schema, **({"default": self.default} if scalar_default else {}), "description": self.doc}


def is_integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(name: str, low: int, high: int, default: int | None, doc: str) -> Field:
    def parse(value):
        if not is_integer(value):
            raise invalid(name, f"must be an integer from {low} to {high}")
        if not low <= value <= high:
            raise invalid(name, f"must be from {low} to {high}, got {value}")
        return value

    return Field(name, {"type": "integer", "minimum": low, "maximum": high}, parse, default, doc)


def number(name: str, low: float, high: float, default: float, doc: str, low_open: bool = False) -> Field:
    def parse(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise invalid(name, f"must be a number from {low} to {high}")
        if value > high or value < low or (low_open and value == low):
            bound = f"greater than {low}" if low_open else f"at least {low}"
            raise invalid(name, f"must be {bound} and at most {high}, got {value}")
        return float(value)

    schema = {"type": "number", "minimum": low, "maximum": high, **({"exclusiveMinimum": True} if low_open else {})}
    return Field(name, schema, parse, default, doc)


def boolean(name: str, default: bool, doc: str) -> Field:
    def parse(value):
        if not isinstance(value, bool):
            raise invalid(name, "must be true or false")
        return value

    return Field(name, {"type": "boolean"}, parse, default, doc)


def unicode_text(param: str, text: str) -> str:
    """JSON escapes can smuggle lone surrogates into a str; they are not text and no tokenizer takes them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(param, "must be valid Unicode (it contains a lone surrogate escape)") from None
    return text


def checked_length(param: str, text: str, what: str = "") -> str:
    unicode_text(param, text)
    if not text:
        raise invalid(param, f"{what}must not be empty")
    if len(text) > MAX_PROMPT_CHARS:
        raise invalid(param, f"{what}at most {MAX_PROMPT_CHARS} characters, got {len(text)}")
    return text


def string(name: str, max_chars: int, doc: str) -> Field:
    def parse(value):
        if not isinstance(value, str) or len(value) > max_chars:
            raise invalid(name, f"must be a string of at most {max_chars} characters")
        return unicode_text(name, value)

    return Field(name, {"type": "string", "maxLength": max_chars}, parse, None, doc)


def parse_stop(value) -> tuple[str, ...]:
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


STOP_STRING = {"type": "string", "minLength": 1, "maxLength": MAX_STOP_CHARS}
STOP = Field(
    "stop",
    {"oneOf": [STOP_STRING, {"type": "array", "items": STOP_STRING, "maxItems": MAX_STOP_STRINGS}]},
    parse_stop,
    (),
    "the text ends before the first of these strings",
)


def logit_bias_field(vocab_size: int) -> Field:
    def parse(value):
        if not isinstance(value, dict):
            raise invalid("logit_bias", "must be an object mapping token ids (as strings) to numbers")
        if len(value) > MAX_LOGIT_BIAS:
            raise invalid("logit_bias", f"at most {MAX_LOGIT_BIAS} entries, got {len(value)}")
        pairs = []
        for key, bias in value.items():
            # The length check comes first: int() of a digit string over 4300 characters raises ValueError.
            if not (key.isascii() and key.isdigit() and len(key) <= len(str(vocab_size)) and int(key) < vocab_size):
                raise invalid("logit_bias", f"keys must be token ids from 0 to {vocab_size - 1}, got {key[:20]!r}")
            if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not -MAX_BIAS <= bias <= MAX_BIAS:
                raise invalid(
                    "logit_bias", f"token {key}: the bias must be a number from {-MAX_BIAS:g} to {MAX_BIAS:g}"
                )
            pairs.append((int(key), float(bias)))
        return tuple(sorted(pairs))

    schema = {
        "type": "object",
        "maxProperties": MAX_LOGIT_BIAS,
        "additionalProperties": {"type": "number", "minimum": -MAX_BIAS, "maximum": MAX_BIAS},
    }
    return Field(
        "logit_bias",
        schema,
        parse,
        (),
        (
            f"token id (0 to {vocab_size - 1}, as a string) -> bias added to its logit before sampling; "
            "-100 bans a token, 100 all but forces it"
        ),
    )


def parse_stream_options(value) -> bool:
    """`{"include_usage": bool}` -> include_usage."""
    if not isinstance(value, dict) or set(value) - {"include_usage"}:
        raise invalid("stream_options", "must be an object whose only key is include_usage")
    include = value.get("include_usage", False)
    if not isinstance(include, bool):
        raise invalid("stream_options", "include_usage must be true or false")
    return include


STREAM_OPTIONS = Field(
    "stream_options",
    {"type": "object", "additionalProperties": False, "properties": {"include_usage": {"type": "boolean"}}},
    parse_stream_options,
    False,
    "only with stream: include_usage true adds a last chunk with empty choices and the usage",
)


def parse_metadata(value) -> dict:
    if (
        not isinstance(value, dict)
        or len(value) > MAX_METADATA
        or not all(isinstance(v, str) and len(k) <= 64 and len(v) <= MAX_METADATA_CHARS for k, v in value.items())
    ):
        raise invalid(
            "metadata",
            f"must be an object of at most {MAX_METADATA} string values "
            f"(keys up to 64, values up to {MAX_METADATA_CHARS} characters)",
        )
    return value


def metadata_fields() -> tuple[Field, ...]:
    """Harmless metadata: accepted so clients that send it work, and it changes nothing in the answer."""
    return (
        string("user", MAX_USER_CHARS, "accepted and ignored: an end-user id changes nothing in the answer"),
        Field(
            "metadata",
            {
                "type": "object",
                "maxProperties": MAX_METADATA,
                "additionalProperties": {"type": "string", "maxLength": MAX_METADATA_CHARS},
            },
            parse_metadata,
            None,
            "accepted and ignored: tags change nothing in the answer",
        ),
        boolean("store", False, "accepted; this server stores nothing whatever its value"),
    )


def token_ids(param: str, value: list, vocab_size: int, n_ctx: int, what: str) -> tuple[int, ...]:
    if not value or len(value) > n_ctx:
        raise invalid(param, f"{what}must have 1 to {n_ctx} token ids, got {len(value)}")
    if not all(is_integer(t) and 0 <= t < vocab_size for t in value):
        raise invalid(param, f"{what}token ids must be integers from 0 to {vocab_size - 1}")
    return tuple(value)


MODEL = Field("model", {"type": "string"}, lambda name: name, None, "optional; must name this server's model if given")


def sampling_fields(n_ctx: int, vocab_size: int, min_tokens: int, max_tokens_doc: str) -> tuple[Field, ...]:
    return (
        MODEL,
        integer("max_tokens", min_tokens, n_ctx - 1, DEFAULT_MAX_TOKENS, max_tokens_doc),
        number("temperature", 0.0, MAX_TEMPERATURE, 1.0, "0 is greedy"),
        number("top_p", 0.0, 1.0, 1.0, "nucleus sampling: keep the likeliest tokens up to this mass", low_open=True),
        integer("top_k", 0, vocab_size, 0, "extension: keep the k likeliest tokens; 0 disables"),
        integer("seed", 0, MAX_SEED, None, "same seed and request, same response (every choice of it)"),
        STOP,
        number(
            "presence_penalty",
            -MAX_PENALTY,
            MAX_PENALTY,
            0.0,
            "subtracted from the logit of every token already generated (OpenAI's formula)",
        ),
        number(
            "frequency_penalty",
            -MAX_PENALTY,
            MAX_PENALTY,
            0.0,
            "times the count of each token already generated, subtracted from its logit (OpenAI's formula)",
        ),
        logit_bias_field(vocab_size),
        integer("n", 1, MAX_CHOICES, 1, "choices per prompt, each sampled with its own generation state"),
        boolean(
            "stream", False, "server-sent events ending with `data: [DONE]` (buffered on platforms that cannot stream)"
        ),
        STREAM_OPTIONS,
        *metadata_fields(),
    )


def read_fields(body: dict, fields: tuple[Field, ...], refused: dict[str, str]) -> dict[str, Any]:
    """Every field's typed value (its default when absent or null); 400 for a refused or unknown field."""
    known = {f.name for f in fields}
    for name, value in body.items():
        if name in known or value is None:
            continue
        if name in refused:
            raise invalid(name[:64], refused[name], code="unsupported_parameter")
        raise invalid(
            name[:64],
            "unrecognized request argument; /openapi.json lists the fields this server accepts",
            code="unknown_parameter",
        )
    return {f.name: f.default if body.get(f.name) is None else f.parse(body[f.name]) for f in fields}


# -- requests ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationRequest:
    """A validated completion or chat request: what a route's `parse` hands to core.serving.

    `prompts` are texts or token-id tuples; a chat request has one (the rendered messages). Each prompt gets
    `best_of` samples, of which the `n` with the highest summed logprob are returned (all when best_of == n).
    Every decoding option, the log-probabilities asked for included, travels in `params`.
    """

    prompts: tuple[str | tuple[int, ...], ...]
    params: SamplingParams
    n: int = 1
    best_of: int = 1
    echo: bool = False
    stream: bool = False
    include_usage: bool = False


def check_model(body: dict, model_name: str) -> None:
    model = body.get("model")
    if model is not None and model != model_name:
        raise ApiError(
            404,
            f"'model': unknown model {str(model)[:64]!r}; this server has {model_name!r}",
            param="model",
            code="model_not_found",
        )


def sampling_params(v: dict, **route_options: Any) -> SamplingParams:
    """The decoding options of a request: the values its table read for the shared fields, plus the options its
    route sets itself (max_new_tokens, stop, logprobs, prompt_logprobs, ...) under SamplingParams' names."""
    return SamplingParams(
        temperature=v["temperature"],
        top_p=v["top_p"],
        top_k=v["top_k"],
        seed=v["seed"],
        presence_penalty=v["presence_penalty"],
        frequency_penalty=v["frequency_penalty"],
        logit_bias=v["logit_bias"],
        **route_options,
    )


def read_request(
    body: dict, fields: tuple[Field, ...], refused: dict[str, str], model_name: str, required: tuple[str, str]
) -> dict:
    """What both generation routes check first: the model, the required field (name, message), every field read
    through the route's table (`refused`: the route's known but unimplemented fields), and stream_options only
    with stream."""
    check_model(body, model_name)
    if body.get(required[0]) is None:
        raise invalid(*required)
    values = read_fields(body, fields, refused)
    if body.get("stream_options") is not None and not values["stream"]:
        raise invalid("stream_options", "is only allowed with stream: true")
    return values
