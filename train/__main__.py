"""`python -m train`: train the tokenizer and model, verify them with core, write artifacts/model/.

Start from a preset (--preset tiny|small|base; tiny is the default) and override any of its values with a
flag; or fine-tune a pretrained GPT-2 checkpoint with --init-from DIR (its shape and tokenizer; the schedule
defaults to train.config.FINE_TUNE; the run reports validation loss before and after). Training stops at the
first of --steps, --max-tokens, --time-budget and early stopping; the weights
with the best validation loss are written, with a loss curve in <out>-report/loss.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
from itertools import islice
from pathlib import Path

from train.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from train.config import (
    DEFAULT_CORPUS,
    DEFAULT_OUT,
    DEFAULT_PRESET,
    DEVICES,
    KEEP,
    PRESETS,
    SHAPE_FIELDS,
    ConfigError,
    TrainConfig,
    flag,
)
from train.corpus import CorpusError, split_documents
from train.manifest import fresh_dir_beside, is_current, replace_dir, write_manifest
from train.report import report_dir_for

FLAG_TYPES = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float}
HELP = {
    "max_tokens": "stop after this many training tokens",
    "time_budget": "stop after this many seconds of training (makes the stopping step machine-dependent)",
    "val_fraction": "share of documents held out for validation (0: no validation, no early stop)",
    "eval_interval": "steps between validation evaluations",
    "eval_windows": "windows in the fixed validation sample",
    "keep": "write the weights with the best validation loss, or the last ones",
    "patience": "evaluations without a better validation loss before stopping early (0: never)",
    "device": "auto: a CUDA GPU when torch sees one, else the CPU",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m train", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="training text, one document a line")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model directory to write")
    parser.add_argument("--if-stale", action="store_true", help="do nothing when --out already holds this model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="model shape and schedule (default tiny)"
    )
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="fine-tune this GPT-2 checkpoint (Hugging Face layout): its shape and tokenizer, not a preset's",
    )
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name == "preset":
            continue
        preset_note = "from the preset" if f.name in PRESETS["tiny"] else f"default {getattr(defaults, f.name)}"
        parser.add_argument(
            flag(f.name),
            type=FLAG_TYPES[str(f.type)],  # a string: train/config.py uses `from __future__ import annotations`
            default=None,
            choices={"device": DEVICES, "keep": KEEP}.get(f.name),
            help=f"{HELP.get(f.name, '')} ({preset_note})".lstrip(" "),
        )
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace, init: Checkpoint | None = None) -> TrainConfig:
    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "preset"}
    if init is None:
        return TrainConfig.from_preset(args.preset or DEFAULT_PRESET, **overrides)
    if args.preset is not None:
        raise ConfigError("--preset sets a shape, --init-from's checkpoint has its own: pass one of the two")
    shape = {name: init.config[name] for name in SHAPE_FIELDS}
    return TrainConfig.for_checkpoint(shape, **overrides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        init = read_init_checkpoint(args.init_from) if args.init_from is not None else None
        cfg = config_from(args, init)
    except ConfigError as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 2
    if args.if_stale and is_current(args.out, args.corpus, cfg, init.record() if init else None):
        print(f"{args.out}: up to date with {args.corpus} and this config; not retraining")
        return 0
    staging = fresh_dir_beside(args.out)
    try:
        summary = train_into(staging, args, cfg, init)
        replace_dir(staging, args.out)
    except (ConfigError, CorpusError) as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful replace
    print(f"{summary} -> {args.out}")
    return 0


def read_init_checkpoint(directory: Path) -> Checkpoint:
    """The --init-from checkpoint, read and checked; ConfigError (exit 2) when it is not a usable GPT-2."""
    try:
        init = read_checkpoint(directory)
    except CheckpointError as exc:
        raise ConfigError(f"--init-from: {exc}") from None
    if init.config.get("eos_token_id") is None:
        raise ConfigError(f"--init-from: {directory}/config.json has no eos_token_id; documents are separated by it")
    return init


def train_into(staging: Path, args: argparse.Namespace, cfg: TrainConfig, init: Checkpoint | None) -> str:
    """Train into `staging`, write its manifest and the loss curve; return the one-line summary."""
    from core.artifacts import load_from
    from train.evaluate import MAX_RECALL_LINES, line_recall
    from train.report import write_loss_plot, write_run_json
    from train.trainer import train_model

    result = train_model(args.corpus, staging, cfg, show_progress=not args.quiet, init=init)
    metrics = {
        "train_loss": round(result.train_loss, 6),
        "tokens_seen": result.tokens_seen,
        "steps": result.steps,
        "stop_reason": result.stop_reason,
        "val_loss": None,
        "val_perplexity": None,
        "best_step": None,
    }
    if result.val_loss is not None:
        assert result.best_val_loss is not None  # set at the first evaluation, with val_loss
        metrics.update(
            val_loss=round(result.val_loss, 6),
            val_perplexity=round(math.exp(result.val_loss), 4),
            best_step=result.best_step,
            best_val_loss=round(result.best_val_loss, 6),
        )
    if result.initial_val_loss is not None:
        metrics["initial_val_loss"] = round(result.initial_val_loss, 6)
    training = {"split": result.split, "device": result.device, **({"init_from": init.record()} if init else {})}
    # core only loads a model its manifest vouches for: write the manifest, measure, then record the result.
    write_manifest(staging, args.corpus, cfg, training, metrics)
    lines = list(islice(split_documents(args.corpus, cfg.val_fraction, cfg.seed, False), MAX_RECALL_LINES))
    recall = line_recall(load_from(staging), lines)
    metrics["line_recall"] = round(recall.share, 4)
    write_manifest(staging, args.corpus, cfg, training, metrics)
    report_dir = report_dir_for(args.out)
    plot = write_loss_plot(
        result.train_curve, result.val_curve, report_dir / "loss.png", f"{args.corpus.name}, preset {cfg.preset}"
    )
    write_run_json(
        {
            "seconds": round(result.seconds, 3),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "metrics": metrics,
            "train_curve": result.train_curve,
            "val_curve": result.val_curve,
        },
        report_dir / "run.json",
    )
    before = (
        f"val loss before fine-tuning {result.initial_val_loss:.4f} "
        f"(perplexity {math.exp(result.initial_val_loss):.2f}), after: "
        if result.initial_val_loss is not None
        else ""
    )
    val = before + (
        f"val loss {result.val_loss:.4f} (perplexity {math.exp(result.val_loss):.2f}) of the {cfg.keep} weights, "
        f"best {result.best_val_loss:.4f} at step {result.best_step}"
        if result.val_loss is not None
        else "no validation"
    )
    return (
        f"{cfg.preset}: {result.steps} steps, stopped by {result.stop_reason}; {result.tokens_seen:,} tokens in "
        f"{result.seconds:.1f} s ({result.tokens_per_second:,.0f} tok/s) on {result.device}; train loss "
        f"{result.train_loss:.4f}; {val}; greedy recall of training lines {recall.reproduced}/{recall.lines} "
        f"({recall.share:.0%}); loss curve {plot}"
    )


if __name__ == "__main__":
    sys.exit(main())
