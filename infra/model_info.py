"""What infra knows about a model directory without loading it (infra never imports core or torch): its manifest,
name, packing (dtype), parameter count and sizes, and the memory an instance needs to serve it.

A model directory is valid when `manifest.json` parses, lists a sha256 for config.json, model.safetensors and
tokenizer.json, and every file it lists exists with that sha256 (what core.artifacts checks at cold start, checked
here before a package is built). Reading one never writes anything.

The memory rule (`serving_bytes`), for the numpy engine, which computes in fp32 whatever the packing at rest
(docs/models.md, "How much memory a model takes"): a loaded model holds 4 bytes per parameter, and each request
fills a KV cache preallocated for the whole context; at cold start the weights file is read whole and unpacked
to fp32, so for a moment both are in memory. An instance needs, at its peak:

    file bytes + 4 × parameters + 8 × n_layer × n_positions × n_embd (one KV cache) + RUNTIME_BYTES

(for an fp32 file the first two overlap, so the rule overstates it by the file's size), and the stack asks for
that × HEADROOM, rounded up to a memory size the cloud offers (infra.memory). The rule is checked against the
peak RSS measured at DistilGPT2's and GPT-2's shapes (`python -m bench --only deploycost`).
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL_DIR = REPO_ROOT / "artifacts" / "model"  # what python -m train writes, and what is deployed by default
MANIFEST = "manifest.json"
# The weights file each engine reads (the manifest's `engine`: core.artifacts picks the engine by it).
WEIGHTS_FILE = {"numpy": "model.safetensors", "onnx": "model.onnx"}
MB = 1000 * 1000
MIB = 1024 * 1024
# Peak RSS of a process serving the 0.36 M-parameter default model is ~80 MB here (CPython, numpy, tokenizers,
# the adapter); the platforms' own runtime processes share the instance too. 160 MB covers both.
RUNTIME_BYTES = 160 * MB
HEADROOM = 1.25  # allocator slack, a second request's activations, and the platform's page cache
# safetensors dtype names -> how the packing is named on the command line (train.convert --dtype)
PACKINGS = {"F32": "fp32", "F16": "fp16", "BF16": "bf16", "I8": "int8", "U8": "uint8", "F64": "fp64"}
MAX_HEADER_BYTES = 100 * MB  # the safetensors format's own bound on its JSON header


class ModelDirError(Exception):
    """The directory is not a model this repository can serve (one line: what is wrong and how to fix it)."""


@dataclass(frozen=True)
class ModelInfo:
    """A verified model directory, as far as deploying it is concerned."""

    directory: Path
    name: str
    engine: str  # "numpy" (model.safetensors, computed in fp32) or "onnx" (model.onnx, computed at its packing)
    dtype: str  # the packing at rest: the manifest's `dtype`, else what most of model.safetensors' bytes are
    parameters: int  # the manifest's `parameters` (weights in the file), else counted from config.json
    file_bytes: int  # every file the manifest lists, plus the manifest
    weights_bytes: int  # the engine's weights file (model.safetensors or model.onnx)
    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int

    def describe(self) -> str:
        return f"model {self.name!r} ({self.dtype}, {self.parameters / 1e6:.1f} M parameters)"

    @property
    def serving_bytes(self) -> int:
        """Peak memory of an instance serving this model (the rule in the module docstring), before headroom."""
        kv_cache = 2 * 4 * self.n_layer * self.n_positions * self.n_embd
        # ONNX Runtime computes at the graph's packing: the loaded weights are the file's size again, not 4 bytes a
        # parameter (docs/engines.md measures 262 MB peak for GPT-2 int8, under this rule's 485 MB).
        resident = self.weights_bytes if self.engine == "onnx" else 4 * self.parameters
        return self.weights_bytes + resident + kv_cache + RUNTIME_BYTES

    @property
    def required_mb(self) -> int:
        """The memory to ask for: serving_bytes with headroom, in the clouds' memory-setting MB (2^20 bytes:
        Lambda's 1024 MB, Cloud Run's 1 GiB and Flex Consumption's 2048 MB are all powers of two)."""
        return -(-int(self.serving_bytes * HEADROOM) // MIB)


def gpt2_parameters(config: dict) -> int:
    """Parameters of a GPT-2 of this config.json: per block two layer norms, c_attn, c_proj and the MLP; the token
    and position embeddings and the final layer norm; the head tied to the token embeddings."""
    C, L, V, P = config["n_embd"], config["n_layer"], config["vocab_size"], config["n_positions"]
    inner = config.get("n_inner") or 4 * C
    block = 4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * inner + inner) + (inner * C + C)
    return L * block + V * C + P * C + 2 * C


def safetensors_packing(path: Path) -> str:
    """The dtype that holds most of the file's tensor bytes, read from the header alone."""
    try:
        with open(path, "rb") as file:
            (size,) = struct.unpack("<Q", file.read(8))
            if size > MAX_HEADER_BYTES:
                raise ValueError(f"header of {size} bytes")
            header = json.loads(file.read(size))
        totals: dict[str, int] = {}
        for name, tensor in header.items():
            if name != "__metadata__":
                begin, end = tensor["data_offsets"]
                totals[tensor["dtype"]] = totals.get(tensor["dtype"], 0) + end - begin
    except (OSError, ValueError, struct.error, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: not a readable safetensors file ({exc})") from None
    if not totals:
        raise ModelDirError(f"{path}: holds no tensors")
    dtype = max(totals, key=lambda name: totals[name])
    return PACKINGS.get(dtype, dtype.lower())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(model_dir: Path, verify: bool = True) -> dict:
    """The directory's manifest, with its listed files present and (`verify`) matching their sha256."""
    path = model_dir / MANIFEST
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: no such directory")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
            raise TypeError("'files' is not a map of file name to sha256")
    except FileNotFoundError:
        raise ModelDirError(
            f"{model_dir}: no {MANIFEST}; make a model directory with python -m train or python -m train.convert"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{path}: not a model manifest ({type(exc).__name__}: {exc})") from None
    engine = manifest.get("engine", "numpy")
    if engine not in WEIGHTS_FILE:
        raise ModelDirError(f"{path}: engine {engine!r} is not one of {', '.join(WEIGHTS_FILE)}")
    for required in ("config.json", WEIGHTS_FILE[engine], "tokenizer.json"):
        if required not in files:
            raise ModelDirError(f"{path}: lists no sha256 for {required}")
    for name, expected in sorted(files.items()):
        listed = model_dir / name
        if "/" in name or name in ("", ".", "..", MANIFEST) or not listed.is_file():
            raise ModelDirError(f"{listed}: listed in the manifest but not a file of the directory")
        if verify and sha256_file(listed) != expected:
            raise ModelDirError(f"{listed}: sha256 does not match the manifest; rebuild the model directory")
    return manifest


def read_model(model_dir: Path, verify: bool = True) -> ModelInfo:
    """Describe a model directory, its files checked against the manifest's sha256 unless `verify` is False (sizes
    are all stack validation needs; the bundle verifies); ModelDirError (one line) if it is not a servable model."""
    manifest = read_manifest(model_dir, verify)
    config_path = model_dir / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        parameters = gpt2_parameters(config)
        shape = (config["vocab_size"], config["n_positions"], config["n_embd"], config["n_layer"])
        if not all(isinstance(v, int) and v > 0 for v in shape):
            raise ValueError("vocab_size, n_positions, n_embd and n_layer must be positive integers")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelDirError(f"{config_path}: not a GPT-2 config ({type(exc).__name__}: {exc})") from None
    engine = manifest.get("engine", "numpy")
    weights = model_dir / WEIGHTS_FILE[engine]
    if engine == "onnx":  # python -m train.onnx_export records the graph's packing; ONNX has no header to read it
        packing = str(manifest.get("dtype", "fp32"))
    else:
        packing = safetensors_packing(weights)
        if manifest.get("dtype", packing) != packing:
            raise ModelDirError(f"{weights}: packed {packing}, but the manifest says dtype {manifest['dtype']!r}")
    listed = [model_dir / name for name in manifest["files"]] + [model_dir / MANIFEST]
    return ModelInfo(
        directory=model_dir,
        name=str(manifest.get("name") or model_dir.name),
        engine=engine,
        dtype=packing,
        parameters=manifest["parameters"] if isinstance(manifest.get("parameters"), int) else parameters,
        file_bytes=sum(p.stat().st_size for p in listed),
        weights_bytes=weights.stat().st_size,
        vocab_size=shape[0],
        n_positions=shape[1],
        n_embd=shape[2],
        n_layer=shape[3],
    )
