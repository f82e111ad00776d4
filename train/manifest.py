"""The model's manifest: sha256 of every file, the corpus and training config that made it, its metrics.

Timestamp-free, so the same corpus and config give the same manifest (and the same bundle bytes).
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from core.artifacts import MANIFEST, sha256_file
from train.config import TrainConfig

MODEL_NAME = "tinyllm"
FORMAT = "tinyllm-model/1"
LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy")


def corpus_record(corpus: Path) -> dict:
    text = corpus.read_text(encoding="utf-8")
    return {"sha256": sha256_file(corpus), "bytes": corpus.stat().st_size, "lines": len(text.splitlines())}


def write_manifest(model_dir: Path, corpus: Path, cfg: TrainConfig, metrics: dict) -> dict:
    """Hash every file in model_dir and write manifest.json beside them."""
    files = {p.name: sha256_file(p) for p in sorted(model_dir.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {
        "format": FORMAT,
        "name": MODEL_NAME,
        "files": files,
        "corpus": corpus_record(corpus),
        "train_config": cfg.as_dict(),
        "metrics": metrics,
        "versions": {lib: version(lib) for lib in LIBRARIES},
    }
    (model_dir / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def is_current(model_dir: Path, corpus: Path, cfg: TrainConfig) -> bool:
    """True when model_dir holds a model trained from this exact corpus with this exact config."""
    try:
        manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("corpus", {}).get("sha256") == sha256_file(corpus) and manifest.get(
        "train_config"
    ) == cfg.as_dict()
