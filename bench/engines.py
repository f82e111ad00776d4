"""The engines benchmark: the numpy core (fp32), ONNX Runtime fp32 and int8 (core/onnx_engine.py) and
transformers, at the presets' shapes and at DistilGPT2's (6×768) and GPT-2's (12×768, vocabulary 50257),
random weights, and the int8 quality cost on a model trained here.

Per shape and engine (fresh worker processes, bench.worker, spawned in turn so background load hits all alike):
- warm p50 of a 32-token greedy generation from a 16-token prompt, tokenizer included;
- cold start: spawn → the first 32-token result (weights and graph load included), median;
- peak RSS of a process that has served one generation;
- prompt scoring: tokens/s of one pass over a 128-token prompt (`feed_every`), median of 5, in a child.
ONNX Runtime runs with 2 intra-op threads (TINYLLM_ORT_THREADS), torch with its default (one per CPU here: 2).
The ONNX models are `python -m train.onnx_export` of the fp32 ones (int8: per-channel quantize_dynamic).

Quality (TINYLLM_QUALITY_MODEL=DIR, a model trained here; skipped when unset): perplexity over the validation
documents its manifest's split holds out, numpy fp32 against ONNX Runtime int8 (the corpus: its manifest's sha256
must match TINYLLM_QUALITY_CORPUS, default the benchmark corpus, bench.corpus).
Cold start of the GPT-2 int8 package under CPython 3.12: a package laid out as the bundle lays it (core/,
model/, the pinned wheels for 3.12 installed by infra.bundle_deps) run with `python3.12 -I -S`, spawn → first
token. What onnxruntime adds to a package: its 3.12 wheels installed for x86_64 and aarch64, zipped and not.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench import PROMPT, REPO, engine
from bench.report import RESULTS_DIR, environment_notes, fmt, load_average, markdown_table, save_figure, verdict
from infra.bundle import SERVING_PINS
from infra.bundle_deps import ONNX_PINS
from train.config import PRESETS, TrainConfig

# DistilGPT2's and GPT-2's config.json (n_positions 1024, vocabulary 50257), as transformers' GPT2Config names them.
HF_SHAPES = {
    "DistilGPT2": dict(n_layer=6, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
    "GPT-2": dict(n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024),
}
SHAPES = (*PRESETS, *HF_SHAPES)
ENGINES = ("numpy", "ort-fp32", "ort-int8", "transformers")
ORT_THREADS = "2"
SCORE_TOKENS = 128
SCORE_RUNS = 5
QUALITY_ENV = "TINYLLM_QUALITY_MODEL"
TARGET_FROM_PARAMS = 13.5e6  # the targets hold from base up (14.2 M with biases; 13.9 M as params_of counts)
COLD_START_TARGET_S = 1.5
MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    processes: int
    warm_runs: int
    shapes: tuple[str, ...]


FULL = Settings(processes=2, warm_runs=5, shapes=SHAPES)
QUICK = Settings(processes=1, warm_runs=2, shapes=("tiny",))
# The sizes the targets are about, one process per engine: what fits a busy 2-CPU machine in half an hour.
LARGE = Settings(processes=1, warm_runs=5, shapes=("base", *HF_SHAPES))


def params_of(cfg: dict) -> int:
    """Weights with the tied embedding counted once (biases and layer norms left out: under 0.1 %)."""
    return 12 * cfg["n_layer"] * cfg["n_embd"] ** 2 + (cfg["vocab_size"] + cfg["n_positions"]) * cfg["n_embd"]


def shape_config(shape: str) -> dict:
    if shape in HF_SHAPES:
        return HF_SHAPES[shape]
    cfg = TrainConfig.from_preset(shape)
    return {name: getattr(cfg, name) for name in ("n_layer", "n_embd", "n_head", "vocab_size", "n_positions")}


def make_models(shape: str, tokenizer_from: Path, root: Path) -> None:
    """root/fp32 (random weights of the shape, torch seed 0), root/ort-fp32 and root/ort-int8 (exported)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from bench.presets import preset_model
    from core.artifacts import sha256_file
    from train.onnx_export import export

    fp32 = root / "fp32"
    if shape in HF_SHAPES:
        torch.manual_seed(0)
        shape_cfg = HF_SHAPES[shape]
        config = GPT2Config(**shape_cfg, eos_token_id=0)  # pyright: ignore[reportArgumentType] (ints for int fields)
        GPT2LMHeadModel(config).save_pretrained(fp32)
        (fp32 / "tokenizer.json").write_bytes((tokenizer_from / "tokenizer.json").read_bytes())
        files = {p.name: sha256_file(p) for p in sorted(fp32.iterdir()) if p.is_file()}
        (fp32 / "manifest.json").write_text(json.dumps({"name": f"random-{shape}", "files": files}), encoding="utf-8")
    else:
        preset_model(shape, tokenizer_from, fp32)
    export(fp32, root / "ort-fp32")
    export(fp32, root / "ort-int8", "int8")


def make_models_in_child(shape: str, tokenizer_from: Path, root: Path) -> None:
    """make_models in a child: torch must not load in this process, whose workers would inherit its peak RSS."""
    code = "import sys; from pathlib import Path; from bench.engines import make_models; "
    code += "make_models(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))"
    subprocess.run([sys.executable, "-c", code, shape, str(tokenizer_from), str(root)], cwd=REPO, check=True)


def engine_dir(root: Path, name: str) -> Path:
    return root / ("fp32" if name in ("numpy", "transformers") else name)


def worker_engine(name: str) -> str:
    """bench.worker's engine: its "numpy" one serves through core.artifacts, which picks ORT for ONNX dirs."""
    return "transformers" if name == "transformers" else "numpy"


SCORE = """
import json, statistics, sys, time
engine, model_dir, n, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if engine == "transformers":
    from functions.devtools.reference import ReferenceEngine
    model = ReferenceEngine(model_dir)
else:
    from core.artifacts import load
    model = load(model_dir).model
ids = [(7 * i + 3) % 1000 for i in range(n)]
model.session().feed_every(ids)
times = []
for _ in range(runs):
    start = time.perf_counter()
    model.session().feed_every(ids)
    times.append(time.perf_counter() - start)
print(json.dumps(n / statistics.median(times)))
"""


def scoring_tokens_per_s(name: str, model_dir: Path) -> float:
    cmd = [sys.executable, "-c", SCORE, worker_engine(name), str(model_dir), str(SCORE_TOKENS), str(SCORE_RUNS)]
    return json.loads(subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout)


def measure_shape(root: Path, settings: Settings) -> dict[str, dict]:
    runs: dict[str, list[engine.WorkerRun]] = {name: [] for name in ENGINES}
    for _ in range(settings.processes):
        for name in ENGINES:
            runs[name].append(engine.spawn(worker_engine(name), engine_dir(root, name), settings.warm_runs))
    result = {}
    for name, samples in runs.items():
        warm = [s for run in samples for s in run.warm_seconds]
        result[name] = dict(
            warm_ms=statistics.median(warm) * 1000,
            cold_s=statistics.median(run.cold_seconds for run in samples),
            rss_mb=max(run.maxrss_kb for run in samples) * 1024 / 1e6,
            tokens=samples[0].token_ids,
            score_tps=scoring_tokens_per_s(name, engine_dir(root, name)),
        )
    return result


def agreement(ours: list[int], theirs: list[int]) -> int:
    same = 0
    while same < min(len(ours), len(theirs)) and ours[same] == theirs[same]:
        same += 1
    return same


def perplexities(model_dirs: dict[str, Path], corpus: Path, split: dict, window: int) -> dict[str, float]:
    """exp(mean next-token loss) over the held-out documents (each a window of up to `window` tokens)."""
    from core.artifacts import load_from
    from core.generate import log_softmax
    from train.corpus import split_documents

    loaded = {name: load_from(d) for name, d in model_dirs.items()}
    tokenizer = next(iter(loaded.values())).tokenizer
    docs = list(split_documents(corpus, split["val_fraction"], split["seed"], want_validation=True))
    result: dict[str, float] = {}
    count = 0
    for name, model in loaded.items():
        total, count = 0.0, 0
        for doc in docs:
            ids = tokenizer.encode(doc).ids[:window]
            if len(ids) < 2:
                continue
            logits = model.model.session().feed_every(ids)
            for row, target in zip(logits[:-1], ids[1:], strict=True):
                total -= float(log_softmax(row)[target])
                count += 1
        result[name] = math.exp(total / count)
    result["tokens"] = count
    return result


def quality(trained: Path, scratch: Path) -> tuple[str, list[str]]:
    manifest = json.loads((trained / "manifest.json").read_text(encoding="utf-8"))
    train_cfg = manifest["train_config"]
    from bench.corpus import jargon_file
    from core.artifacts import sha256_file

    chosen = os.environ.get("TINYLLM_QUALITY_CORPUS")
    corpus_path = Path(chosen) if chosen else jargon_file()
    if not corpus_path.is_file() or sha256_file(corpus_path) != manifest["corpus"]["sha256"]:
        raise ValueError(
            f"{QUALITY_ENV}: {trained} was not trained on {corpus_path}; set TINYLLM_QUALITY_CORPUS to its corpus"
        )
    int8 = scratch / "quality-int8"
    code = "import sys; from pathlib import Path; from train.onnx_export import export; "
    code += "export(Path(sys.argv[1]), Path(sys.argv[2]), 'int8')"
    subprocess.run([sys.executable, "-c", code, str(trained), str(int8)], cwd=REPO, check=True)
    ppl = perplexities({"numpy fp32": trained, "ORT int8": int8}, corpus_path, train_cfg, train_cfg["block_size"])
    rel = ppl["ORT int8"] / ppl["numpy fp32"] - 1
    table = markdown_table(
        ["model", "validation tokens", "perplexity numpy fp32", "perplexity ORT int8", "relative (≤ 2 %)"],
        [
            [
                f"{train_cfg['preset']} ({train_cfg['n_layer']}×{train_cfg['n_embd']})",
                f"{ppl['tokens']:,}",
                f"{ppl['numpy fp32']:.3f}",
                f"{ppl['ORT int8']:.3f}",
                f"{rel * 100:+.2f} % {verdict(abs(rel) <= 0.02)}",
            ]
        ],
    )
    notes = [
        f"Quality: the model in {trained.name} (trained here: preset {train_cfg['preset']}, corpus sha256 "
        f"{manifest['corpus']['sha256'][:12]}…); its manifest's validation split (val_fraction "
        f"{train_cfg['val_fraction']}, seed {train_cfg['seed']}), each document's first {train_cfg['block_size']} "
        "tokens scored in one pass."
    ]
    return "\n### int8 quality cost\n\n" + table + "\n", notes


def installed_bytes(requirements: tuple[str, ...], machine: str, target: Path) -> tuple[int, int]:
    """(zipped at level 6, unzipped) bytes of `requirements` installed for CPython 3.12 on `machine`."""
    from infra.bundle_deps import Runtime, install

    install(requirements, Runtime("3.12", machine), target)
    files = [p for p in sorted(target.rglob("*")) if p.is_file()]
    zipped = target.with_suffix(".zip")
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in files:
            archive.write(path, path.relative_to(target))
    return zipped.stat().st_size, sum(p.stat().st_size for p in files)


FIRST_TOKEN = """
import sys, time
from core.artifacts import load
from core.generate import SamplingParams, TokenStream
loaded = load()
params = SamplingParams(max_new_tokens=1, temperature=0, ignore_eos=True)
TokenStream(loaded.model, loaded.tokenizer, loaded.tokenizer.encode(sys.argv[1]).ids, params).finish()
"""


def package_cold_start(model_dir: Path, scratch: Path, runs: int) -> list[float] | None:
    """Spawn → first token of a package laid out as infra.bundle lays it (core/, model/, wheels beside them),
    under CPython 3.12 with -I -S (nothing but the package on the path); None without a CPython 3.12 here."""
    import platform

    from functions.devtools.runtimes import RuntimeUnavailable, find_python312
    from infra.bundle_deps import Runtime, install

    try:
        python = find_python312()
    except RuntimeUnavailable:
        return None
    package = scratch / "package"
    shutil.copytree(REPO / "core", package / "core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(model_dir, package / "model")
    install((*SERVING_PINS, *ONNX_PINS), Runtime("3.12", platform.machine()), package)
    env = {"PATH": os.environ.get("PATH", ""), "TINYLLM_ORT_THREADS": ORT_THREADS}
    code = f"import sys; sys.path.insert(0, {str(package)!r})\n" + FIRST_TOKEN
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(python), "-I", "-S", "-c", code, PROMPT], check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    params = [r["params_m"] for r in rows]
    for name in ENGINES:
        ax.plot(params, [r[name]["warm_ms"] for r in rows], marker="o", label=name)
    for r in rows:
        ax.annotate(r["shape"], (r["params_m"], r["numpy"]["warm_ms"]), textcoords="offset points", xytext=(4, -12))
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="parameters (millions)",
        ylabel="ms",
        title="warm 32-token greedy generation (16-token prompt), p50",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, path)


def speed_table(rows: list[dict]) -> str:
    def ours_best(r: dict) -> str:
        """The targets from 14 M up: the shipped choice (int8 through ORT) beats transformers and matches ORT int8."""
        if r["params"] < TARGET_FROM_PARAMS:
            return "–"
        best = min(r["numpy"]["warm_ms"], r["ort-int8"]["warm_ms"])
        return verdict(best < r["transformers"]["warm_ms"], best <= r["ort-int8"]["warm_ms"])

    return markdown_table(
        ["shape", "params", *[f"warm p50 {n}" for n in ENGINES], "targets met", "int8 greedy = fp32 (of 32)"],
        [
            [
                r["shape"],
                f"{r['params_m']:.1f} M",
                *[f"{fmt(r[n]['warm_ms'])} ms" for n in ENGINES],
                ours_best(r),
                str(agreement(r["ort-int8"]["tokens"], r["ort-fp32"]["tokens"])),
            ]
            for r in rows
        ],
    )


def detail_table(rows: list[dict]) -> str:
    return markdown_table(
        ["shape", "engine", "prompt scoring", "cold start (spawn → 32 tokens)", "peak RSS", "model files"],
        [
            [
                r["shape"],
                n,
                f"{fmt(r[n]['score_tps'])} tokens/s",
                f"{fmt(r[n]['cold_s'])} s",
                f"{fmt(r[n]['rss_mb'])} MB",
                f"{r[n]['files_mb']:.1f} MB",
            ]
            for r in rows
            for n in ENGINES
        ],
    )


def run(trained_model: Path, settings: Settings, out_dir: Path = RESULTS_DIR) -> str:
    quality_model = Path(os.environ[QUALITY_ENV]) if os.environ.get(QUALITY_ENV) else None
    if quality_model is not None and not (quality_model / "manifest.json").is_file():
        raise ValueError(f"{QUALITY_ENV}={quality_model}: not a model directory (no manifest.json)")
    os.environ["TINYLLM_ORT_THREADS"] = ORT_THREADS  # inherited by every worker
    notes = environment_notes()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in settings.shapes:
            root = Path(tmp) / shape
            make_models_in_child(shape, trained_model, root)
            cfg = shape_config(shape)
            row: dict = dict(shape=shape, params=params_of(cfg), params_m=params_of(cfg) / 1e6)
            row.update(measure_shape(root, settings))
            for name in ENGINES:
                row[name]["files_mb"] = sum(p.stat().st_size for p in engine_dir(root, name).iterdir()) / 1e6
            rows.append(row)
            print(json.dumps(row, default=str), file=sys.stderr, flush=True)  # progress, should a later shape fail
            if shape == "GPT-2":
                cold = package_cold_start(root / "ort-int8", Path(tmp) / "package-gpt2", runs=5)
                row["package_cold_s"] = statistics.median(cold) if cold else None
                print(f"GPT-2 int8 package cold starts: {cold}", file=sys.stderr, flush=True)
            shutil.rmtree(root)  # the GPT-2 shapes take ~1 GB of disk each
        text = "### Engines: warm latency\n\n" + speed_table(rows) + "\n\n### Engines: the rest\n\n"
        text += detail_table(rows) + "\n"
        package = [r for r in rows if r.get("package_cold_s") is not None]
        if package:
            cold = package[0]["package_cold_s"]
            text += (
                f"\nGPT-2 int8 package, CPython 3.12 `-I -S`, spawn → first token (median of 5): **{cold:.2f} s** "
                f"(target ≤ {COLD_START_TARGET_S} s: {verdict(cold <= COLD_START_TARGET_S)})\n"
            )
        if "GPT-2" in settings.shapes:
            sizes = []
            for machine in ("x86_64", "aarch64"):
                z, u = installed_bytes(ONNX_PINS, machine, Path(tmp) / f"ort-{machine}")
                sizes.append([machine, f"{z / MIB:.1f} MiB", f"{u / MIB:.1f} MiB"])
            text += "\n### What onnxruntime adds to a package (CPython 3.12 wheels)\n\n"
            text += markdown_table(["machine", "zipped", "unzipped"], sizes) + "\n"
        if quality_model is not None:
            table, quality_notes = quality(quality_model, Path(tmp))
            text += table
            notes += quality_notes
    picture = plot(rows, out_dir / "engines.png")
    notes += [
        f"Random-weight models of each shape, the trained model's tokenizer; {settings.processes} processes × "
        f"{settings.warm_runs} warm runs per engine and shape; ONNX Runtime {ORT_THREADS} threads.",
        "targets met (from 14 M parameters): the faster of numpy and ORT int8 beats transformers and is at least "
        "as fast as ORT int8. 'int8 greedy = fp32': leading tokens the int8 graph shares with the fp32 one "
        "(random weights give near-ties, so this is a lower bound on a trained model's agreement).",
        f"Plot: {picture.name}, beside this table. Load average when the run ended {load_average()}.",
    ]
    return text + "\n" + "\n".join(f"- {note}" for note in notes)
