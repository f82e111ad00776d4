"""Training memory follows the batch, not the corpus: a few steps on a synthetic 20 MB corpus, in a child
process whose peak RSS is read from the kernel.

The trainer this replaced made one window per line and ran them all as one batch: on this corpus (about
330,000 lines) its logits alone would be 330,000 × 64 × 1024 float32 = 86 GB. The bound below is what torch,
transformers and tokenizers need plus the tiny preset's batch, with room for noise."""

from __future__ import annotations

import json
import random
import subprocess
import sys

from train.config import REPO_ROOT, TrainConfig

CORPUS_BYTES = 20_000_000
PEAK_RSS_BOUND_MB = 1500
# The child's own peak: VmHWM of its memory map, which exec made new. Not getrusage's ru_maxrss, which Linux carries
# over exec from the map the child was forked (or vforked) from: a large pytest process (one that has just loaded a
# GPT-2-shaped model) would be counted as the child's peak.
CHILD = """
import json, sys
from train.__main__ import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read().split("VmHWM:")[1].split()
print(json.dumps({"code": code, "maxrss_mb": int(status[0]) / 1024}))
"""


def synthetic_corpus(path, size: int) -> None:
    """Lines of 6-16 words drawn (seeded) from 2,000 made-up words: many documents, a realistic vocabulary."""
    rng = random.Random(0)
    letters = "etaoinshrdlucmfwypvbgkjqxz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(2000)]
    written = 0
    with path.open("w", encoding="utf-8") as f:
        while written < size:
            line = " ".join(rng.choices(words, k=rng.randint(6, 16))) + ".\n"
            written += f.write(line)


def test_peak_memory_stays_bounded_on_a_20_mb_corpus(tmp_path):
    path = tmp_path / "big.txt"
    synthetic_corpus(path, CORPUS_BYTES)
    assert path.stat().st_size >= CORPUS_BYTES
    flags = [
        "--quiet",
        "--corpus",
        str(path),
        "--out",
        str(tmp_path / "m"),
        "--steps",
        "3",
        "--eval-interval",
        "3",
        "--eval-windows",
        "32",
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *flags], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["split"]["train_tokens"] > 3_000_000  # the whole corpus was tokenized, not a sample
    assert manifest["metrics"]["tokens_seen"] == 3 * TrainConfig().batch_size * TrainConfig().block_size
    assert result["maxrss_mb"] < PEAK_RSS_BOUND_MB, f"peak RSS {result['maxrss_mb']:.0f} MB"
