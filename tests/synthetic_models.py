"""Model directories for deployment tests that only need a model's shape and size, not its weights: config.json at
a real GPT-2-family shape, a model.safetensors whose header names the packing and whose data is a sparse run of
zeros (or random bytes, where a test needs them not to compress), a placeholder tokenizer and a valid manifest.
Infra reads no more than that (infra.model_info), so these cost no training, no torch and almost no disk."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

# The shapes of the checkpoints the issue plans for (Hugging Face config.json values).
SHAPES = {
    "distilgpt2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 6, "n_head": 12},
    "gpt2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
}
BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "int8": 1}
SAFETENSORS_DTYPE = {"fp32": "F32", "fp16": "F16", "int8": "I8"}


def gpt2_weights_bytes(shape: str, dtype: str) -> int:
    """The weights' size at rest for a shape and packing (tied embeddings once; int8 scales left out)."""
    from infra.model_info import gpt2_parameters

    return gpt2_parameters(SHAPES[shape]) * BYTES_PER_WEIGHT[dtype]


def write_safetensors(path: Path, dtype: str, data_bytes: int, *, random: bool = False) -> None:
    """A valid safetensors file holding one tensor of `data_bytes` bytes in `dtype`: sparse zeros, or random."""
    tensor = {"dtype": SAFETENSORS_DTYPE[dtype], "shape": [data_bytes // BYTES_PER_WEIGHT[dtype]]}
    header = json.dumps({"weights": {**tensor, "data_offsets": [0, data_bytes]}}).encode()
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(header)) + header)
        if random:
            for start in range(0, data_bytes, 1 << 24):
                file.write(os.urandom(min(1 << 24, data_bytes - start)))
        else:
            file.truncate(8 + len(header) + data_bytes)  # a hole: no blocks written


def make_model_dir(
    root: Path,
    name: str,
    shape: str = "gpt2",
    dtype: str = "fp16",
    *,
    data_bytes: int | None = None,
    random: bool = False,
    hashed: bool = True,
) -> Path:
    """A model directory of `shape` packed as `dtype` (data_bytes: the weights' size, by default the real one).
    `hashed=False` lists placeholder sha256s (no file is read back): for readers that skip verification."""
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(json.dumps({"model_type": "gpt2", **SHAPES[shape]}), encoding="utf-8")
    (directory / "tokenizer.json").write_text("{}", encoding="utf-8")
    size = gpt2_weights_bytes(shape, dtype) if data_bytes is None else data_bytes
    write_safetensors(directory / "model.safetensors", dtype, size, random=random)
    files = {}
    for path in sorted(directory.iterdir()):
        if not hashed:
            files[path.name] = "0" * 64
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 22), b""):
                digest.update(chunk)
        files[path.name] = digest.hexdigest()
    manifest = {"format": "tinyllm-model/1", "name": name, "files": files}
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory
