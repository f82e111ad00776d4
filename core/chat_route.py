"""POST /v1/chat/completions: its chat template, field table, `parse`, choices, stream deltas, logprobs, OpenAPI.

The chat template is written once, as TURN and GENERATION_PROMPT: `render_chat` fills it in Python and
CHAT_TEMPLATE is the same template in Jinja, as tokenizer_config.json carries it (GET /tokenizer_info).
Logprobs come in the chat shape (`content[]` of `token`, `logprob`, `bytes`, `top_logprobs[]`), every value from
the raw model distribution (core.generate.TokenScores).
"""

from __future__ import annotations

from tokenizers import Tokenizer

from core.generate import Generation, TokenScores
from core.schema import (
    FINISH_REASON,
    MAX_CHOICES,
    MAX_LOGPROBS,
    MAX_MESSAGES,
    Field,
    GenerationRequest,
    boolean,
    checked_length,
    integer,
    invalid,
    read_request,
    sampling_fields,
    sampling_params,
    unicode_text,
)
from core.serving import Prompt
from core.tokens import token_bytes, token_text

TURN = "{role}: {content}\n"  # one message
GENERATION_PROMPT = "assistant:"  # after the messages: the model answers as the assistant
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    + TURN.format(role="{{ message['role'] }}", content="{{ message['content'] }}")
    + "{% endfor %}{% if add_generation_prompt %}"
    + GENERATION_PROMPT
    + "{% endif %}"
)
CHAT_ROLES = ("system", "user", "assistant")
CHAT_STOPS = ("\nuser:", "\nsystem:")  # the model must not speak the next turn

# Known OpenAI fields this route does not implement: a 400 naming the field, never a quietly different answer.
TOOLS = "tool and function calling are not supported by this model"
REFUSED = {
    "tools": TOOLS,
    "tool_choice": TOOLS,
    "functions": TOOLS,
    "function_call": TOOLS,
    "parallel_tool_calls": TOOLS,
    "audio": "audio output is not supported by this model",
    "modalities": "only text is supported by this model",
    "prediction": "predicted outputs are not supported by this model",
    "reasoning_effort": "this model does not reason",
    "web_search_options": "this model has no web search",
}


def message_text(i: int, content) -> str:
    """A message's content: a string, or a list of text parts (joined by newlines); other parts are refused."""
    if isinstance(content, str):
        return unicode_text(f"messages[{i}].content", content)
    if not isinstance(content, list):
        raise invalid(f"messages[{i}].content", "must be a string or a list of text parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            raise invalid(
                f"messages[{i}].content",
                f"part {j} of type {str(kind)[:32]!r} is not supported by this model (text only)",
                code="unsupported_content",
            )
        if not isinstance(part.get("text"), str) or set(part) - {"type", "text"}:
            raise invalid(f"messages[{i}].content", f"part {j} must be {{'type': 'text', 'text': <string>}}")
        texts.append(unicode_text(f"messages[{i}].content", part["text"]))
    return "\n".join(texts)


def render_chat(value) -> str:
    """Render messages with the chat template (TURN each, then GENERATION_PROMPT), refusing what it cannot show."""
    if not isinstance(value, list) or not value:
        raise invalid("messages", "is required and must be a non-empty list")
    if len(value) > MAX_MESSAGES:
        raise invalid("messages", f"at most {MAX_MESSAGES} messages, got {len(value)}")
    lines = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise invalid(f"messages[{i}]", "must be an object with 'role' and 'content'")
        for key in set(message) - {"role", "content"}:
            raise invalid(f"messages[{i}].{str(key)[:32]}", "is not supported: messages carry only role and content")
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise invalid(f"messages[{i}].role", f"must be one of {', '.join(CHAT_ROLES)}")
        lines.append(TURN.format(role=role, content=message_text(i, message.get("content"))))
    return checked_length("messages", "".join(lines) + GENERATION_PROMPT)


MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["role", "content"],
    "additionalProperties": False,
    "properties": {
        "role": {"type": "string", "enum": list(CHAT_ROLES)},
        "content": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type", "text"],
                        "additionalProperties": False,
                        "properties": {"type": {"type": "string", "enum": ["text"]}, "text": {"type": "string"}},
                    },
                },
            ]
        },
    },
}
MESSAGES = Field(
    "messages",
    {"type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": MESSAGE_SCHEMA},
    render_chat,
    None,
    "system/user/assistant messages; text content only",
)


def parse_response_format(value) -> str:
    if value != {"type": "text"}:
        raise invalid(
            "response_format", "only {'type': 'text'} is supported by this model", code="unsupported_parameter"
        )
    return "text"


RESPONSE_FORMAT = Field(
    "response_format",
    {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {"type": {"type": "string", "enum": ["text"]}},
    },
    parse_response_format,
    "text",
    "only {'type': 'text'}",
)


def fields(n_ctx: int, vocab_size: int) -> tuple[Field, ...]:
    """The field table of /v1/chat/completions."""
    return (
        MESSAGES,
        *sampling_fields(n_ctx, vocab_size, 1, f"prompt tokens + max_tokens must fit the context of {n_ctx} tokens"),
        integer("max_completion_tokens", 1, n_ctx - 1, None, "the same as max_tokens (give one of them)"),
        boolean("logprobs", False, "log-probabilities of each token under the raw model, in the chat shape"),
        integer("top_logprobs", 0, MAX_LOGPROBS, None, "with logprobs: this many likeliest alternatives per token"),
        RESPONSE_FORMAT,
    )


class ChatRoute:
    """/v1/chat/completions for one model's context and vocabulary."""

    path = "/v1/chat/completions"
    id_prefix = "chatcmpl-"
    object_name, chunk_object_name = "chat.completion", "chat.completion.chunk"
    # logprobs.content is "a list of message content tokens" (OpenAI's API reference, ChatCompletion
    # choices[].logprobs: developers.openai.com/api/reference/python/resources/chat/subresources/completions/).
    # The end-of-text token that stops a choice is not content, so it is left out (vLLM lists every output token
    # there) and the entries' bytes join to exactly the message's content; usage.completion_tokens counts it.
    shows_end_of_text = False
    # OpenAPI: the operation's summary, the request's required field, the schemas' names, choices per response
    summary = "Answer a chat"
    required = "messages"
    request_schema_name, response_schema_name = "ChatRequest", "ChatCompletion"
    max_choices = MAX_CHOICES

    def __init__(self, n_ctx: int, vocab_size: int):
        self.fields = fields(n_ctx, vocab_size)

    def parse(self, body: dict, model_name: str) -> GenerationRequest:
        """Validate a /v1/chat/completions body read through its field table."""
        required = ("messages", "is required and must be a non-empty list")
        v = read_request(body, self.fields, REFUSED, model_name, required)
        if body.get("max_tokens") is not None and v["max_completion_tokens"] is not None:
            raise invalid("max_completion_tokens", "give either max_tokens or max_completion_tokens, not both")
        if v["top_logprobs"] is not None and not v["logprobs"]:
            raise invalid("top_logprobs", "needs logprobs: true")
        max_tokens = v["max_completion_tokens"] if v["max_completion_tokens"] is not None else v["max_tokens"]
        logprobs = (v["top_logprobs"] or 0) if v["logprobs"] else None
        params = sampling_params(v, max_new_tokens=max_tokens, stop=v["stop"] + CHAT_STOPS, logprobs=logprobs)
        return GenerationRequest((v["messages"],), params, v["n"], v["n"], False, v["stream"], v["stream_options"])

    def choice(
        self, tokenizer: Tokenizer, index: int, prompt: Prompt, gen: Generation, request: GenerationRequest
    ) -> dict:
        choice = {
            "index": index,
            "message": {"role": "assistant", "content": gen.text},
            "finish_reason": gen.finish_reason,
            "logprobs": None,
        }
        if request.params.logprobs is not None:
            choice["logprobs"] = chat_logprobs(tokenizer, gen.token_ids, gen.scores, 0, gen.text_tokens)
        return choice

    def opening(self, index: int) -> dict:
        """The first chunk of each choice names the role, as OpenAI's do."""
        return {"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}

    def delta(self, index: int, piece: str | None) -> dict:
        return {"index": index, "delta": {} if piece is None else {"content": piece}}

    def logprobs(
        self, tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int, base: int
    ) -> dict:
        return chat_logprobs(tokenizer, ids, scores, start, end)

    @staticmethod
    def choice_schema() -> dict:
        message = {
            "type": "object",
            "required": ["role", "content"],
            "properties": {"role": {"type": "string", "enum": ["assistant"]}, "content": {"type": "string"}},
        }
        props = {
            "index": {"type": "integer"},
            "message": message,
            "finish_reason": FINISH_REASON,
            "logprobs": chat_logprobs_schema(),
        }
        return {"type": "object", "required": ["index", "message", "finish_reason"], "properties": props}


# -- logprobs in the chat shape ---------------------------------------------------------------------------------
def chat_logprobs(tokenizer: Tokenizer, ids: list[int], scores: TokenScores, start: int, end: int) -> dict:
    """The chat shape for tokens ids[start:end]."""

    def entry(token: int, logprob: float | None) -> dict:
        return {"token": token_text(tokenizer, token), "logprob": logprob, "bytes": token_bytes(tokenizer, token)}

    content = [
        {**entry(ids[i], scores.logprobs[i]), "top_logprobs": [entry(t, lp) for t, lp in scores.top[i]]}
        for i in range(start, end)
    ]
    return {"content": content, "refusal": None}


def chat_logprobs_schema() -> dict:
    token = {
        "type": "object",
        "required": ["token", "logprob", "bytes"],
        "properties": {
            "token": {"type": "string"},
            "logprob": {"type": "number"},
            "bytes": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
        },
    }
    entry = {
        **token,
        "required": ["token", "logprob", "bytes", "top_logprobs"],
        "properties": {**token["properties"], "top_logprobs": {"type": "array", "items": token}},
    }
    return {
        "type": "object",
        "nullable": True,
        "required": ["content"],
        "properties": {"content": {"type": "array", "items": entry}, "refusal": {"type": "string", "nullable": True}},
    }
