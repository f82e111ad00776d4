"""The engine benchmark: the numpy core against transformers, side by side in one run, on this machine.

- warm latency of a 32-token greedy generation (p50 over every warm run of every worker process);
- cold start: wall time from spawning `python -m bench.worker` to reading its 32-token result (median);
- peak RSS (ru_maxrss) of a process that has served one generation (the largest of the processes).
Workers of the two engines are spawned alternately, so background load hits both alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import PROMPT, REPO
from bench.report import Target, environment_notes, fmt, load_average, markdown_table, percentile, verdict
from bench.worker import TOKENS, WARMUP_RUNS

ENGINES = ("numpy", "transformers")
WORKER_TIMEOUT_S = 300


@dataclass(frozen=True)
class Settings:
    processes: int  # worker processes per engine (cold-start and RSS samples)
    warm_runs: int  # warm generations timed in each worker


FULL = Settings(processes=5, warm_runs=20)
QUICK = Settings(processes=1, warm_runs=5)


@dataclass(frozen=True)
class WorkerRun:
    cold_seconds: float
    token_ids: list[int]
    maxrss_kb: int
    warm_seconds: list[float]
    info: dict


def spawn(engine: str, model_dir: Path, warm_runs: int) -> WorkerRun:
    """Run one worker; the cold start ends when its result line arrives, not when it exits."""
    cmd = [sys.executable, "-m", "bench.worker", engine, str(model_dir), PROMPT, str(warm_runs)]
    # stderr goes to a file: a pipe nobody reads while we wait on stdout could fill and block the child.
    with tempfile.TemporaryFile(mode="w+") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert proc.stdout is not None  # stdout=PIPE
        first = proc.stdout.readline()
        cold = time.perf_counter() - start
        rest, _ = proc.communicate(timeout=WORKER_TIMEOUT_S)
        if proc.returncode != 0 or not first:
            stderr.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.read()[-2000:]}")
    result, done = json.loads(first), json.loads(rest)
    return WorkerRun(cold, result["token_ids"], done["maxrss_kb"], done["warm_seconds"], done["info"])


def measure(model_dir: Path, settings: Settings) -> dict[str, list[WorkerRun]]:
    runs: dict[str, list[WorkerRun]] = {engine: [] for engine in ENGINES}
    for _ in range(settings.processes):
        for engine in ENGINES:
            runs[engine].append(spawn(engine, model_dir, settings.warm_runs))
    return runs


def agreeing_prefix(ours: list[int], theirs: list[int], eos: int) -> int:
    """How many leading tokens agree, counted up to our first EOS (min_new_tokens bans EOS in transformers,
    ignore_eos lets ours emit it, so the two texts part there by design)."""
    limit = ours.index(eos) if eos in ours else len(ours)
    same = 0
    while same < limit and same < len(theirs) and ours[same] == theirs[same]:
        same += 1
    return same


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    ours: float
    theirs: float
    target: Target | None  # absolute bound on ours
    min_ratio: float | None  # theirs / ours must reach this

    def row(self) -> list[str]:
        ratio = self.theirs / self.ours
        checks = [self.target.met(self.ours)] if self.target else []
        wanted = [str(self.target)] if self.target else []
        if self.min_ratio is not None:
            checks.append(ratio >= self.min_ratio)
            wanted.append(f"≥ {self.min_ratio:g}×")
        return [
            self.name,
            f"{fmt(self.ours)} {self.unit}",
            f"{fmt(self.theirs)} {self.unit}",
            f"{fmt(ratio)}×",
            " and ".join(wanted) or "—",
            verdict(*checks) if checks else "—",
        ]


def metrics(runs: dict[str, list[WorkerRun]]) -> list[Metric]:
    def warm_ms(engine: str, q: float) -> float:
        return 1000 * percentile([s for run in runs[engine] for s in run.warm_seconds], q)

    def cold_s(engine: str) -> float:
        return statistics.median(run.cold_seconds for run in runs[engine])

    def rss_mb(engine: str) -> float:
        return max(run.maxrss_kb for run in runs[engine]) * 1024 / 1e6

    n = len(runs["numpy"])
    return [
        Metric(
            f"warm latency, {TOKENS}-token greedy generation, p50",
            "ms",
            warm_ms("numpy", 50),
            warm_ms("transformers", 50),
            Target("<=", 5, " ms"),
            3,
        ),
        Metric("warm latency, p90", "ms", warm_ms("numpy", 90), warm_ms("transformers", 90), None, None),
        Metric(
            f"cold start, spawn to first {TOKENS}-token result, median of {n}",
            "s",
            cold_s("numpy"),
            cold_s("transformers"),
            Target("<=", 0.5, " s"),
            15,
        ),
        Metric(
            f"peak RSS after one generation, max of {n}",
            "MB",
            rss_mb("numpy"),
            rss_mb("transformers"),
            Target("<=", 100, " MB"),
            None,
        ),
    ]


def run(model_dir: Path, settings: Settings) -> str:
    """Measure both engines and return the markdown table with its notes."""
    notes = environment_notes()  # before the run: the load average is the one the run started under
    runs = measure(model_dir, settings)
    eos = json.loads((model_dir / "config.json").read_text())["eos_token_id"]
    ours, theirs = runs["numpy"][0].token_ids, runs["transformers"][0].token_ids
    table = markdown_table(
        ["metric", "numpy core", "transformers", "ratio", "target", "met?"], [m.row() for m in metrics(runs)]
    )
    warm_total = settings.processes * settings.warm_runs
    notes += [
        f"Prompt {PROMPT!r}; both engines produced {len(ours)} and {len(theirs)} tokens; they agree on the first "
        f"{agreeing_prefix(ours, theirs, eos)} (up to the first EOS, where min_new_tokens and ignore_eos part).",
        f"Warm: {warm_total} generations per engine ({settings.processes} processes × {settings.warm_runs}, "
        f"each process after {WARMUP_RUNS} untimed ones); "
        "numpy's time includes tokenizing and decoding, transformers' is `model.generate` alone.",
        f"torch threads: {runs['transformers'][0].info['torch_threads']} (its default); "
        f"load average when the run ended {load_average()}.",
        "MB = 10^6 bytes; ratio = transformers / numpy (higher is better for numpy).",
    ]
    return table + "\n\n" + "\n".join(f"- {note}" for note in notes)
