"""`python -m bench [--quick] [--only engine|engines|http|runtime|training|presets|packing|deploycost]
[--model-dir DIR] [--out DIR]`
(`make bench [QUICK=1]`).

Prints each benchmark's markdown table and writes it to <out>/<name>.md (default bench/results/, which CI
uploads). --quick runs few samples: it checks that the benchmark works, its numbers are not for quoting.
The model directory follows core.artifacts' precedence: --model-dir > TINYLLM_MODEL_DIR > artifacts/model/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import deploy_cost, engine, engines, http, packing, presets, runtime, training
from bench.report import RESULTS_DIR, write
from core.artifacts import resolve_model_dir
from functions.devtools.runtimes import RuntimeUnavailable

BENCHMARKS = {
    "engine": lambda model_dir, quick, out: engine.run(model_dir, engine.QUICK if quick else engine.FULL),
    "engines": lambda model_dir, quick, out: engines.run(model_dir, engines.QUICK if quick else engines.FULL, out),
    "http": lambda model_dir, quick, out: http.run(model_dir, http.QUICK if quick else http.FULL),
    "runtime": lambda model_dir, quick, out: runtime.run(model_dir, runtime.QUICK if quick else runtime.FULL),
    "training": lambda model_dir, quick, out: training.run(training.QUICK if quick else training.FULL, out),
    "presets": lambda model_dir, quick, out: presets.run(model_dir, presets.QUICK if quick else presets.FULL, out),
    "packing": lambda model_dir, quick, out: packing.run(model_dir, packing.QUICK if quick else packing.FULL),
    "deploycost": lambda model_dir, quick, out: deploy_cost.run(
        model_dir, deploy_cost.QUICK if quick else deploy_cost.FULL
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run, not numbers to quote")
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append", help="run only this (repeatable)")
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help=f"where tables go (default {RESULTS_DIR})")
    args = parser.parse_args(argv)
    model_dir = resolve_model_dir(args.model_dir).resolve()
    mode = "quick" if args.quick else "full"
    for name in args.only or list(BENCHMARKS):
        print(f"running the {name} benchmark ({mode})…", file=sys.stderr, flush=True)
        text = f"## {name} benchmark ({mode}: `python -m bench{' --quick' if args.quick else ''}`)\n\n"
        try:
            text += BENCHMARKS[name](model_dir, args.quick, args.out)
        except (RuntimeUnavailable, ValueError) as exc:  # no CPython 3.12, or a flag this benchmark cannot honour
            print(f"python -m bench: {name}: {exc}", file=sys.stderr)
            return 2
        print(text + "\n", flush=True)
        print(f"wrote {write(name, text, args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
