"""Issue 11's training benchmark: the tiny preset on a 1.3 MB real corpus (bench.corpus, the Jargon File).

`python -m train` runs in a child process that reports its own peak RSS (ru_maxrss); the table gives wall
time (tokenizer, encoding, training, validation, recall check: everything), training tokens/s (from the run
report written beside the model), the validation loss of the kept weights against the unigram baseline, and
peak RSS. The unigram baseline is the entropy of the corpus' token distribution under the trained tokenizer,
in nats per token: the loss of a model that knows every token's frequency and nothing else.
Quick mode trains 30 steps on the bundled corpus: it checks that the benchmark runs, nothing more.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench import REPO
from bench.corpus import jargon_file
from bench.report import RESULTS_DIR, Target, environment_notes, fmt, load_average, markdown_table, verdict
from train.config import DEFAULT_CORPUS, TrainConfig
from train.corpus import documents

TIME_BUDGET_S = 480  # the training loop's; tokenizing, validating and the recall check fit in the rest of 10 min
CHILD = """
import json, resource, sys
from train.__main__ import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@dataclass(frozen=True)
class Settings:
    quick: bool
    flags: tuple[str, ...]


FULL = Settings(
    False,
    (
        "--preset",
        "tiny",
        "--steps",
        "100000",
        "--time-budget",
        str(TIME_BUDGET_S),
        "--keep",
        "best",
        "--patience",
        "4",
        "--eval-interval",
        "100",
    ),
)
QUICK = Settings(True, ("--preset", "tiny", "--steps", "30", "--eval-interval", "10"))


def unigram_entropy(corpus: Path, tokenizer_file: Path) -> float:
    """Entropy (nats/token) of the token distribution of the whole corpus, EOS after each document included."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    counts: Counter[int] = Counter()
    for _, doc in documents(corpus):
        counts.update(tokenizer.encode(doc).ids)
        counts[0] += 1  # EOS
    total = sum(counts.values())
    return -sum(c / total * math.log(c / total) for c in counts.values())


def train_once(corpus: Path, out: Path, flags: tuple[str, ...]) -> tuple[dict, float]:
    """Run the trainer in a child process; (its JSON report line, wall seconds)."""
    command = [sys.executable, "-c", CHILD, "--quiet", "--corpus", str(corpus), "--out", str(out), *flags]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"training failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def run(settings: Settings, out_dir: Path = RESULTS_DIR) -> str:
    notes = environment_notes()
    corpus = DEFAULT_CORPUS if settings.quick else jargon_file()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        child, wall = train_once(corpus, model, settings.flags)
        manifest = json.loads((model / "manifest.json").read_text())
        report = json.loads((Path(tmp) / "model-report" / "run.json").read_text())
        baseline = unigram_entropy(corpus, model / "tokenizer.json")
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "model-report" / "loss.png", out_dir / "training-loss.png")
    metrics, split = manifest["metrics"], manifest["split"]
    rss_mb = child["maxrss_kb"] * 1024 / 1e6
    ratio = metrics["val_loss"] / baseline
    targets = (Target("<=", 0.8), Target("<=", 600, " s"), Target("<=", 2000, " MB"))
    rows = [
        [
            "validation loss (kept weights) / unigram baseline",
            f"{metrics['val_loss']:.3f} / {baseline:.3f} = {ratio:.2f}",
            str(targets[0]),
            verdict(targets[0].met(ratio)),
        ],
        ["wall time, whole `python -m train` run", f"{fmt(wall)} s", str(targets[1]), verdict(targets[1].met(wall))],
        [
            "peak RSS (ru_maxrss of the training process)",
            f"{fmt(rss_mb)} MB",
            str(targets[2]),
            verdict(targets[2].met(rss_mb)),
        ],
        ["training throughput", f"{fmt(report['tokens_per_second'])} tokens/s", "—", "—"],
        ["tokens seen / steps", f"{metrics['tokens_seen']:,} / {metrics['steps']:,}", "—", "—"],
        ["validation perplexity (kept weights)", fmt(metrics["val_perplexity"]), "—", "—"],
        ["train loss (last evaluation interval)", f"{metrics['train_loss']:.3f}", "—", "—"],
    ]
    cfg = TrainConfig.from_preset("tiny")
    notes += [
        f"Corpus: {corpus.name}, {manifest['corpus']['bytes']:,} bytes, {split['train_documents']:,} training and "
        f"{split['val_documents']:,} validation documents ({split['train_tokens']:,} / {split['val_tokens']:,} "
        "tokens); "
        + (
            "the bundled corpus (quick mode)."
            if settings.quick
            else "the Jargon File 4.4.7 (public domain) from Debian's dict-jargon 4.4.7-3.1, see bench/corpus.py."
        ),
        f"Command: `python -m train --corpus … {' '.join(settings.flags)}`; tiny preset: {cfg.n_layer} layer × "
        f"{cfg.n_embd}, vocab {cfg.vocab_size}, block {cfg.block_size}, batch {cfg.batch_size}; stopped by "
        f"{metrics['stop_reason']}; kept the {manifest['train_config']['keep']} weights (best validation loss at "
        f"step {metrics['best_step']}).",
        f"Unigram baseline: entropy of the corpus' token distribution, {baseline:.3f} nats/token; greedy recall of "
        f"the first training lines {metrics['line_recall']:.0%} (reported, not required off the bundled corpus).",
        f"Load average when the run ended {load_average()}: other work on this shared machine slows every figure.",
        "MB = 10^6 bytes. Loss curve: bench/results/training-loss.png.",
    ]
    table = markdown_table(["metric", "value", "target", "met?"], rows)
    return table + "\n\n" + "\n".join(f"- {note}" for note in notes)
