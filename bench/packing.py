"""Packed weights: what fp16 and int8 cost in quality, and where to unpack them (at load, or per matmul).

Quality: the model directory under test (a model trained here; its corpus is found by the sha256 its manifest
records: the bundled corpus or the training benchmark's Jargon File) is imported by `train.convert` in each
packing, and each is scored by the numpy engine on the whole validation split (the documents the trainer held
out, by its split rule and seed), as consecutive windows of the training block size: perplexity =
exp(mean cross-entropy per predicted token). Targets: fp16 within 0.1 %, int8 within 2 % of fp32.

Where to unpack: a model of the given shape with random weights (transformers' init, saved by save_pretrained,
imported as int8) is loaded in a fresh process per sample, two ways, alternating: `load` is the engine as it
ships (core.artifacts: unpack to fp32 and fold once, at load); `matmul` keeps every matrix int8 and converts it
to fp32 inside each matmul (the scale applied to the output: per-output-row scales factor out of the dot
product). Each process reports its load time, its resident memory after one generation (VmRSS), and the
median time of a decoding step (16-token prompt, 32 steps).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
from tokenizers import Tokenizer

from core.artifacts import load_from, sha256_file
from core.model import GPT2
from core.weights import INT8_MAX

PACKINGS = ("fp32", "fp16", "int8")
TARGETS = {"fp32": 0.0, "fp16": 0.001, "int8": 0.02}  # relative perplexity increase allowed
SHAPES = {
    "distilgpt2": dict(n_layer=6, n_embd=768, n_head=12, vocab_size=50_257, n_positions=1024),
    "small": dict(n_layer=4, n_embd=256, n_head=4, vocab_size=4096, n_positions=256),
}
FULL = dict(shape="distilgpt2", samples=3, steps=32)
QUICK = dict(shape="small", samples=1, steps=8)


class Int8Matrix:
    """A (in, out) matrix kept int8 with one scale per output column; `x @ m` converts it to fp32 per call."""

    __array_ufunc__ = None  # numpy then hands `x @ m` to __rmatmul__

    def __init__(self, w: np.ndarray):
        absmax = np.abs(w).max(axis=0, keepdims=True)
        self.scale = np.where(absmax > 0, absmax / INT8_MAX, 1.0).astype(np.float32)
        self.q = np.clip(np.rint(w / self.scale), -INT8_MAX, INT8_MAX).astype(np.int8)

    def __rmatmul__(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.q.astype(np.float32)) * self.scale[0]  # (T, out) or (out,), like x @ w


class Int8Rows:
    """The (V, C) token embedding kept int8 with one scale per token: rows for lookups, the tied head for `x @ m`
    (x @ wte.T, converted to fp32 per call)."""

    __array_ufunc__ = None

    def __init__(self, w: np.ndarray):
        absmax = np.abs(w).max(axis=1, keepdims=True)
        self.scale = np.where(absmax > 0, absmax / INT8_MAX, 1.0).astype(np.float32)
        self.q = np.clip(np.rint(w / self.scale), -INT8_MAX, INT8_MAX).astype(np.int8)

    def __getitem__(self, ids) -> np.ndarray:
        return self.q[ids].astype(np.float32) * self.scale[ids]  # (T, C) * (T, 1), or (C,) * (1,)

    def __rmatmul__(self, x: np.ndarray) -> np.ndarray:
        return (x @ self.q.T.astype(np.float32)) * self.scale[:, 0]


def per_matmul(model: GPT2) -> GPT2:
    """The same model with every block matrix and the tied head + embedding int8, converted per matmul."""
    for i, block in enumerate(model.blocks):
        fields = {name: getattr(block, name) for name in block.__dataclass_fields__}
        for name in ("attn_w", "attn_proj_w", "fc_w", "mlp_proj_w"):
            fields[name] = cast(np.ndarray, Int8Matrix(fields[name]))
        model.blocks[i] = type(block)(**fields)
    if model.head_w.base is model.wte:  # tied: one int8 copy serves the lookups and the head
        model.wte = model.head_w = cast(np.ndarray, Int8Rows(model.wte))
    else:
        model.head_w = cast(np.ndarray, Int8Matrix(model.head_w))
    return model


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def numpy_engine(model_dir: Path) -> tuple[GPT2, Tokenizer]:
    """The numpy engine's model of `model_dir` and its tokenizer: the packings compared here are the numpy engine's."""
    loaded = load_from(model_dir)
    model = loaded.model
    if not isinstance(model, GPT2):
        raise ValueError(f"{model_dir}: an ONNX model; the packing benchmark measures numpy-engine model directories")
    return model, loaded.tokenizer


def worker(model_dir: str, strategy: str, steps: int) -> dict[str, float]:
    """One sample, in its own process: load, one generation, then the median step time."""
    start = time.perf_counter()
    model, _ = numpy_engine(Path(model_dir))
    if strategy == "matmul":
        model = per_matmul(model)
    load_s = time.perf_counter() - start
    session = model.session()
    logits = session.feed(list(range(16)))
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        logits = session.feed([int(np.argmax(logits))])
        times.append(time.perf_counter() - t)
    return {"load_s": load_s, "rss_mb": rss_mb(), "step_ms": statistics.median(times) * 1000}


def sample(model_dir: Path, strategy: str, steps: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.packing", str(model_dir), strategy, str(steps)]
    # A fixed mmap threshold: every large array is its own mapping, returned to the system when freed, so VmRSS
    # counts what is live (glibc's adaptive threshold would keep freed fp32 matrices in the heap).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def corpus_of(model_dir: Path) -> Path:
    """The corpus the model was trained on, found by its sha256 among the ones this repository knows."""
    from bench.corpus import jargon_file
    from train.config import DEFAULT_CORPUS

    wanted = json.loads((model_dir / "manifest.json").read_text())["corpus"]["sha256"]
    for candidate in (lambda: DEFAULT_CORPUS, jargon_file):
        if sha256_file(path := candidate()) == wanted:
            return path
    raise ValueError(f"{model_dir}: trained on a corpus this benchmark does not know (sha256 {wanted})")


def validation_perplexity(model: GPT2, tokenizer, documents: list[str], eos_id: int, window: int) -> float:
    """exp(mean cross-entropy) over the validation stream (documents + EOS), in consecutive windows."""
    stream = [t for doc in documents for t in (*tokenizer.encode(doc).ids, eos_id)]
    nll, count = 0.0, 0
    for begin in range(0, len(stream) - 1, window):
        ids = stream[begin : begin + window + 1]
        if len(ids) < 2:
            break
        logits = model.session().feed_every(ids[:-1]).astype(np.float64)
        peak = logits.max(axis=1, keepdims=True)
        log_z = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
        nll += float((log_z - logits[np.arange(len(ids) - 1), ids[1:]]).sum())
        count += len(ids) - 1
    return math.exp(nll / count)


def quality_table(model_dir: Path, scratch: Path) -> str:
    from train.convert import convert
    from train.corpus import split_documents

    manifest = json.loads((model_dir / "manifest.json").read_text())
    cfg = manifest["train_config"]
    documents = list(split_documents(corpus_of(model_dir), cfg["val_fraction"], cfg["seed"], True))
    rows, base = [], None
    for dtype in PACKINGS:
        model, tokenizer = numpy_engine(convert(model_dir, scratch / f"quality-{dtype}", dtype))
        eos = model.cfg.eos_token_id
        ppl = validation_perplexity(model, tokenizer, documents, eos or 0, cfg["block_size"])
        base = base or ppl
        change = ppl / base - 1
        size = (scratch / f"quality-{dtype}" / "model.safetensors").stat().st_size
        verdict = "yes" if change <= TARGETS[dtype] else "**no**"
        rows.append(f"| {dtype} | {size / 1e6:.2f} | {ppl:.4f} | {change:+.4%} | ≤ {TARGETS[dtype]:.1%}: {verdict} |")
    head = "| packing | model.safetensors (MB) | validation perplexity | vs fp32 | target |\n|---|---|---|---|---|\n"
    note = (
        f"\nModel: `{model_dir.name}`, preset {cfg['preset']}, {manifest['metrics'].get('steps')} steps "
        f"(fp32 validation perplexity at training: {manifest['metrics'].get('val_perplexity')}); "
        f"{len(documents)} validation documents.\n"
    )
    return head + "\n".join(rows) + "\n" + note


def strategy_table(scratch: Path, params: dict[str, Any]) -> str:
    from tests.unit.checkpoints import save_checkpoint
    from train.convert import convert

    source = save_checkpoint(scratch / params["shape"], **SHAPES[params["shape"]])
    int8 = convert(source, scratch / f"{params['shape']}-int8", "int8")
    results: dict[str, list[dict[str, float]]] = {"load": [], "matmul": []}
    for _ in range(params["samples"]):
        for strategy in results:  # alternating, so background load hits both alike
            results[strategy].append(sample(int8, strategy, params["steps"]))
    rows = []
    for strategy, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append(f"| {strategy} | {med['load_s']:.2f} | {med['rss_mb']:.0f} | {med['step_ms']:.1f} |")
    head = "| unpack int8 | load (s) | RSS after a generation (MB) | decoding step p50 (ms) |\n|---|---|---|---|\n"
    size = (int8 / "model.safetensors").stat().st_size / 1e6
    title = f"{params['shape']} shape, int8 file {size:.0f} MB, median of {params['samples']}:\n\n"
    return title + head + "\n".join(rows)


def run(model_dir: Path, params: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory(prefix="tinyllm-packing-") as tmp:
        quality = quality_table(model_dir, Path(tmp))
        strategies = strategy_table(Path(tmp), params)
    load = os.getloadavg()
    return f"{quality}\n{strategies}\n\nLoad average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"


if __name__ == "__main__":
    print(json.dumps(worker(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
