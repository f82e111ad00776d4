"""What determines a model: the corpus and the training config. No torch here, so checking whether
artifacts/model/ is current (`python -m train --if-stale`) costs a fraction of a second.

A config starts from a preset (`tiny`, the default, `small` or `base`); any explicit flag overrides the
preset's value. The resolved config, preset name included, is what the manifest records.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT / "train" / "data" / "corpus.txt"
DEFAULT_OUT = REPO_ROOT / "artifacts" / "model"
DEVICES = ("auto", "cpu", "cuda")
MIN_VOCAB = 257  # the 256 byte symbols of byte-level BPE plus the end-of-text token
MAX_VOCAB = 65_535  # token ids are stored as uint16

KEEP = ("best", "last")
# Model shape and optimisation per preset. tiny memorises the bundled corpus in about 30 s on 2 CPUs: its job
# is to reproduce its lines, which a held-out line can only contradict, so by default it keeps the last weights
# and never stops early (its validation loss is still measured and recorded). small (4×256) and base (6×384)
# are sized for 1–50 MB corpora (nanoGPT's CPU Shakespeare shape and one step up) and keep the weights with
# the best validation loss, stopping after 4 evaluations without a better one.
PRESETS: dict[str, dict] = {
    "tiny": dict(
        vocab_size=1024,
        n_layer=1,
        n_head=4,
        n_embd=128,
        block_size=64,
        batch_size=64,
        steps=120,
        learning_rate=3e-3,
        warmup_steps=20,
        keep="last",
        patience=0,
    ),
    "small": dict(
        vocab_size=4096,
        n_layer=4,
        n_head=4,
        n_embd=256,
        block_size=128,
        batch_size=32,
        steps=3000,
        learning_rate=1e-3,
        warmup_steps=100,
        keep="best",
        patience=4,
    ),
    "base": dict(
        vocab_size=8192,
        n_layer=6,
        n_head=6,
        n_embd=384,
        block_size=256,
        batch_size=32,
        steps=6000,
        learning_rate=6e-4,
        warmup_steps=200,
        keep="best",
        patience=4,
    ),
}
DEFAULT_PRESET = "tiny"
# Fine-tuning a pretrained checkpoint (--init-from): its shape is the checkpoint's, and these are the schedule's
# defaults (nanoGPT's finetune_shakespeare: a learning rate near 3e-5, a few hundred steps of small batches).
INIT_FROM = "init-from"  # what the manifest's train_config records as the preset
FINE_TUNE = dict(
    block_size=128,
    batch_size=8,
    steps=200,
    learning_rate=3e-5,
    warmup_steps=10,
    eval_interval=25,
    eval_windows=32,
    keep="best",
    patience=4,
)
SHAPE_FIELDS = ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions")


class ConfigError(ValueError):
    """A training setting that cannot work; the message names the flag and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained model besides the corpus (recorded in the manifest).

    Defaults are the tiny preset's. Training stops at the first of: `steps`, `max_tokens` (when set),
    `time_budget` seconds (when set; a time budget makes the stopping step depend on the machine's speed),
    or early stopping (`patience` evaluations without a better validation loss; 0 turns it off). `keep`: write
    the weights with the best validation loss, or the last ones.
    """

    preset: str = DEFAULT_PRESET
    vocab_size: int = PRESETS[DEFAULT_PRESET]["vocab_size"]
    n_layer: int = PRESETS[DEFAULT_PRESET]["n_layer"]
    n_head: int = PRESETS[DEFAULT_PRESET]["n_head"]
    n_embd: int = PRESETS[DEFAULT_PRESET]["n_embd"]
    n_positions: int = 256
    block_size: int = PRESETS[DEFAULT_PRESET]["block_size"]
    batch_size: int = PRESETS[DEFAULT_PRESET]["batch_size"]
    steps: int = PRESETS[DEFAULT_PRESET]["steps"]
    max_tokens: int | None = None
    time_budget: float | None = None
    learning_rate: float = PRESETS[DEFAULT_PRESET]["learning_rate"]
    warmup_steps: int = PRESETS[DEFAULT_PRESET]["warmup_steps"]
    weight_decay: float = 0.01
    val_fraction: float = 0.1
    eval_interval: int = 50
    eval_windows: int = 64
    keep: str = PRESETS[DEFAULT_PRESET]["keep"]
    patience: int = PRESETS[DEFAULT_PRESET]["patience"]
    seed: int = 1234
    threads: int = 2
    device: str = "auto"

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_PRESET, **overrides) -> TrainConfig:
        """The preset's values, then every override that is not None; validated."""
        if preset not in PRESETS:
            raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        explicit = {k: v for k, v in overrides.items() if v is not None}
        return cls(**{**PRESETS[preset], **explicit, "preset": preset}).validated()

    @classmethod
    def for_checkpoint(cls, shape: dict[str, int], **overrides) -> TrainConfig:
        """Fine-tuning: the checkpoint's `shape` (SHAPE_FIELDS), FINE_TUNE's schedule, then every override that
        is not None; a shape flag is refused, since the checkpoint's weights fix the shape."""
        explicit = {k: v for k, v in overrides.items() if v is not None}
        if given := [k for k in SHAPE_FIELDS if k in explicit]:
            raise ConfigError(
                f"{flag(given[0])}: the shape comes from the --init-from checkpoint; drop the flag "
                f"(shape flags: {', '.join(flag(k) for k in SHAPE_FIELDS)})"
            )
        schedule = {**FINE_TUNE, "block_size": min(FINE_TUNE["block_size"], shape["n_positions"])}
        return cls(**{**schedule, **explicit, **shape, "preset": INIT_FROM}).validated()

    def validated(self) -> TrainConfig:
        positive = (
            "vocab_size",
            "n_layer",
            "n_head",
            "n_embd",
            "n_positions",
            "block_size",
            "batch_size",
            "steps",
            "eval_interval",
            "eval_windows",
            "threads",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{flag(name)} must be at least 1, not {getattr(self, name)}")
        for name in ("warmup_steps", "patience"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{flag(name)} must be 0 or more, not {getattr(self, name)}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"--max-tokens must be at least 1 (omit it for no token limit), not {self.max_tokens}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise ConfigError(
                f"--time-budget must be more than 0 seconds (omit it for no time limit), not {self.time_budget:g}"
            )
        if not MIN_VOCAB <= self.vocab_size <= MAX_VOCAB:
            raise ConfigError(f"--vocab-size must be between {MIN_VOCAB} and {MAX_VOCAB}, not {self.vocab_size}")
        if self.n_embd % self.n_head:
            raise ConfigError(f"--n-embd ({self.n_embd}) must be a multiple of --n-head ({self.n_head})")
        if self.block_size > self.n_positions:
            raise ConfigError(f"--block-size ({self.block_size}) must not exceed --n-positions ({self.n_positions})")
        if not 0 <= self.val_fraction <= 0.5:
            raise ConfigError(f"--val-fraction must be between 0 and 0.5, not {self.val_fraction:g}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ConfigError(f"--learning-rate must be a finite number more than 0, not {self.learning_rate:g}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"--weight-decay must be a finite number, 0 or more, not {self.weight_decay:g}")
        if not 0 <= self.seed < 2**63:  # numpy takes any non-negative seed, torch.manual_seed at most 2**64 - 1
            raise ConfigError(f"--seed must be from 0 to {2**63 - 1}, not {self.seed}")
        if self.keep not in KEEP:
            raise ConfigError(f"--keep must be one of {', '.join(KEEP)}, not {self.keep!r}")
        if self.val_fraction == 0 and (self.keep == "best" or self.patience):
            raise ConfigError("--val-fraction 0 leaves nothing to validate on: pass --keep last --patience 0 with it")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        return self

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def read_corpus_lines(corpus: Path) -> list[str]:
    """Every document (non-empty line, stripped) of a small corpus, in order; large ones go through train.corpus."""
    from train.corpus import documents

    return [doc for _, doc in documents(corpus)]
