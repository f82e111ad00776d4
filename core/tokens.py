"""Tokens as clients see them: a token's text on its own and its exact bytes (both routes' logprobs, /tokenize)."""

from __future__ import annotations

from functools import lru_cache

from tokenizers import Tokenizer


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
