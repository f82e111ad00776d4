"""`python -m train`: train the tokenizer and model, verify them with core, write artifacts/model/.

Start from a preset (--preset tiny|small|base; tiny is the default) and override any of its values with a
flag. Training stops at the first of --steps, --max-tokens, --time-budget and early stopping; the weights
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

from train.config import DEFAULT_CORPUS, DEFAULT_OUT, DEVICES, KEEP, PRESETS, ConfigError, TrainConfig, flag
from train.corpus import CorpusError, split_documents
from train.manifest import is_current, write_manifest
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
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="model shape and schedule")
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


def config_from(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.from_preset(
        args.preset, **{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "preset"}
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config_from(args)
    except ConfigError as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 2
    if args.if_stale and is_current(args.out, args.corpus, cfg):
        print(f"{args.out}: up to date with {args.corpus} and this config; not retraining")
        return 0
    from train.trainer import fresh_dir_beside, replace_dir  # torch: only when training

    staging = fresh_dir_beside(args.out)
    try:
        summary = train_into(staging, args, cfg)
        replace_dir(staging, args.out)
    except (ConfigError, CorpusError) as exc:
        print(f"python -m train: error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful replace
    print(f"{summary} -> {args.out}")
    return 0


def train_into(staging: Path, args: argparse.Namespace, cfg: TrainConfig) -> str:
    """Train into `staging`, write its manifest and the loss curve; return the one-line summary."""
    from core.artifacts import load_from
    from train.evaluate import MAX_RECALL_LINES, line_recall
    from train.report import write_loss_plot, write_run_json
    from train.trainer import train_model

    result = train_model(args.corpus, staging, cfg, show_progress=not args.quiet)
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
    training = {"split": result.split, "device": result.device}
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
    val = (
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
