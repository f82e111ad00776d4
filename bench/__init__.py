"""Benchmarks that print the tables quoted in docs/benchmarks.md: `python -m bench [--quick]` (see bench.__main__).

bench.engine    numpy core vs transformers: warm latency, cold start, peak RSS
bench.http      the local functions-framework server under bounded concurrency
bench.runtime   each package's cold start as its cloud starts it (CPython 3.12), and its size
bench.training  the tiny preset trained on a real 1.3 MB corpus (bench.corpus fetches it)
bench.presets   per preset: numpy core vs transformers, package sizes, the cost of 1M requests
bench.deploy_cost  DistilGPT2 and GPT-2 shapes: the memory each stack asks for, and the cost of 1M requests
bench.cost, bench.prices  that cost estimate's arithmetic, and the dated price table it uses
bench.worker  the child process the engine benchmark spawns and times
bench.report  percentiles, targets, markdown tables, the environment notes printed under each table

Importing this package imports nothing heavy: bench.worker's cold start is timed through it.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # workers and the server run here, as under `make`

# A line of the training corpus whose greedy continuation runs 20 tokens before EOS, so a 16-token HTTP
# completion really decodes 16 tokens (both benchmarks print the token counts they observed).
PROMPT = "A tiny GPT-2 model"
