"""The model's manifest: sha256 of every file, the corpus and training config that made it, the split, the
device, its metrics.

Timestamp-free, so the same corpus, config and device give the same manifest (and the same bundle bytes).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from core.artifacts import MANIFEST, sha256_file
from train.config import TrainConfig
from train.corpus import corpus_record

MODEL_NAME = "tinyllm"
FORMAT = "tinyllm-model/1"
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy")


def write_manifest(model_dir: Path, corpus: Path, cfg: TrainConfig, training: dict, metrics: dict) -> dict:
    """Hash every file in model_dir and write manifest.json beside them. `training`: split and device."""
    files = {p.name: sha256_file(p) for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {
        "format": FORMAT,
        "name": MODEL_NAME,
        "files": files,
        "corpus": corpus_record(corpus),
        "train_config": cfg.as_dict(),
        **training,
        "metrics": metrics,
        "versions": {lib: version(lib) for lib in LIBRARIES},
    }
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def is_current(model_dir: Path, corpus: Path, cfg: TrainConfig) -> bool:
    """True when model_dir holds a model trained from this exact corpus with this exact config."""
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
        corpus_sha256 = sha256_file(corpus)
    except (OSError, ValueError):
        return False
    return manifest.get("corpus", {}).get("sha256") == corpus_sha256 and manifest.get("train_config") == cfg.as_dict()
