"""GPT-2 forward pass in numpy with a preallocated KV cache, for any GPT-2 config.

Names follow the GPT-2 checkpoint (wte, wpe, ln_1, c_attn, c_proj, c_fc, ln_f). Conv1D weights are stored
(in, out), so a projection is `x @ w + b`. Shapes: T new tokens, C width, nh heads, hs head size.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    def from_dict(cls, raw: dict) -> "GPT2Config":
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


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


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
        self.activation = ACTIVATIONS[cfg.activation_function]
        prefix = "transformer." if "transformer.wte.weight" in weights else ""

        def w(name: str) -> np.ndarray:
            key = prefix + name
            if key not in weights:
                raise ValueError(f"model.safetensors: tensor {key!r} is missing")
            return np.ascontiguousarray(weights[key], dtype=np.float32)

        self.wte, self.wpe = w("wte.weight"), w("wpe.weight")  # (V, C), (n_ctx, C)
        # Tied embeddings unless the checkpoint carries its own head; stored transposed once for speed.
        head = weights.get("lm_head.weight", self.wte)
        self.lm_head_t = np.ascontiguousarray(np.asarray(head, dtype=np.float32).T)  # (C, V)
        self.ln_f = (w("ln_f.weight"), w("ln_f.bias"))
        self.layers = [
            {
                name: w(f"h.{i}.{name}")
                for name in (
                    "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
                    "attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias",
                    "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
                )
            }
            for i in range(cfg.n_layer)
        ]
        self._check_shapes()

    def _check_shapes(self) -> None:
        cfg, C = self.cfg, self.cfg.n_embd
        expected = {
            "wte": (self.wte.shape, (cfg.vocab_size, C)),
            "wpe": (self.wpe.shape, (cfg.n_positions, C)),
            "lm_head": (self.lm_head_t.shape, (C, cfg.vocab_size)),
            "h.0.attn.c_attn.weight": (self.layers[0]["attn.c_attn.weight"].shape, (C, 3 * C)),
        }
        for name, (got, want) in expected.items():
            if got != want:
                raise ValueError(f"model.safetensors: {name} has shape {got}, config.json implies {want}")

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
        nh, hs = cfg.n_head, cfg.n_embd // cfg.n_head
        end = start + T
        x = self.wte[ids] + self.wpe[start:end]  # (T, C)
        # Causal mask for the new block: query t sees keys up to start + t.
        mask = np.triu(np.full((T, end), -np.inf, dtype=np.float32), k=start + 1)  # (T, end)
        for i, layer in enumerate(self.layers):
            h = layer_norm(x, layer["ln_1.weight"], layer["ln_1.bias"], cfg.layer_norm_epsilon)
            qkv = h @ layer["attn.c_attn.weight"] + layer["attn.c_attn.bias"]  # (T, 3C)
            q, k, v = (a.reshape(T, nh, hs).transpose(1, 0, 2) for a in np.split(qkv, 3, axis=-1))  # (nh, T, hs)
            cache.k[i, :, start:end] = k
            cache.v[i, :, start:end] = v
            keys, values = cache.k[i, :, :end], cache.v[i, :, :end]  # (nh, end, hs)
            att = q @ keys.transpose(0, 2, 1)  # (nh, T, end)
            if cfg.scale_attn_weights:
                att /= np.float32(np.sqrt(hs))
            if cfg.scale_attn_by_inverse_layer_idx:
                att /= np.float32(i + 1)
            att += mask
            att = np.exp(att - att.max(axis=-1, keepdims=True))
            att /= att.sum(axis=-1, keepdims=True)
            y = (att @ values).transpose(1, 0, 2).reshape(T, cfg.n_embd)  # (T, C)
            x = x + y @ layer["attn.c_proj.weight"] + layer["attn.c_proj.bias"]
            h = layer_norm(x, layer["ln_2.weight"], layer["ln_2.bias"], cfg.layer_norm_epsilon)
            h = self.activation(h @ layer["mlp.c_fc.weight"] + layer["mlp.c_fc.bias"])  # (T, 4C)
            x = x + h @ layer["mlp.c_proj.weight"] + layer["mlp.c_proj.bias"]
        cache.length = end
        x = layer_norm(x[-1], *self.ln_f, cfg.layer_norm_epsilon)  # (C,): only the last position is sampled
        return x @ self.lm_head_t  # (V,)


class Session:
    """One generation: the model plus its own KV cache. `feed` appends tokens and returns the next logits."""

    def __init__(self, model: GPT2):
        self.model = model
        self.cache = KVCache(model.cfg)

    def feed(self, ids: list[int]) -> np.ndarray:
        return self.model.forward(ids, self.cache)
