"""What 1M requests cost for the pretrained shapes people deploy (DistilGPT2, GPT-2) on each cloud, at the memory
the stack's rule picks for each packing (infra.memory), and whether the package fits the cloud at all.

Measured here, with random fp32 weights of each shape and the trained model's tokenizer: the 16-token request
duration with the numpy engine (bench.presets.request_seconds: in this process, the models taking turns) and
the peak RSS of a fresh process that loaded the model and served one generation (bench.engine's worker), set
beside the rule's estimate of it (infra.model_info). The numpy engine computes in fp32 whatever the packing at
rest, so one fp32 measurement stands for fp16 and int8 too (their files only change the load). Estimated:
everything per cloud: the duration there (measured / the instance's vCPU share at the chosen memory, bench.cost),
the billed time and the price (bench.prices).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench import engine
from bench.cost import ALONE, ALONE_NOTE, estimate, platform_at
from bench.presets import package_parts, request_seconds
from bench.prices import PLATFORMS, PRICES_CHECKED
from bench.report import environment_notes, fmt, load_average, markdown_table
from infra.bundle import LIMITS, MIB
from infra.memory import default_memory_mb
from infra.model_info import ModelInfo, gpt2_parameters, read_model, sha256_file

# Hugging Face config.json values of the two checkpoints.
SHAPES = {
    "DistilGPT2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 6, "n_head": 12},
    "GPT-2": {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12},
}
PACKINGS = {"fp32": 4, "fp16": 2, "int8": 1}  # bytes per weight at rest
REQUEST_RUNS = 20
FULL = engine.Settings(processes=2, warm_runs=1)  # the workers only give the peak RSS here
QUICK = engine.Settings(processes=1, warm_runs=1)


def random_gpt2(shape: dict, tokenizer_from: Path, dest: Path) -> Path:
    """A model directory with random fp32 weights of `shape` under GPT-2's checkpoint names (numpy, no torch)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    C, inner = shape["n_embd"], 4 * shape["n_embd"]

    def normal(*dims: int) -> np.ndarray:
        return (rng.standard_normal(dims, dtype=np.float32) * 0.02).astype(np.float32)

    tensors = {"wte.weight": normal(shape["vocab_size"], C), "wpe.weight": normal(shape["n_positions"], C)}
    for i in range(shape["n_layer"]):
        for norm in ("ln_1", "ln_2"):
            tensors[f"h.{i}.{norm}.weight"], tensors[f"h.{i}.{norm}.bias"] = (
                np.ones(C, np.float32),
                np.zeros(C, np.float32),
            )
        for name, (rows, cols) in {
            "attn.c_attn": (C, 3 * C),
            "attn.c_proj": (C, C),
            "mlp.c_fc": (C, inner),
            "mlp.c_proj": (inner, C),
        }.items():
            tensors[f"h.{i}.{name}.weight"], tensors[f"h.{i}.{name}.bias"] = (
                normal(rows, cols),
                np.zeros(cols, np.float32),
            )
    tensors["ln_f.weight"], tensors["ln_f.bias"] = np.ones(C, np.float32), np.zeros(C, np.float32)
    dest.mkdir(parents=True)
    save_file(tensors, str(dest / "model.safetensors"))
    (dest / "config.json").write_text(json.dumps({"model_type": "gpt2", **shape}), encoding="utf-8")
    (dest / "tokenizer.json").write_bytes((tokenizer_from / "tokenizer.json").read_bytes())
    files = {p.name: sha256_file(p) for p in sorted(dest.iterdir())}
    (dest / "manifest.json").write_text(json.dumps({"name": f"random-{dest.name}", "files": files}), encoding="utf-8")
    return dest


def packed(model: ModelInfo, dtype: str) -> ModelInfo:
    """The same model as its `dtype` packing would be at rest (the weights file scaled; the rest unchanged)."""
    shape = {"vocab_size": model.vocab_size, "n_positions": model.n_positions, "n_embd": model.n_embd}
    weights = gpt2_parameters({**shape, "n_layer": model.n_layer}) * PACKINGS[dtype]
    extra = model.file_bytes - model.weights_bytes
    return replace(model, dtype=dtype, weights_bytes=weights, file_bytes=weights + extra)


def run(trained_model: Path, settings: engine.Settings) -> str:
    notes = environment_notes()
    package_overhead = {cloud: unzipped for cloud, (_, unzipped) in package_parts(trained_model).items()}
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {name: random_gpt2(shape, trained_model, Path(tmp) / name) for name, shape in SHAPES.items()}
        rss_mb = {
            name: max(engine.spawn("numpy", d, settings.warm_runs).maxrss_kb for _ in range(settings.processes)) / 1024
            for name, d in dirs.items()
        }
        durations = dict(zip(dirs, request_seconds(list(dirs.values()), REQUEST_RUNS), strict=True))
        models = {name: read_model(d) for name, d in dirs.items()}
    memory_rows, cost_rows = [], []
    for name, fp32 in models.items():
        for dtype in PACKINGS:
            model = packed(fp32, dtype)
            memory_rows.append(
                [
                    name,
                    dtype,
                    f"{model.weights_bytes / MIB:,.0f} MiB",
                    f"{model.serving_bytes / MIB:,.0f} MiB",
                    f"{model.required_mb:,} MB",
                    f"{rss_mb[name]:,.0f} MiB" if dtype == "fp32" else "—",
                ]
            )
            for base in PLATFORMS:
                limit = LIMITS[base.cloud].unzipped
                size = package_overhead[base.cloud] + model.file_bytes
                memory = default_memory_mb(base.cloud, model)
                if limit is not None and size > limit:
                    why = f"package {size / MIB:,.0f} MiB unzipped > {limit // MIB} MiB"
                elif memory is None:
                    why = f"needs {model.required_mb:,} MB, more than the largest instance"
                else:
                    why = ""
                if why or memory is None:
                    cost_rows.append([name, dtype, base.cloud, f"does not fit: {why}", "", "", "", ""])
                    continue
                platform = platform_at(base, memory)
                e = estimate(durations[name], platform)
                cost_rows.append(
                    [
                        name,
                        dtype,
                        base.cloud,
                        f"{memory:,} MB",
                        f"{fmt(e.cloud_seconds * 1000)} ms",
                        f"{fmt(e.billed_alone_seconds * 1000)} ms",
                        f"${e.per_million_alone:,.2f}",
                        f"${e.per_million_busy:,.2f}",
                    ]
                )
    text = "### Memory the stacks ask for, by the rule (infra.model_info, infra.memory)\n\n" + markdown_table(
        [
            "model",
            "packing",
            "weights at rest",
            "rule's peak estimate",
            "asked (× 1.25, MB)",
            "measured peak RSS (fp32)",
        ],
        memory_rows,
    )
    text += "\n\n### What 1M 16-token requests cost at those sizes (an estimate)\n\n" + markdown_table(
        [
            "model",
            "packing",
            "cloud",
            "memory (rule)",
            "compute per request on the cloud",
            "billed alone",
            f"1M requests, {ALONE}",
            "1M requests, busy instance",
        ],
        cost_rows,
    )
    durations_text = ", ".join(f"{name} {fmt(s * 1000)} ms" for name, s in durations.items())
    notes += [
        f"Measured here: the 16-token request with the numpy engine ({durations_text}; median of {REQUEST_RUNS}, "
        "random fp32 weights, the trained tokenizer) and each shape's peak RSS after one generation (largest of "
        f"{settings.processes} fresh processes). The numpy engine computes in fp32 at every packing, so the fp32 "
        "duration stands for all three.",
        "Estimated: everything per cloud. The duration on the cloud is the measured one divided by the vCPU share "
        "the chosen memory comes with (Lambda memory / 1769 MB; Cloud Run functions' memory tiers; Flex "
        "Consumption assumed 1 vCPU per 2048 MB); packings that pass a cloud's package limit (infra.bundle.LIMITS) "
        f"are marked as not fitting. Prices: bench/prices.py, checked {PRICES_CHECKED}.",
        ALONE_NOTE,
        f"Load average when the run ended {load_average()}.",
    ]
    return text + "\n\n" + "\n".join(f"- {note}" for note in notes)
