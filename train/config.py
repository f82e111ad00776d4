"""What determines a model: the corpus and the training config. No torch here, so checking whether
artifacts/model/ is current (`python -m train --if-stale`) costs a fraction of a second."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "train" / "data" / "corpus.txt"
DEFAULT_OUT = REPO_ROOT / "artifacts" / "model"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model besides the corpus (recorded in the manifest)."""

    vocab_size: int = 1024
    n_layer: int = 1
    n_head: int = 4
    n_embd: int = 128
    n_positions: int = 256
    block_size: int = 64
    steps: int = 150
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    seed: int = 1234
    threads: int = 2

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def read_corpus_lines(corpus: Path) -> list[str]:
    """Non-empty lines of the corpus, each one training document."""
    lines = [line.strip() for line in corpus.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"{corpus}: the corpus has no non-empty line to train on")
    return lines
