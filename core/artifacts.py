"""Find the baked model, verify it against its manifest, and load it once per process.

Where the model directory is looked for (the first that applies wins):
  1. the `model_dir` argument (the CLI's --model-dir);
  2. the environment variable TINYLLM_MODEL_DIR;
  3. the default: `model/` beside the `core` package (the layout of a deployable bundle), else
     `artifacts/model/` beside it (the layout of this repository after `python -m train`).

A model directory holds config.json, model.safetensors, tokenizer.json and manifest.json; the manifest lists
the sha256 of every other file, and every one is checked before any is used. The weights may be packed fp32,
fp16 or int8 (core/weights.py; the manifest's `dtype` must name the file's packing); they are unpacked to fp32
once, at load. The format is described in docs/models.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from core.generate import Engine
from core.model import GPT2, GPT2Config
from core.weights import packing_of, read_safetensors, unpack

ENV_MODEL_DIR = "TINYLLM_MODEL_DIR"
MANIFEST = "manifest.json"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIRS = (PACKAGE_ROOT / "model", PACKAGE_ROOT / "artifacts" / "model")


class ArtifactError(Exception):
    """The model directory is missing, incomplete or does not match its manifest."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified model ready to serve."""

    directory: Path
    model: Engine  # core.model.GPT2, or core.onnx_engine.OnnxGPT2 for a manifest saying `engine: onnx`
    tokenizer: Tokenizer
    manifest: dict[str, Any]
    manifest_sha256: str

    @property
    def name(self) -> str:
        return self.manifest.get("name", "tinyllm")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_model_dir(model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Apply the precedence in the module docstring; raise ArtifactError naming what was tried."""
    if model_dir is not None:
        return Path(model_dir)
    if os.environ.get(ENV_MODEL_DIR):
        return Path(os.environ[ENV_MODEL_DIR])
    for candidate in DEFAULT_DIRS:
        if (candidate / MANIFEST).is_file():
            return candidate
    tried = ", ".join(str(d) for d in DEFAULT_DIRS)
    raise ArtifactError(f"no model found (tried {tried}); train one with `python -m train` or set {ENV_MODEL_DIR}")


def verify(model_dir: Path) -> tuple[dict[str, Any], str]:
    """Check every file the manifest lists against its sha256; return (manifest, manifest sha256)."""
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path}: manifest is missing")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{manifest_path}: not a tinyllm manifest ({exc})") from None
    weights = "model.onnx" if manifest.get("engine") == "onnx" else "model.safetensors"  # see load_from
    for required in ("config.json", weights, "tokenizer.json"):
        if required not in files:
            raise ArtifactError(f"{manifest_path}: lists no sha256 for {required}")
    for name, expected in sorted(files.items()):
        path = model_dir / name
        if not path.is_file():
            raise ArtifactError(f"{path}: file listed in the manifest is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ArtifactError(f"{path}: sha256 {actual} does not match the manifest ({expected})")
    return manifest, sha256_file(manifest_path)


def load_from(model_dir: Path) -> LoadedModel:
    """Verify and load one model directory (no caching: see `load`)."""
    manifest, manifest_sha256 = verify(model_dir)
    try:
        cfg = GPT2Config.from_dict(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
        if manifest.get("engine") == "onnx":  # python -m train.onnx_export's models; onnxruntime only for them
            from core.onnx_engine import OnnxGPT2

            model = OnnxGPT2.from_dir(cfg, model_dir)
        else:
            weights_path = model_dir / "model.safetensors"
            packing, recorded = packing_of(weights_path), manifest.get("dtype", "fp32")
            if packing != recorded:
                raise ValueError(f"model.safetensors is packed {packing} but the manifest says dtype {recorded}")
            model = GPT2.from_checkpoint(cfg, unpack(read_safetensors(weights_path)))
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{model_dir}: {exc}") from None
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    return LoadedModel(model_dir, model, tokenizer, manifest, manifest_sha256)


@functools.lru_cache(maxsize=4)
def _load_cached(model_dir: Path) -> LoadedModel:
    return load_from(model_dir)


def load(model_dir: str | os.PathLike[str] | None = None) -> LoadedModel:
    """The verified model for this process, loaded on first use and reused after."""
    return _load_cached(resolve_model_dir(model_dir).resolve())
