"""`python -m train`: train the tokenizer and model, verify them with core, write artifacts/model/."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from core.artifacts import load_from
from train.config import DEFAULT_CORPUS, DEFAULT_OUT, TrainConfig, read_corpus_lines
from train.evaluate import line_recall
from train.manifest import is_current, write_manifest


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="training text, one document a line")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="model directory to write")
    parser.add_argument("--if-stale", action="store_true", help="do nothing when --out already holds this model")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    for f in dataclasses.fields(TrainConfig):
        default = getattr(defaults, f.name)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(default), default=default)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    if args.if_stale and is_current(args.out, args.corpus, cfg):
        print(f"{args.out}: up to date with {args.corpus} and this config; not retraining")
        return 0
    from train.trainer import fresh_dir_beside, replace_dir, train_model  # torch: only when training

    staging = fresh_dir_beside(args.out)
    final_loss = train_model(args.corpus, staging, cfg, show_progress=not args.quiet)
    metrics = {"final_loss": round(final_loss, 6)}
    # core only loads a model its manifest vouches for: write the manifest, measure, then record the result.
    write_manifest(staging, args.corpus, cfg, metrics)
    recall = line_recall(load_from(staging), read_corpus_lines(args.corpus))
    write_manifest(staging, args.corpus, cfg, {**metrics, "line_recall": round(recall.share, 4)})
    replace_dir(staging, args.out)
    print(f"final loss {final_loss:.4f}; greedy line recall {recall.reproduced}/{recall.lines} ({recall.share:.0%})")
    print(f"model written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
