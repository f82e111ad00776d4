"""The ONNX Runtime engine: a model directory written by `python -m train.onnx_export` (manifest `engine: onnx`),
run by onnxruntime on the CPU behind the same Engine / DecodingSession protocol as core.model.

core.artifacts imports this module only for such a directory, so serving the numpy engine never needs
onnxruntime. The graph takes the new tokens and the KV cache so far, and returns the logits of every new
position and the extended cache (see train/onnx_export.py), so a prompt is one run and each token one more.
From ~14 M parameters on a decoding step is bound by reading the weights; with int8 weights
(`--quantize int8`) ONNX Runtime reads 4× fewer bytes per token than an fp32 engine (docs/engines.md).

Threads: ONNX Runtime's intra-op pool has TINYLLM_ORT_THREADS threads (default: ONNX Runtime's own choice,
one per physical core); one run at a time per process, as core.model does, so request threads do not
oversubscribe the cores.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from core.model import GPT2Config

try:
    import onnxruntime as ort
except ImportError:  # core.artifacts turns a ValueError into one line naming the model directory
    raise ValueError(
        "this model's manifest says `engine: onnx`, which needs onnxruntime: pip install 'tinyllm[onnx]'"
    ) from None

ENV_THREADS = "TINYLLM_ORT_THREADS"
GRAPH = "model.onnx"


def session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


def threads_from_env() -> int | None:
    """TINYLLM_ORT_THREADS as a positive int, None when unset; ValueError naming the variable otherwise."""
    raw = os.environ.get(ENV_THREADS, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{ENV_THREADS}={raw!r}: must be a positive whole number of threads")
    return int(raw)


class OnnxGPT2:
    """An ONNX Runtime inference session over the decode-step graph; every generation brings its own cache."""

    def __init__(self, cfg: GPT2Config, graph: Path, threads: int | None = None):
        self.cfg = cfg
        self.inference = ort.InferenceSession(
            str(graph), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
        hs = cfg.n_embd // cfg.n_head
        self.empty_cache = np.zeros((cfg.n_layer, cfg.n_head, 0, hs), dtype=np.float32)
        self.run_lock = threading.Lock()

    @classmethod
    def from_dir(cls, cfg: GPT2Config, model_dir: Path) -> OnnxGPT2:
        return cls(cfg, model_dir / GRAPH, threads_from_env())

    def session(self) -> OnnxSession:
        return OnnxSession(self)

    def run(self, ids: list[int], key: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits (T, V), key, value) after the new tokens `ids`, given the cache so far."""
        if not ids:
            raise ValueError("forward needs at least one token")
        end = key.shape[2] + len(ids)
        if end > self.cfg.n_positions:
            raise ValueError(f"{end} tokens exceed the context of {self.cfg.n_positions}")
        feeds = {"input_ids": np.asarray(ids, dtype=np.int64), "past_key": key, "past_value": value}
        with self.run_lock:
            outputs = self.inference.run(None, feeds)
        # Dense tensors in, dense tensors out: onnxruntime's run() types its outputs as any OrtValue payload.
        logits, key, value = (np.asarray(out) for out in outputs)
        return logits, key, value


class OnnxSession:
    """One generation: the model plus its own KV cache (the graph's last present_key / present_value)."""

    def __init__(self, model: OnnxGPT2):
        self.model = model
        self.key = self.value = model.empty_cache

    def feed_every(self, ids: list[int]) -> np.ndarray:
        """The logits after each of `ids` (T, V): row i scores the token that follows ids[i]."""
        logits, self.key, self.value = self.model.run(ids, self.key, self.value)
        return logits

    def feed(self, ids: list[int]) -> np.ndarray:
        return self.feed_every(ids)[-1]
