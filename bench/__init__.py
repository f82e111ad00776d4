"""Benchmarks that print the tables quoted in README: `python -m bench [--quick]` (see bench.__main__).

bench.engine  numpy core vs transformers: warm latency, cold start, peak RSS (issue 2)
bench.http    the local functions-framework server under bounded concurrency (issue 3)
bench.training  the tiny preset trained on a real 1.3 MB corpus (bench.corpus fetches it) (issue 11)
bench.presets   per preset: numpy core vs transformers, package sizes, the cost of 1M requests (issue 11)
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
