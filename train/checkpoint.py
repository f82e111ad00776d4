"""Read a GPT-2-family checkpoint in the Hugging Face layout, refusing what the numpy engine cannot run exactly.

A checkpoint directory holds config.json, the weights as model.safetensors or pytorch_model.bin, and the
tokenizer as tokenizer.json or vocab.json + merges.txt (what `huggingface-cli download distilgpt2` or
`save_pretrained` leaves). Everything that would make core.model compute something else is refused with one
line naming the file, the setting and the fix (CheckpointError); nothing is silently dropped except the causal
mask buffers old checkpoints carry (`attn.bias`, `attn.masked_bias`), which are constants, not weights.
Torch is imported only to read a pytorch_model.bin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

from core.artifacts import sha256_file
from core.model import ACTIVATIONS, GPT2Config
from core.weights import WeightsError, packing_of, read_safetensors

ARCHITECTURE = "GPT2LMHeadModel"
# config.json settings whose non-default value the engine does not compute (transformers' modeling_gpt2.py):
# cross-attention layers (an encoder-decoder's), and attention reordered and upcast for fp16 training.
UNSUPPORTED_SETTINGS = {"add_cross_attention": False, "reorder_and_upcast_attn": False}
MASK_BUFFERS = (".attn.bias", ".attn.masked_bias")  # 4-D causal-mask constants, not parameters
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class CheckpointError(ValueError):
    """The directory is not a GPT-2 checkpoint the numpy engine runs exactly; the message says why and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read and checked: its config (as written), fp32 tensors, tokenizer and the files read."""

    directory: Path
    config: dict[str, Any]
    tensors: dict[str, np.ndarray]  # checkpoint names, without the mask buffers and a tied lm_head
    tokenizer: Tokenizer
    files: dict[str, str]  # name -> sha256 of every file read

    @property
    def parameters(self) -> int:
        return sum(t.size for t in self.tensors.values())

    def record(self) -> dict[str, Any]:
        """What the manifest keeps about the source: its directory's name, file hashes and config."""
        return {"name": self.directory.resolve().name, "files": self.files, "config": self.config}


def read_config(directory: Path) -> tuple[dict[str, Any], GPT2Config]:
    path = directory / "config.json"
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory; pass a GPT-2 checkpoint directory")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; a GPT-2 checkpoint directory holds config.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    if raw.get("model_type") != "gpt2":
        raise CheckpointError(
            f"{path}: model_type {raw.get('model_type')!r} is not gpt2; only GPT-2-family checkpoints import"
        )
    architectures = raw.get("architectures") or [ARCHITECTURE]
    if architectures != [ARCHITECTURE]:
        raise CheckpointError(f"{path}: architectures {architectures} is not [{ARCHITECTURE!r}] (a language model)")
    for key, supported in UNSUPPORTED_SETTINGS.items():
        if raw.get(key, supported) != supported:
            raise CheckpointError(f"{path}: {key}={raw[key]!r} is not supported by the numpy engine (only {supported})")
    activation = raw.get("activation_function", "gelu_new")
    if activation not in ACTIVATIONS:
        raise CheckpointError(
            f"{path}: activation_function {activation!r} is not supported (supported: {', '.join(sorted(ACTIVATIONS))})"
        )
    try:
        cfg = GPT2Config.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a usable GPT-2 config ({exc})") from None
    for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CheckpointError(f"{path}: {name} must be a positive integer, not {value!r}")
    if cfg.eos_token_id is not None and not 0 <= cfg.eos_token_id < cfg.vocab_size:
        raise CheckpointError(f"{path}: eos_token_id {cfg.eos_token_id} is outside the vocabulary of {cfg.vocab_size}")
    return raw, cfg


def read_tensors(directory: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(file name, tensors) from model.safetensors, else pytorch_model.bin."""
    path = directory / "model.safetensors"
    if path.is_file():
        try:
            packing = packing_of(path)
            if packing != "fp32":
                raise CheckpointError(
                    f"{path}: weights packed {packing}; import or fine-tune from the fp32 checkpoint instead"
                )
            return path.name, read_safetensors(path)
        except WeightsError as exc:
            raise CheckpointError(str(exc)) from None
    path = directory / "pytorch_model.bin"
    if path.is_file():
        import pickle
        import zipfile

        import torch

        try:  # weights_only: a checkpoint is data, never code to run
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
            raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc}): truncated or corrupt") from None
        if not isinstance(state, dict):
            raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
        return path.name, {name: t.detach().float().numpy() for name, t in state.items()}
    if (directory / "model.safetensors.index.json").is_file():
        raise CheckpointError(f"{directory}: sharded weights are not supported; GPT-2 sizes fit one model.safetensors")
    raise CheckpointError(f"{directory}: no weights (looked for {' or '.join(WEIGHT_FILES)})")


def expected_shapes(cfg: GPT2Config, tied: bool) -> dict[str, tuple[int, ...]]:
    """Every parameter of a GPT2LMHeadModel of this config, by name (without `transformer.`), with its shape."""
    C, inner = cfg.n_embd, cfg.n_inner or 4 * cfg.n_embd
    shapes: dict[str, tuple[int, ...]] = {
        "wte.weight": (cfg.vocab_size, C),
        "wpe.weight": (cfg.n_positions, C),
        "ln_f.weight": (C,),
        "ln_f.bias": (C,),
    }
    per_layer = {
        "ln_1.weight": (C,),
        "ln_1.bias": (C,),
        "attn.c_attn.weight": (C, 3 * C),
        "attn.c_attn.bias": (3 * C,),
        "attn.c_proj.weight": (C, C),
        "attn.c_proj.bias": (C,),
        "ln_2.weight": (C,),
        "ln_2.bias": (C,),
        "mlp.c_fc.weight": (C, inner),
        "mlp.c_fc.bias": (inner,),
        "mlp.c_proj.weight": (inner, C),
        "mlp.c_proj.bias": (C,),
    }
    shapes |= {f"h.{i}.{name}": shape for i in range(cfg.n_layer) for name, shape in per_layer.items()}
    return shapes if tied else shapes | {"lm_head.weight": (cfg.vocab_size, C)}


def check_tensors(source: str, raw: dict[str, Any], cfg: GPT2Config, tensors: dict[str, np.ndarray]) -> dict:
    """The checkpoint's parameters under names without the `transformer.` prefix (lm_head keeps its own), with
    the mask buffers and a tied head left out; every expected tensor present, nothing unknown."""
    tied = raw.get("tie_word_embeddings", True)
    params: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        if name.endswith(MASK_BUFFERS):
            continue
        short = name.removeprefix("transformer.")
        if short == "lm_head.weight" and tied:
            continue  # transformers ties it to wte when tie_word_embeddings is set: wte is the head
        params[short] = np.ascontiguousarray(tensor, dtype=np.float32)
    expected = expected_shapes(cfg, tied)
    if missing := sorted(expected.keys() - params.keys()):
        raise CheckpointError(f"{source}: tensor {missing[0]!r} is missing ({len(missing)} missing in all)")
    if unknown := sorted(params.keys() - expected.keys()):
        raise CheckpointError(f"{source}: unknown tensor {unknown[0]!r}; not a plain GPT-2 language model")
    for name, tensor in params.items():
        if tensor.shape != expected[name]:
            raise CheckpointError(
                f"{source}: tensor {name!r} has shape {tensor.shape}, config.json implies {expected[name]}"
            )
        if not np.isfinite(tensor).all():
            raise CheckpointError(f"{source}: tensor {name!r} holds NaN or infinity")
    return params


def read_tokenizer(directory: Path, cfg: GPT2Config) -> tuple[Tokenizer, list[str]]:
    """(tokenizer, files read): tokenizer.json, else GPT-2's byte-level BPE from vocab.json + merges.txt."""
    if (directory / "tokenizer.json").is_file():
        files = ["tokenizer.json"]
        try:
            tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
            raise CheckpointError(f"{directory / 'tokenizer.json'}: not a tokenizers file ({exc})") from None
    elif (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
        files = ["vocab.json", "merges.txt"]
        tokenizer = gpt2_tokenizer(directory / "vocab.json", directory / "merges.txt", cfg)
    else:
        raise CheckpointError(f"{directory}: no tokenizer (looked for tokenizer.json, or vocab.json and merges.txt)")
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    if size != cfg.vocab_size:
        raise CheckpointError(
            f"{directory / files[0]}: the tokenizer has {size} tokens but config.json's vocab_size is "
            f"{cfg.vocab_size}; they must be equal (is it this model's tokenizer?)"
        )
    return tokenizer, files


def gpt2_tokenizer(vocab: Path, merges: Path, cfg: GPT2Config) -> Tokenizer:
    """GPT2TokenizerFast's pipeline: byte-level pre-tokenizer without a prefix space, BPE, byte-level decoder;
    the end-of-text token (config's eos_token_id) is a special token, never split."""
    try:
        tokenizer = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    except Exception as exc:  # tokenizers raises a bare Exception for a file it cannot parse
        raise CheckpointError(f"{vocab}, {merges}: not a BPE vocabulary and merges ({exc})") from None
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    if cfg.eos_token_id is not None and (eos := tokenizer.id_to_token(cfg.eos_token_id)) is not None:
        tokenizer.add_special_tokens([AddedToken(eos, special=True)])
    return tokenizer


def read_checkpoint(directory: Path) -> Checkpoint:
    """Read and check a checkpoint directory (module docstring); CheckpointError says what is wrong."""
    raw, cfg = read_config(directory)
    tokenizer, tokenizer_files = read_tokenizer(directory, cfg)
    weights_file, tensors = read_tensors(directory)
    params = check_tensors(str(directory / weights_file), raw, cfg, tensors)
    files = {name: sha256_file(directory / name) for name in ["config.json", weights_file, *tokenizer_files]}
    return Checkpoint(directory, raw, params, tokenizer, files)
