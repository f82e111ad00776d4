"""POST /v1/completions: its field table, `parse`, its choices, stream deltas and logprobs, its OpenAPI pieces.

Logprobs come in OpenAI's legacy shape (`tokens`, `token_logprobs`, `top_logprobs`, `text_offset`). Each
`top_logprobs` entry holds the requested number of likeliest tokens plus the chosen one, so it has up to
logprobs + 1 entries, as OpenAI documents. Every value comes from the raw model distribution
(core.generate.TokenScores). With `echo`, the prompt leads the text and the logprobs (its first token's
logprob is null).
"""

from __future__ import annotations

from tokenizers import Tokenizer

from core.generate import Generation, TokenScores
from core.schema import (
    FINISH_REASON,
    MAX_CHOICES,
    MAX_LOGPROBS,
    MAX_PROMPT_CHARS,
    MAX_PROMPTS,
    Field,
    GenerationRequest,
    boolean,
    checked_length,
    integer,
    invalid,
    is_integer,
    read_request,
    sampling_fields,
    sampling_params,
    token_ids,
)
from core.serving import Prompt
from core.tokens import token_text

# Known OpenAI fields this route does not implement: a 400 naming the field, never a quietly different answer.
REFUSED = {"suffix": "is not supported: this model only continues text, it cannot fill in before a suffix"}


def fields(n_ctx: int, vocab_size: int) -> tuple[Field, ...]:
    """The field table of /v1/completions."""
    budget = f"prompt tokens + max_tokens must fit the context of {n_ctx} tokens"
    return (
        prompt_field(vocab_size, n_ctx),
        *sampling_fields(n_ctx, vocab_size, 0, budget + "; 0 only with echo (score the prompt)"),
        integer(
            "logprobs",
            0,
            MAX_LOGPROBS,
            None,
            (
                "log-probabilities of each token under the raw model (before penalties, bias, temperature, "
                "top-k/top-p), with this many likeliest alternatives; null for none"
            ),
        ),
        boolean("echo", False, "the prompt is part of text and logprobs (its first token's logprob is null)"),
        integer(
            "best_of",
            1,
            MAX_CHOICES,
            None,
            "samples per prompt (at least n); the n with the highest summed logprob are returned",
        ),
    )


def prompt_field(vocab_size: int, n_ctx: int) -> Field:
    """A string, a list of strings, a list of token ids or a list of token-id lists; each is its own prompt."""
    shapes = "a string, a list of strings, a list of token ids or a list of token-id lists"

    def parse(value) -> tuple[str | tuple[int, ...], ...]:
        if isinstance(value, str):
            return (checked_length("prompt", value),)
        if not isinstance(value, list) or not value:
            raise invalid("prompt", f"is required and must be {shapes}")
        if all(is_integer(v) for v in value):
            return (token_ids("prompt", value, vocab_size, n_ctx, ""),)
        if len(value) > MAX_PROMPTS:
            raise invalid("prompt", f"at most {MAX_PROMPTS} prompts per request, got {len(value)}")
        if all(isinstance(v, str) for v in value):
            return tuple(checked_length("prompt", v, f"prompt {i}: ") for i, v in enumerate(value))
        if all(isinstance(v, list) for v in value):
            return tuple(token_ids("prompt", v, vocab_size, n_ctx, f"prompt {i}: ") for i, v in enumerate(value))
        raise invalid("prompt", f"must be {shapes} (not a mix)")

    text = {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS}
    ids = {
        "type": "array",
        "minItems": 1,
        "maxItems": n_ctx,
        "items": {"type": "integer", "minimum": 0, "maximum": vocab_size - 1},
    }
    schema = {
        "oneOf": [
            text,
            {"type": "array", "minItems": 1, "maxItems": MAX_PROMPTS, "items": text},
            ids,
            {"type": "array", "minItems": 1, "maxItems": MAX_PROMPTS, "items": ids},
        ]
    }
    return Field(
        "prompt",
        schema,
        parse,
        None,
        f"{shapes}; each prompt is its own choice (index = prompt x n + sample), at most {MAX_PROMPTS}",
    )


class CompletionRoute:
    """/v1/completions for one model's context and vocabulary."""

    path = "/v1/completions"
    id_prefix = "cmpl-"
    object_name = chunk_object_name = "text_completion"
    # The end-of-text token that stops a choice is in its logprobs (`tokens` shows it as <|endoftext|>; `text`
    # does not), as vLLM's completions return every output token (vllm-project/vllm,
    # vllm/entrypoints/openai/serving_completion.py, request_output_to_completion_response):
    # lm-evaluation-harness's loglikelihood drops the last entry as the generated token.
    shows_end_of_text = True
    # OpenAPI: the operation's summary, the request's required field, the schemas' names, choices per response
    summary = "Complete prompts"
    required = "prompt"
    request_schema_name, response_schema_name = "CompletionRequest", "Completion"
    max_choices = MAX_CHOICES * MAX_PROMPTS

    def __init__(self, n_ctx: int, vocab_size: int):
        self.fields = fields(n_ctx, vocab_size)

    def parse(self, body: dict, model_name: str) -> GenerationRequest:
        """Validate a /v1/completions body read through its field table."""
        v = read_request(body, self.fields, REFUSED, model_name, ("prompt", "is required"))
        n, best_of = v["n"], v["n"] if v["best_of"] is None else v["best_of"]
        if best_of < n:
            raise invalid("best_of", f"must be at least n ({n}), got {best_of}")
        if v["stream"] and best_of > n:
            raise invalid("best_of", "cannot be more than n when streaming (the best are known only at the end)")
        prompt_logprobs = v["logprobs"] if v["echo"] else None  # an echoed prompt is scored like the completion
        params = sampling_params(
            v, max_new_tokens=v["max_tokens"], stop=v["stop"], logprobs=v["logprobs"], prompt_logprobs=prompt_logprobs
        )
        return GenerationRequest(v["prompt"], params, n, best_of, v["echo"], v["stream"], v["stream_options"])

    def choice(
        self, tokenizer: Tokenizer, index: int, prompt: Prompt, gen: Generation, request: GenerationRequest
    ) -> dict:
        """A choice; with echo the prompt leads its text (and its logprobs)."""
        prefix = prompt.text if request.echo else ""
        choice = {"index": index, "text": prefix + gen.text, "finish_reason": gen.finish_reason, "logprobs": None}
        if request.params.logprobs is not None:
            block = legacy_logprobs(tokenizer, gen.token_ids, gen.scores, 0, gen.completion_tokens, len(prefix))
            if request.echo:
                block = joined(echo_logprobs(tokenizer, prompt, gen), block)
            choice["logprobs"] = block
        return choice

    def opening(self, index: int) -> None:
        return None  # a completion's stream starts with its text

    def delta(self, index: int, piece: str | None) -> dict:
        return {"index": index, "text": piece or ""}

    def logprobs(
        self, tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int, base: int
    ) -> dict:
        return legacy_logprobs(tokenizer, ids, scores, start, end, base)

    @staticmethod
    def choice_schema() -> dict:
        props = {
            "index": {"type": "integer"},
            "text": {"type": "string"},
            "finish_reason": FINISH_REASON,
            "logprobs": legacy_logprobs_schema(),
        }
        return {"type": "object", "required": ["index", "text", "finish_reason"], "properties": props}


# -- logprobs in the legacy shape -------------------------------------------------------------------------------
def text_offsets(tokenizer: Tokenizer, ids: list[int], start: int, end: int, base: int) -> list[int]:
    """Character offset, in a text that has ids' text at `base`, of each token ids[start:end]: the length of
    everything decoded before it (a partial character before it is not counted)."""
    return [
        base + len(tokenizer.decode(ids[:i], skip_special_tokens=False).rstrip("\ufffd")) for i in range(start, end)
    ]


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
    """The legacy shape for an echoed prompt, from the scores a generation made with prompt_logprobs holds."""
    if gen.prompt_scores is None:
        raise RuntimeError("echo with logprobs needs the prompt scored: set prompt_logprobs")
    return legacy_logprobs(tokenizer, prompt.ids, gen.prompt_scores, 0, len(prompt.ids), 0)


def joined(first: dict, second: dict) -> dict:
    return {key: first[key] + second[key] for key in first}


def legacy_logprobs_schema() -> dict:
    number_or_null = {"type": "number", "nullable": True}
    return {
        "type": "object",
        "nullable": True,
        "required": ["tokens", "token_logprobs", "top_logprobs", "text_offset"],
        "properties": {
            "tokens": {"type": "array", "items": {"type": "string"}},
            "token_logprobs": {"type": "array", "items": number_or_null},
            "top_logprobs": {
                "type": "array",
                "items": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"}},
            },
            "text_offset": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        },
    }
