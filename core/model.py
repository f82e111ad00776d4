"""GPT-2 forward pass in numpy with a preallocated KV cache, for any GPT-2 config.

Names follow the GPT-2 checkpoint (wte, wpe, ln_1, c_attn, c_proj, c_fc, ln_f). Conv1D weights are stored
(in, out), so a projection is `x @ w + b`. Shapes: T new tokens, C width, nh heads, hs head size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU, tanh approximation (GPT-2's `gelu_new`)."""
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


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
    def from_dict(cls, raw: dict[str, Any]) -> "GPT2Config":
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
    """Layer norm without its affine part (the gain and bias are folded into the next matmul, see fold)."""
    # np.add.reduce rather than .mean(): .mean's Python-level bookkeeping costs more than the sum itself here.
    inv_n = np.float32(1.0 / x.shape[-1])
    centered = x - np.add.reduce(x, axis=-1, keepdims=True) * inv_n
    var = np.add.reduce(centered * centered, axis=-1, keepdims=True) * inv_n
    return centered / np.sqrt(var + eps)


def normalize_vector(x: np.ndarray, eps: np.float32) -> np.ndarray:
    """normalize for one position (C,): scalar statistics and a dot product, three array ops instead of nine."""
    inv_n = np.float32(1.0 / x.shape[0])
    centered = x - np.add.reduce(x) * inv_n
    return centered / np.sqrt(np.dot(centered, centered) * inv_n + eps)


def fold(gain: np.ndarray, bias: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(x̂·gain + bias) @ w + b  ==  x̂ @ (gain[:, None]·w) + (bias @ w + b): two fewer ops per layer norm."""
    folded_b = bias.astype(np.float64) @ w + (0.0 if b is None else b)
    return np.ascontiguousarray(gain[:, None] * w, dtype=np.float32), folded_b.astype(np.float32)


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

    def __init__(self, cfg: GPT2Config, weights: dict[str, np.ndarray]):
        self.cfg = cfg
        self.step_lock = threading.Lock()
        self.activation = ACTIVATIONS[cfg.activation_function]
        self.eps = np.float32(cfg.layer_norm_epsilon)
        prefix = "transformer." if "transformer.wte.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            key = prefix + name
            if key not in weights:
                raise ValueError(f"model.safetensors: tensor {key!r} is missing")
            return np.ascontiguousarray(weights[key], dtype=np.float32)

        C, hs = cfg.n_embd, cfg.n_embd // cfg.n_head
        self.wte, self.wpe = w("wte.weight"), w("wpe.weight")  # (V, C), (n_ctx, C)
        expect_shape("wte", self.wte, (cfg.vocab_size, C))
        expect_shape("wpe", self.wpe, (cfg.n_positions, C))
        # Tied embeddings unless the checkpoint carries its own head.
        head = np.asarray(weights.get("lm_head.weight", self.wte), dtype=np.float32)
        expect_shape("lm_head", head, (cfg.vocab_size, C))
        self.head_w, self.head_b = fold(w("ln_f.weight"), w("ln_f.bias"), head.T, None)  # (C, V), (V,)
        self.blocks = []
        for i in range(cfg.n_layer):
            attn_w, attn_b = fold(w(f"h.{i}.ln_1.weight"), w(f"h.{i}.ln_1.bias"),
                                  w(f"h.{i}.attn.c_attn.weight"), w(f"h.{i}.attn.c_attn.bias"))
            expect_shape(f"h.{i}.attn.c_attn.weight", attn_w, (C, 3 * C))
            scale = (1 / np.sqrt(hs) if cfg.scale_attn_weights else 1.0) / (
                i + 1 if cfg.scale_attn_by_inverse_layer_idx else 1)
            attn_w[:, :C] *= np.float32(scale)  # scaling q scales q·k: one op less per step
            attn_b[:C] *= np.float32(scale)
            fc_w, fc_b = fold(w(f"h.{i}.ln_2.weight"), w(f"h.{i}.ln_2.bias"),
                              w(f"h.{i}.mlp.c_fc.weight"), w(f"h.{i}.mlp.c_fc.bias"))
            self.blocks.append(Block(attn_w, attn_b, w(f"h.{i}.attn.c_proj.weight"), w(f"h.{i}.attn.c_proj.bias"),
                                     fc_w, fc_b, w(f"h.{i}.mlp.c_proj.weight"), w(f"h.{i}.mlp.c_proj.bias")))

    def session(self) -> "Session":
        """A fresh generation state over these weights."""
        return Session(self)

    def forward(self, ids: list[int] | np.ndarray, cache: KVCache) -> np.ndarray:
        """Run `ids` (the next tokens) through the model, extending `cache`; return the last logits (V,)."""
        cfg = self.cfg
        ids = np.asarray(ids, dtype=np.int64)
        T, start = len(ids), cache.length
        if T == 0:
            raise ValueError("forward needs at least one token")
        if start + T > cfg.n_positions:
            raise ValueError(f"{start + T} tokens exceed the context of {cfg.n_positions}")
        C, nh = cfg.n_embd, cfg.n_head
        hs, end = C // nh, start + T
        x = self.wte[ids] + self.wpe[start:end]  # (T, C)
        # Causal mask for a block of new tokens: query t sees keys up to start + t. One new token sees all.
        mask = np.triu(np.full((T, end), -np.inf, dtype=np.float32), k=start + 1) if T > 1 else None  # (T, end)
        for i, block in enumerate(self.blocks):
            qkv = (normalize(x, self.eps) @ block.attn_w + block.attn_b).reshape(T, 3, nh, hs)  # (T, 3, nh, hs)
            q, k, v = (qkv[:, j].transpose(1, 0, 2) for j in range(3))  # (nh, T, hs) each
            cache.k[i, :, start:end] = k
            cache.v[i, :, start:end] = v
            att = q @ cache.k[i, :, :end].transpose(0, 2, 1)  # (nh, T, end), already scaled through q
            if mask is not None:
                att += mask
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            y = (att @ cache.v[i, :, :end]).transpose(1, 0, 2).reshape(T, C)  # (T, C)
            x = x + y @ block.attn_proj_w + block.attn_proj_b
            h = self.activation(normalize(x, self.eps) @ block.fc_w + block.fc_b)  # (T, n_inner)
            x = x + h @ block.mlp_proj_w + block.mlp_proj_b
        cache.length = end
        return normalize(x[-1], self.eps) @ self.head_w + self.head_b  # (V,): only the last position is sampled

    def step(self, token: int, cache: KVCache) -> np.ndarray:
        """forward for a single new token, the hot path of decoding: one position needs no mask and no
        transposes, and works on vectors. Same weights, same results as forward([token], cache)."""
        cfg = self.cfg
        pos = cache.length
        if pos >= cfg.n_positions:
            raise ValueError(f"{pos + 1} tokens exceed the context of {cfg.n_positions}")
        C, nh = cfg.n_embd, cfg.n_head
        hs, end = C // nh, pos + 1
        x = self.wte[token] + self.wpe[pos]  # (C,)
        for i, block in enumerate(self.blocks):
            q, k, v = (normalize_vector(x, self.eps) @ block.attn_w + block.attn_b).reshape(3, nh, hs)  # (nh, hs)
            cache.k[i, :, pos] = k
            cache.v[i, :, pos] = v
            att = np.matmul(cache.k[i, :, :end], q[:, :, None])[:, :, 0]  # (nh, end), already scaled through q
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            y = np.matmul(att[:, None, :], cache.v[i, :, :end]).reshape(C)  # (nh, 1, hs) -> (C,)
            x = x + y @ block.attn_proj_w + block.attn_proj_b
            h = self.activation(normalize_vector(x, self.eps) @ block.fc_w + block.fc_b)  # (n_inner,)
            x = x + h @ block.mlp_proj_w + block.mlp_proj_b
        cache.length = end
        return normalize_vector(x, self.eps) @ self.head_w + self.head_b  # (V,)


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
