"""`python -m train.convert SRC_DIR --out MODEL_DIR [--dtype fp32|fp16|int8]`: import a GPT-2-family checkpoint.

SRC_DIR is a checkpoint in the Hugging Face layout (train/checkpoint.py says what is accepted and what refused),
e.g. the directory `huggingface-cli download distilgpt2` prints. MODEL_DIR becomes a model directory that core
serves and infra.bundle bakes: config.json (the source's), model.safetensors (packed as --dtype, see
core/weights.py), tokenizer.json and manifest.json (sha256 of every file, the source's files and config).
It is written into a fresh directory beside MODEL_DIR, loaded once by the numpy engine, then renamed into place:
a refused or failed import leaves no model directory behind and an older one untouched. Refusals are one line
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from core.artifacts import ArtifactError, load_from
from core.weights import DTYPES, METADATA_DTYPE, pack
from train.checkpoint import Checkpoint, CheckpointError, read_checkpoint
from train.manifest import fresh_dir_beside, replace_dir, write_model_manifest

PROG = "python -m train.convert"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").split("\n\n")[0].split(": ", 1)[1])
    parser.add_argument("source", type=Path, metavar="SRC_DIR", help="a GPT-2 checkpoint directory (Hugging Face)")
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write (replaced if present)")
    packings = "{" + ",".join(DTYPES) + "}"
    parser.add_argument("--dtype", default="fp32", metavar=packings, help="how the weights are packed (default fp32)")
    parser.add_argument(
        "--name", default=None, help="the model's name in the API (default: the checkpoint's name, see default_name)"
    )
    return parser.parse_args(argv)


def write_model(checkpoint: Checkpoint, staging: Path, dtype: str, name: str) -> None:
    """config.json, the packed weights, tokenizer.json and the manifest, into `staging`."""
    from safetensors.numpy import save_file

    (staging / "config.json").write_text(json.dumps(checkpoint.config, indent=2, sort_keys=True) + "\n")
    save_file(pack(checkpoint.tensors, dtype), str(staging / "model.safetensors"), metadata={METADATA_DTYPE: dtype})
    checkpoint.tokenizer.save(str(staging / "tokenizer.json"))
    write_model_manifest(staging, {"source": checkpoint.record()}, name=name)


def default_name(source: Path) -> str:
    """The model's API name when --name is not given: the repository's for a Hugging Face cache snapshot
    (`huggingface-cli download distilgpt2` prints `.../models--distilgpt2/snapshots/<commit>`, and
    `openai-community/gpt2` is cached as `models--openai-community--gpt2`), else the directory's name."""
    source = source.resolve()
    if source.parent.name == "snapshots" and source.parent.parent.name.startswith("models--"):
        return source.parent.parent.name.split("--")[-1]
    return source.name


def convert(source: Path, out: Path, dtype: str, name: str | None = None) -> Path:
    """Import `source` into `out` (module docstring); CheckpointError when it cannot be served exactly."""
    if source.resolve() == out.resolve():
        raise CheckpointError(f"--out {out} is the source directory; write the model directory somewhere else")
    checkpoint = read_checkpoint(source)
    staging = fresh_dir_beside(out)
    try:
        write_model(checkpoint, staging, dtype, name or default_name(source))
        load_from(staging)  # the engine's own checks (manifest, shapes): what is renamed into place serves
        replace_dir(staging, out)
    except ArtifactError as exc:
        raise CheckpointError(str(exc)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful replace
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.dtype not in DTYPES:  # checked here, not by argparse, so the refusal is one line
            raise CheckpointError(f"--dtype {args.dtype!r} is not one of {', '.join(DTYPES)}")
        convert(args.source, args.out, args.dtype, args.name)
    except (CheckpointError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    manifest = json.loads((args.out / "manifest.json").read_text())
    size = (args.out / "model.safetensors").stat().st_size
    print(f"{args.source} -> {args.out}: {manifest['parameters']:,} parameters, {args.dtype}, {size / 1e6:,.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
