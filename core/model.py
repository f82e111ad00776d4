"""GPT-2 forward pass in numpy with a preallocated KV cache, for any GPT-2 config.

Names follow the GPT-2 checkpoint (wte, wpe, ln_1, c_attn, c_proj, c_fc, ln_f). Conv1D weights are stored
(in, out), so a projection is `x @ w + b`. Shapes: T new tokens, C width, nh heads, hs head size.
`GPT2.from_checkpoint` reads those tensors and folds each layer norm's gain and bias into the matmul after it.
A `Block` computes attention and MLP once, for a block of new positions (T, C) — the prompt, `forward` — and
for one position (C,) — a decoding step, `step`, which works on vectors: no mask, no transposes.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # √(2/π), the slope of GELU's tanh approximation


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's `gelu_new`)."""
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


ACTIVATIONS = {"gelu_new": gelu_tanh, "gelu_pytorch_tanh": gelu_tanh, "relu": relu}


@dataclass(frozen=True)
class GPT2Config:
    """The fields of a transformers GPT2Config (config.json) that the forward pass needs."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    eos_token_id: int | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPT2Config:
        if raw.get("model_type", "gpt2") != "gpt2":
            raise ValueError(f"config.json: model_type {raw.get('model_type')!r} is not gpt2")
        if raw.get("activation_function", "gelu_new") not in ACTIVATIONS:
            raise ValueError(
                f"config.json: activation_function {raw['activation_function']!r} is not supported "
                f"(supported: {', '.join(sorted(ACTIVATIONS))})"
            )
        if raw["n_embd"] % raw["n_head"]:
            raise ValueError("config.json: n_embd must be a multiple of n_head")
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in raw.items() if k in fields})


def normalize(x: np.ndarray, eps: np.float32) -> np.ndarray:
    """Layer norm without its affine part (the gain and bias are folded into the next matmul, see fold), over the
    last axis of (T, C); one position (C,) takes scalar statistics and a dot product: three array ops, not nine."""
    inv_n = np.float32(1.0 / x.shape[-1])
    if x.ndim == 1:
        centered = x - np.add.reduce(x) * inv_n
        return centered / np.sqrt(np.dot(centered, centered) * inv_n + eps)
    # np.add.reduce rather than .mean(): .mean's Python-level bookkeeping costs more than the sum itself here.
    centered = x - np.add.reduce(x, axis=-1, keepdims=True) * inv_n
    var = np.add.reduce(centered * centered, axis=-1, keepdims=True) * inv_n
    return centered / np.sqrt(var + eps)


def fold(gain: np.ndarray, bias: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(x̂·gain + bias) @ w + b  ==  x̂ @ (gain[:, None]·w) + (bias @ w + b): two fewer ops per layer norm.
    A writable float32 `w` (what the loader hands over: arrays it owns) is folded in place, so loading never
    holds a second copy of a matrix; anything else (a read-only or fp16 array) is folded into a new one."""
    folded_b = (bias @ w).astype(np.float32) + (0 if b is None else b)  # before w changes
    if w.dtype == np.float32 and w.flags.writeable and w.flags.c_contiguous:
        w *= gain[:, None]
        return w, folded_b
    return np.multiply(w, gain[:, None], dtype=np.float32), folded_b


def softmax_rows(att: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place."""
    att = np.exp(att - att.max(axis=-1, keepdims=True))
    att /= att.sum(axis=-1, keepdims=True)
    return att


@dataclass(frozen=True)
class Block:
    """One transformer block's weights, with ln_1 folded into c_attn and ln_2 into c_fc."""

    attn_w: np.ndarray  # (C, 3C), the query columns also carry the attention scale
    attn_b: np.ndarray  # (3C,)
    attn_proj_w: np.ndarray  # (C, C)
    attn_proj_b: np.ndarray  # (C,)
    fc_w: np.ndarray  # (C, n_inner)
    fc_b: np.ndarray  # (n_inner,)
    mlp_proj_w: np.ndarray  # (n_inner, C)
    mlp_proj_b: np.ndarray  # (C,)

    def attention(
        self, x: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, start: int, n_head: int, eps: np.float32
    ) -> np.ndarray:
        """ln_1, causal self-attention and c_proj for the new positions x, (T, C), or one position, (C,), that
        follow the `start` positions already in this layer's cache (nh, n_ctx, hs); their keys and values are
        written to it. One position sees every key, so it needs no mask, and as vectors no transposes."""
        C = x.shape[-1]
        hs = C // n_head
        qkv = normalize(x, eps) @ self.attn_w + self.attn_b  # (T, 3C) or (3C,); q is already scaled
        if x.ndim == 1:  # the decoding hot path
            end = start + 1
            q, k, v = qkv.reshape(3, n_head, hs)  # (nh, hs) each
            k_cache[:, start], v_cache[:, start] = k, v
            att = softmax_rows(np.matmul(k_cache[:, :end], q[:, :, None])[:, :, 0])  # (nh, end)
            y = np.matmul(att[:, None, :], v_cache[:, :end]).reshape(C)  # (nh, 1, hs) -> (C,)
        else:
            T = x.shape[0]
            end = start + T
            qkv = qkv.reshape(T, 3, n_head, hs)
            q, k, v = (qkv[:, j].transpose(1, 0, 2) for j in range(3))  # (nh, T, hs) each
            k_cache[:, start:end], v_cache[:, start:end] = k, v
            att = q @ k_cache[:, :end].transpose(0, 2, 1)  # (nh, T, end)
            if T > 1:  # query t sees keys up to start + t
                att += np.triu(np.full((T, end), -np.inf, dtype=np.float32), k=start + 1)
            y = (softmax_rows(att) @ v_cache[:, :end]).transpose(1, 0, 2).reshape(T, C)  # (T, C)
        return y @ self.attn_proj_w + self.attn_proj_b

    def mlp(self, x: np.ndarray, activation, eps: np.float32) -> np.ndarray:
        """ln_2, c_fc, the activation and c_proj, for (T, C) or (C,)."""
        return activation(normalize(x, eps) @ self.fc_w + self.fc_b) @ self.mlp_proj_w + self.mlp_proj_b


class KVCache:
    """Keys and values of every position seen so far, preallocated for the whole context."""

    def __init__(self, cfg: GPT2Config):
        hs = cfg.n_embd // cfg.n_head
        shape = (cfg.n_layer, cfg.n_head, cfg.n_positions, hs)  # (L, nh, n_ctx, hs)
        self.k = np.zeros(shape, dtype=np.float32)
        self.v = np.zeros(shape, dtype=np.float32)
        self.length = 0


class GPT2:
    """Read-only weights plus the forward pass; every generation brings its own KVCache (thread safe)."""

    def __init__(
        self,
        cfg: GPT2Config,
        wte: np.ndarray,
        wpe: np.ndarray,
        blocks: list[Block],
        head_gain: np.ndarray,
        head_w: np.ndarray,
        head_b: np.ndarray,
    ):
        self.cfg = cfg
        self.wte, self.wpe = wte, wpe  # (V, C), (n_ctx, C)
        self.blocks = blocks
        # ln_f's gain stays a vector op, its bias is folded into head_b: head_w is the (tied) lm_head itself,
        # transposed as a view, (C, V), so the largest matrix is neither copied nor held twice.
        self.head_gain, self.head_w, self.head_b = head_gain, head_w, head_b  # (C,), (C, V), (V,)
        self.activation = ACTIVATIONS[cfg.activation_function]
        self.eps = np.float32(cfg.layer_norm_epsilon)
        self.step_lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, cfg: GPT2Config, weights: dict[str, np.ndarray]) -> GPT2:
        """The model from a GPT-2 checkpoint's tensors (with or without the `transformer.` prefix), each layer norm
        folded into the matmul after it and the attention scale into the query weights. Takes ownership of
        `weights`: writable float32 arrays are folded in place (see fold)."""
        prefix = "transformer." if "transformer.wte.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            key = prefix + name
            if key not in weights:
                raise ValueError(f"model.safetensors: tensor {key!r} is missing")
            return np.asarray(weights[key], dtype=np.float32)

        C, hs = cfg.n_embd, cfg.n_embd // cfg.n_head
        wte, wpe = w("wte.weight"), w("wpe.weight")
        expect_shape("wte", wte, (cfg.vocab_size, C))
        expect_shape("wpe", wpe, (cfg.n_positions, C))
        # Tied embeddings unless the checkpoint carries its own head.
        head = np.asarray(weights.get("lm_head.weight", wte), dtype=np.float32)
        expect_shape("lm_head", head, (cfg.vocab_size, C))
        head_gain, head_w, head_b = w("ln_f.weight"), head.T, (w("ln_f.bias") @ head.T).astype(np.float32)
        blocks = []
        for i in range(cfg.n_layer):
            attn_w, attn_b = fold(
                w(f"h.{i}.ln_1.weight"),
                w(f"h.{i}.ln_1.bias"),
                w(f"h.{i}.attn.c_attn.weight"),
                w(f"h.{i}.attn.c_attn.bias"),
            )
            expect_shape(f"h.{i}.attn.c_attn.weight", attn_w, (C, 3 * C))
            scale = (1 / np.sqrt(hs) if cfg.scale_attn_weights else 1.0) / (
                i + 1 if cfg.scale_attn_by_inverse_layer_idx else 1
            )
            if scale != 1.0:  # scaling q scales q·k: one op less per step
                attn_w[:, :C] *= np.float32(scale)
                attn_b[:C] *= np.float32(scale)
            fc_w, fc_b = fold(
                w(f"h.{i}.ln_2.weight"), w(f"h.{i}.ln_2.bias"), w(f"h.{i}.mlp.c_fc.weight"), w(f"h.{i}.mlp.c_fc.bias")
            )
            blocks.append(
                Block(
                    attn_w,
                    attn_b,
                    w(f"h.{i}.attn.c_proj.weight"),
                    w(f"h.{i}.attn.c_proj.bias"),
                    fc_w,
                    fc_b,
                    w(f"h.{i}.mlp.c_proj.weight"),
                    w(f"h.{i}.mlp.c_proj.bias"),
                )
            )
        return cls(cfg, wte, wpe, blocks, head_gain, head_w, head_b)

    def session(self) -> Session:
        """A fresh generation state over these weights."""
        return Session(self)

    def forward(self, ids: list[int] | np.ndarray, cache: KVCache, every_position: bool = False) -> np.ndarray:
        """Run `ids` (the next tokens) through the model, extending `cache`; return the last logits (V,), or the
        logits after each of them (T, V) with `every_position` (what scoring a prompt needs)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            raise ValueError("forward needs at least one token")
        start, end = self.positions(cache, len(ids))
        x = self.blocks_over(self.wte[ids] + self.wpe[start:end], cache, start)  # (T, C)
        cache.length = end
        return self.logits(x if every_position else x[-1])  # sampling needs only the last position

    def step(self, token: int, cache: KVCache) -> np.ndarray:
        """forward for a single new token, the hot path of decoding: the blocks work on vectors (C,).
        Same weights, same results as forward([token], cache)."""
        pos, end = self.positions(cache, 1)
        x = self.blocks_over(self.wte[token] + self.wpe[pos], cache, pos)  # (C,)
        cache.length = end
        return self.logits(x)

    def positions(self, cache: KVCache, n: int) -> tuple[int, int]:
        """(start, end) of n new positions after the cache's, or ValueError when they overflow the context."""
        start, end = cache.length, cache.length + n
        if end > self.cfg.n_positions:
            raise ValueError(f"{end} tokens exceed the context of {self.cfg.n_positions}")
        return start, end

    def blocks_over(self, x: np.ndarray, cache: KVCache, start: int) -> np.ndarray:
        """Every transformer block on the embedded new positions x, (T, C) or (C,), that follow `start` cached ones."""
        for i, block in enumerate(self.blocks):
            x = x + block.attention(x, cache.k[i], cache.v[i], start, self.cfg.n_head, self.eps)
            x = x + block.mlp(x, self.activation, self.eps)
        return x

    def logits(self, x: np.ndarray) -> np.ndarray:
        """ln_f and the language-model head: the next token's logits, (V,) for one position (C,), (T, V) for (T, C)."""
        return (normalize(x, self.eps) * self.head_gain) @ self.head_w + self.head_b


def expect_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"model.safetensors: {name} has shape {array.shape}, config.json implies {shape}")


class Session:
    """One generation: the model plus its own KV cache. `feed` appends tokens and returns the next logits."""

    def __init__(self, model: GPT2):
        self.model = model
        self.cache = KVCache(model.cfg)

    def feed(self, ids: list[int]) -> np.ndarray:
        # numpy drops the GIL inside each of a step's ~40 small ops; with many request threads the GIL would
        # change hands at every one of them. One step at a time per process keeps a step on one thread.
        with self.model.step_lock:
            if len(ids) == 1:
                return self.model.step(ids[0], self.cache)
            return self.model.forward(ids, self.cache)

    def feed_every(self, ids: list[int]) -> np.ndarray:
        """Like feed, but the logits after each of `ids` (T, V): row i scores the token that follows ids[i]."""
        with self.model.step_lock:
            return self.model.forward(ids, self.cache, every_position=True)
