"""The serving cost curve: for each preset, the numpy core against transformers, each cloud's package
size, and what 1M 16-token requests would cost (bench.cost, bench.prices).

Each preset's model has the preset's exact shape (layers, width, heads, vocabulary, context) with random
weights (torch seed 0) and the trained model's tokenizer: speed and memory depend on the shape, not on what
the weights learned. The engines are measured by bench.engine (fresh worker processes, spawned alternately).
The 16-token request duration is timed in this process with the numpy core (tokenizer included, 16 tokens
forced with ignore_eos; the presets take turns, 5 runs at a time). Package sizes are computed, not built per
preset: each cloud's package is built once with the trained model (infra.bundle.build), and the preset's
model files, deflated at the same level, replace the trained model's entries.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from bench import PROMPT, REPO, engine
from bench.cost import cost_notes, cost_table
from bench.report import RESULTS_DIR, environment_notes, fmt, load_average, markdown_table, save_figure, verdict
from core.artifacts import sha256_file
from train.config import PRESETS, TrainConfig

MIN_SPEEDUP = 1.5  # transformers / numpy warm p50, at every preset (the target)
REQUEST_TOKENS = 16
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    engine: engine.Settings
    timed_requests: int
    package_sizes: bool


FULL = Settings(engine.FULL, timed_requests=100, package_sizes=True)
QUICK = Settings(engine.QUICK, timed_requests=5, package_sizes=False)


def preset_model(preset: str, tokenizer_from: Path, dest: Path) -> Path:
    """A random-weight model of the preset's shape in `dest`, with a manifest core.artifacts accepts."""
    import torch

    from train.trainer import build_model  # the trainer's own model of that shape (its dropout-free config too)

    cfg = TrainConfig.from_preset(preset)
    torch.manual_seed(0)
    build_model(cfg, cfg.vocab_size, 0).save_pretrained(dest)
    (dest / "tokenizer.json").write_bytes((tokenizer_from / "tokenizer.json").read_bytes())
    files = {p.name: sha256_file(p) for p in sorted(dest.iterdir()) if p.is_file()}
    (dest / "manifest.json").write_text(json.dumps({"name": f"random-{preset}", "files": files}), encoding="utf-8")
    return dest


def preset_model_in_child(preset: str, tokenizer_from: Path, dest: Path) -> Path:
    """preset_model in a child process: torch must never load in this one, whose workers would inherit its
    peak RSS (Linux keeps ru_maxrss across exec, so a worker spawned from a 400 MB parent reports 400 MB)."""
    code = (
        "import sys; from pathlib import Path; from bench.presets import preset_model; "
        "preset_model(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, preset, str(tokenizer_from), str(dest)], cwd=REPO, check=True, capture_output=True
    )
    return dest


def request_seconds(model_dirs: list[Path], runs: int) -> list[float]:
    """Median wall time of one 16-token completion with the numpy core, per model, after 3 untimed ones. The
    models take turns, 5 runs at a time, so a burst of background load hits them all alike."""
    from core.artifacts import load_from
    from core.generate import SamplingParams, generate

    params = SamplingParams(max_new_tokens=REQUEST_TOKENS, temperature=0, ignore_eos=True)
    loaded = [load_from(d) for d in model_dirs]
    for model in loaded:
        for _ in range(3):
            generate(model.model, model.tokenizer, PROMPT, params)
    times: list[list[float]] = [[] for _ in loaded]
    for _ in range(max(1, runs // 5)):
        for model, samples in zip(loaded, times, strict=True):
            for _ in range(5):
                start = time.perf_counter()
                generate(model.model, model.tokenizer, PROMPT, params)
                samples.append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times]


def package_parts(trained_model: Path) -> dict[str, tuple[int, int]]:
    """Per cloud, (zipped, unzipped) bytes of its package without the model/ entries."""
    from infra.bundle import build

    parts = {}
    with tempfile.TemporaryDirectory() as dist:
        for cloud in ("gcp", "aws", "azure"):
            bundle = build(cloud, dist=Path(dist))
            with zipfile.ZipFile(bundle.zip_path) as archive:
                model = [i for i in archive.infolist() if i.filename.startswith("model/")]
                zipped = bundle.zip_path.stat().st_size - sum(i.compress_size for i in model)
                unzipped = sum(i.file_size for i in archive.infolist()) - sum(i.file_size for i in model)
            parts[cloud] = (zipped, unzipped)
    return parts


def model_bytes(model_dir: Path) -> tuple[int, int]:
    """(deflated at level 6 as infra.bundle does, raw) bytes of the model files."""
    files = [p for p in model_dir.iterdir() if p.is_file()]
    return sum(len(zlib.compress(p.read_bytes(), 6)) for p in files), sum(p.stat().st_size for p in files)


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = [r["params_m"] for r in rows]
    fig, (lat, rss) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for key, label in (("numpy_ms", "numpy core"), ("transformers_ms", "transformers")):
        lat.plot(params, [r[key] for r in rows], marker="o", label=label)
    lat.set(
        xscale="log",
        yscale="log",
        xlabel="parameters (millions)",
        ylabel="ms",
        title="warm 32-token greedy generation, p50",
    )
    for key, label in (("numpy_rss", "numpy core"), ("transformers_rss", "transformers")):
        rss.plot(params, [r[key] for r in rows], marker="o", label=label)
    rss.set(xscale="log", xlabel="parameters (millions)", ylabel="MB", title="peak RSS after one generation")
    for ax in (lat, rss):
        for r in rows:
            ax.annotate(
                r["preset"],
                (r["params_m"], ax.get_ylim()[0]),
                textcoords="offset points",
                xytext=(0, 4),
                ha="center",
                fontsize=8,
            )
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    return save_figure(fig, path)


def speedup_cell(speedup: float) -> str:
    return f"{speedup:.1f}× {verdict(speedup >= MIN_SPEEDUP)}"


def run(trained_model: Path, settings: Settings, out_dir: Path = RESULTS_DIR) -> str:
    notes = environment_notes()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model_dirs = {preset: preset_model_in_child(preset, trained_model, Path(tmp) / preset) for preset in PRESETS}
        for preset, model_dir in model_dirs.items():  # workers first, while this process is still small
            warm, _, cold, rss = engine.metrics(engine.measure(model_dir, settings.engine))
            cfg = TrainConfig.from_preset(preset)
            params = 12 * cfg.n_layer * cfg.n_embd**2 + (cfg.vocab_size + cfg.n_positions) * cfg.n_embd
            rows.append(
                dict(
                    preset=preset,
                    params_m=params / 1e6,
                    shape=f"{cfg.n_layer}×{cfg.n_embd}, vocab {cfg.vocab_size}",
                    numpy_ms=warm.ours,
                    transformers_ms=warm.theirs,
                    numpy_cold=cold.ours,
                    transformers_cold=cold.theirs,
                    numpy_rss=rss.ours,
                    transformers_rss=rss.theirs,
                )
            )
        durations = request_seconds(list(model_dirs.values()), settings.timed_requests)
        for row, model_dir, duration in zip(rows, model_dirs.values(), durations, strict=True):
            row["model_zipped"], row["model_raw"] = model_bytes(model_dir)
            row["request_s"] = duration
    picture = plot(rows, out_dir / "presets.png")
    serving = markdown_table(
        [
            "preset",
            "shape",
            "params",
            "warm p50 numpy / transformers",
            "speed-up (≥ 1.5×)",
            "cold start numpy / transformers",
            "peak RSS numpy / transformers",
            "16-token request (numpy)",
        ],
        [
            [
                r["preset"],
                r["shape"],
                f"{r['params_m']:.1f} M",
                f"{fmt(r['numpy_ms'])} / {fmt(r['transformers_ms'])} ms",
                speedup_cell(r["transformers_ms"] / r["numpy_ms"]),
                f"{fmt(r['numpy_cold'])} / {fmt(r['transformers_cold'])} s",
                f"{fmt(r['numpy_rss'])} / {fmt(r['transformers_rss'])} MB",
                f"{fmt(r['request_s'] * 1000)} ms",
            ]
            for r in rows
        ],
    )
    text = "### Serving cost curve\n\n" + serving + f"\n\nPlot: {picture.name}, beside this table.\n"
    if settings.package_sizes:
        parts = package_parts(trained_model)
        sizes = markdown_table(
            ["preset", "model files (raw / deflated)"] + [f"{c}.zip zipped / unzipped" for c in parts],
            [
                [r["preset"], f"{r['model_raw'] / MIB:.1f} / {r['model_zipped'] / MIB:.1f} MiB"]
                + [
                    f"{(z + r['model_zipped']) / MIB:.1f} / {(u + r['model_raw']) / MIB:.1f} MiB"
                    + (" **over 50 MiB**" if z + r["model_zipped"] > 50 * MIB else "")
                    for z, u in parts.values()
                ]
                for r in rows
            ],
        )
        text += "\n### Package size per preset (computed)\n\n" + sizes + "\n"
    request_times = {r["preset"]: r["request_s"] for r in rows}
    text += "\n" + cost_table(request_times, REQUEST_TOKENS) + "\n"
    notes += [
        f"Random-weight models of each preset's shape (context {TrainConfig().n_positions}); the trained model's "
        "tokenizer, so prompts encode the same way; bench.engine settings: "
        f"{settings.engine.processes} processes × {settings.engine.warm_runs} warm runs per engine and preset.",
        *cost_notes(),
        "Package sizes: each cloud's package built once with the trained model, its model/ entries replaced by the "
        "preset's files deflated at level 6; the build refuses more than 50 MiB zipped.",
        f"Load average when the run ended {load_average()}: other work on this shared machine slows every figure.",
        "MB = 10^6 bytes, MiB = 2^20 bytes; speed-up = transformers / numpy warm p50.",
    ]
    return text + "\n" + "\n".join(f"- {note}" for note in notes)
