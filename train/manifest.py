"""The model's manifest: sha256 of every file, the packing (`dtype`) and parameter count, and what made the model:
the corpus and training config, the split, the device and its metrics (python -m train), or the checkpoint it
was imported from (python -m train.convert). And the one way a model directory is written: into a fresh
directory beside the target, renamed into place when complete.

Timestamp-free, so the same corpus, config and device give the same manifest (and the same bundle bytes).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib.metadata import version
from pathlib import Path

from core.artifacts import MANIFEST, sha256_file
from core.weights import packing_of, parameter_count
from train.config import TrainConfig
from train.corpus import corpus_record

MODEL_NAME = "tinyllm"
FORMAT = "tinyllm-model/1"
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy")


def write_manifest(model_dir: Path, corpus: Path, cfg: TrainConfig, training: dict, metrics: dict) -> dict:
    """Hash every file in model_dir and write manifest.json beside them. `training`: split and device (and
    `init_from`, the source checkpoint's record, for a fine-tuned model)."""
    return write_model_manifest(
        model_dir,
        {"corpus": corpus_record(corpus), "train_config": cfg.as_dict(), **training, "metrics": metrics},
    )


def write_model_manifest(model_dir: Path, provenance: dict, name: str = MODEL_NAME) -> dict:
    """manifest.json for the files in model_dir: their sha256s, the weights' packing and parameter count, the
    library versions, and `provenance` (what made the model)."""
    files = {p.name: sha256_file(p) for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MANIFEST}
    weights = model_dir / "model.safetensors"
    manifest = {
        "format": FORMAT,
        "name": name,
        "files": files,
        "dtype": packing_of(weights),
        "parameters": parameter_count(weights),
        **provenance,
        "versions": {lib: version(lib) for lib in LIBRARIES},
    }
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def fresh_dir_beside(target: Path) -> Path:
    """A temporary directory next to `target`, so the finished model can be renamed into place atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))


def replace_dir(staging: Path, target: Path) -> None:
    """Move `staging` to `target`, replacing an older model (a half-written model never sits at target)."""
    if target.exists():
        shutil.rmtree(target)
    staging.chmod(0o755)  # mkdtemp makes it private; a model directory is ordinary build output
    staging.rename(target)


def is_current(model_dir: Path, corpus: Path, cfg: TrainConfig, init_from: dict | None = None) -> bool:
    """True when model_dir holds a model trained from this exact corpus with this exact config (and, fine-tuned,
    from the checkpoint `init_from` records)."""
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        corpus_sha256 = sha256_file(corpus)
    except (OSError, ValueError):
        return False
    return (
        manifest.get("corpus", {}).get("sha256") == corpus_sha256
        and manifest.get("train_config") == cfg.as_dict()
        and manifest.get("init_from") == init_from
    )
