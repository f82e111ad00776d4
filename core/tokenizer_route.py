"""vLLM's tokenizer routes: POST /tokenize, POST /detokenize, GET /tokenizer_info (their field tables and answers).

lm-evaluation-harness's `tokenizer_backend=remote` reads the tokenizer through these, with nothing but the URL.
"""

from __future__ import annotations

from typing import Any

from core.artifacts import LoadedModel
from core.chat_route import CHAT_TEMPLATE
from core.schema import (
    MAX_PROMPT_CHARS,
    MODEL,
    Field,
    boolean,
    check_model,
    invalid,
    read_fields,
    token_ids,
    unicode_text,
)
from core.tokens import token_text


def fields(n_ctx: int, vocab_size: int) -> dict[str, tuple[Field, ...]]:
    """Field tables of POST /tokenize and POST /detokenize, as vLLM's TokenizeCompletionRequest and
    DetokenizeRequest declare them (vllm-project/vllm, vllm/entrypoints/openai/protocol.py)."""

    def parse_prompt(value) -> str:  # may be empty, as in vLLM (0 tokens)
        if not isinstance(value, str) or len(value) > MAX_PROMPT_CHARS:
            raise invalid("prompt", f"must be a string of at most {MAX_PROMPT_CHARS} characters")
        return unicode_text("prompt", value)

    def parse_tokens(value) -> tuple[int, ...]:  # may be empty, as in vLLM (the empty text)
        if not isinstance(value, list):
            raise invalid("tokens", "must be a list of token ids")
        return token_ids("tokens", value, vocab_size, n_ctx, "") if value else ()

    ids = {"type": "array", "maxItems": n_ctx, "items": {"type": "integer", "minimum": 0, "maximum": vocab_size - 1}}
    return {
        "tokenize": (
            MODEL,
            Field(
                "prompt", {"type": "string", "maxLength": MAX_PROMPT_CHARS}, parse_prompt, None, "the text to tokenize"
            ),
            boolean("add_special_tokens", True, "accepted either way: this GPT-2 tokenizer adds no special tokens"),
            boolean("return_token_strs", False, "also return each token as text"),
        ),
        "detokenize": (MODEL, Field("tokens", ids, parse_tokens, None, "the token ids to decode")),
    }


def read(body: dict, fields: tuple[Field, ...], required: str, model_name: str) -> dict[str, Any]:
    """Validate a /tokenize or /detokenize body read through its field table."""
    check_model(body, model_name)
    if body.get(required) is None:
        raise invalid(required, "is required")
    return read_fields(body, fields, {})


def tokenize(body: dict, fields: tuple[Field, ...], loaded: LoadedModel) -> dict:
    """vLLM's POST /tokenize for a prompt: its token ids, their count and the context size."""
    values = read(body, fields, "prompt", loaded.name)
    ids = loaded.tokenizer.encode(values["prompt"]).ids
    reply = {"count": len(ids), "max_model_len": loaded.model.cfg.n_positions, "tokens": ids, "token_strs": None}
    if values["return_token_strs"]:
        reply["token_strs"] = [token_text(loaded.tokenizer, t) for t in ids]
    return reply


def detokenize(body: dict, fields: tuple[Field, ...], loaded: LoadedModel) -> dict:
    """vLLM's POST /detokenize: the text of token ids."""
    ids = read(body, fields, "tokens", loaded.name)["tokens"]
    return {"prompt": loaded.tokenizer.decode(list(ids), skip_special_tokens=False)}


def tokenizer_config(loaded: LoadedModel) -> dict:
    """vLLM's GET /tokenizer_info: tokenizer_class plus the fields of the tokenizer_config.json a transformers
    tokenizer would have."""
    eos_id = loaded.model.cfg.eos_token_id
    eos = loaded.tokenizer.id_to_token(eos_id) if eos_id is not None else None
    return {
        "tokenizer_class": "GPT2TokenizerFast",
        "eos_token": eos,
        "bos_token": eos,
        "unk_token": eos,
        "pad_token": None,
        "model_max_length": loaded.model.cfg.n_positions,
        "add_bos_token": False,
        "chat_template": CHAT_TEMPLATE,
    }
