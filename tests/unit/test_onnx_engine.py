"""The ONNX Runtime engine (core/onnx_engine.py) on graphs from `python -m train.onnx_export` computes what
transformers computes (fp32), and its int8 graph stays close to fp32; chosen by the manifest, torch-free."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from core.artifacts import load_from, sha256_file
from core.generate import SamplingParams, generate
from core.model import GPT2
from core.onnx_engine import ENV_THREADS, OnnxGPT2, threads_from_env
from functions.devtools.reference import ReferenceEngine
from infra import bundle
from infra.bundle_deps import ONNX_PINS, model_requirements
from infra.model_info import read_model
from train.onnx_export import export

LOGIT_TOLERANCE = 1e-4  # fp32 ORT against transformers, as core.model is held to it
GREEDY_TOKENS = 32
# int8 against fp32 on the trained model: greedy tokens agreeing with the fp32 ones, over the prompts below.
# Dynamic int8 rounds every matmul's inputs, so a near-tie between two tokens may flip; measured 1.0 here.
INT8_GREEDY_AGREEMENT = 0.9
PROMPTS = ("The quick brown fox", "Once upon a time", "Serverless functions scale to zero", "café crème")


def random_gpt2(dest: Path, tokenizer_json: Path) -> Path:
    """A random GPT-2 of a small shape, saved by transformers, with a manifest as `python -m train` writes one."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    vocab = json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=64, n_layer=2, n_head=4, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(dest)
    (dest / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    files = {p.name: sha256_file(p) for p in sorted(dest.iterdir()) if p.is_file()}
    (dest / "manifest.json").write_text(json.dumps({"name": "random", "files": files}), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def random_dirs(model_dir, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx-random")
    source = random_gpt2(root / "fp32", model_dir / "tokenizer.json")
    export(source, root / "onnx-fp32")
    export(source, root / "onnx-int8", "int8")
    return {"source": source, "fp32": root / "onnx-fp32", "int8": root / "onnx-int8"}


@pytest.fixture(scope="module")
def trained_int8(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx-trained") / "int8"
    export(model_dir, out, "int8")
    return out


def test_the_manifest_picks_the_onnx_engine_and_records_what_made_it(random_dirs):
    loaded = load_from(random_dirs["int8"])
    assert isinstance(loaded.model, OnnxGPT2)
    assert isinstance(load_from(random_dirs["source"]).model, GPT2)
    manifest = loaded.manifest
    assert (manifest["engine"], manifest["dtype"]) == ("onnx", "int8")
    assert manifest["quantization"]["per_channel"] is True
    assert sorted(manifest["files"]) == ["config.json", "model.onnx", "tokenizer.json"]
    assert manifest["source"]["manifest_sha256"] == sha256_file(random_dirs["source"] / "manifest.json")


def test_int8_graph_is_smaller_than_fp32(random_dirs):
    fp32, int8 = ((random_dirs[k] / "model.onnx").stat().st_size for k in ("fp32", "int8"))
    assert int8 < 0.35 * fp32  # int8 weights plus a scale per column; the tied embedding is stored once


def weight_scale_shapes(model_dir: Path) -> set[tuple[int, ...]]:
    import onnx

    graph = onnx.load(str(model_dir / "model.onnx")).graph
    return {tuple(t.dims) for t in graph.initializer if t.name.startswith("layers.") and t.name.endswith("_scale")}


def test_int8_scales_are_per_column_by_default_and_per_matrix_with_per_tensor(random_dirs, tmp_path):
    assert weight_scale_shapes(random_dirs["int8"]) == {(64,), (192,), (256,)}  # C, 3C and 4C output columns
    result = run_export(str(random_dirs["source"]), "--out", str(tmp_path / "pt"), "--quantize", "int8", "--per-tensor")
    assert result.returncode == 0, result.stderr
    assert weight_scale_shapes(tmp_path / "pt") == {()}
    assert json.loads((tmp_path / "pt" / "manifest.json").read_text())["quantization"]["per_channel"] is False


def test_fp32_logits_match_transformers_whole_prompt_and_token_by_token(random_dirs, model_dir):
    model = load_from(random_dirs["fp32"]).model
    reference = ReferenceEngine(random_dirs["source"])
    tokenizer = load_from(random_dirs["fp32"]).tokenizer
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt).ids
        expected = reference.session().feed_every(ids)
        np.testing.assert_allclose(model.session().feed_every(ids), expected, atol=LOGIT_TOLERANCE, rtol=0)
        session = model.session()
        one_by_one = np.stack([session.feed([token]) for token in ids])
        np.testing.assert_allclose(one_by_one, expected, atol=LOGIT_TOLERANCE, rtol=0)


def test_fp32_greedy_tokens_match_transformers_for_32_steps(random_dirs):
    loaded = load_from(random_dirs["fp32"])
    reference = ReferenceEngine(random_dirs["source"])
    params = SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0)
    for prompt in PROMPTS:
        ours = generate(loaded.model, loaded.tokenizer, prompt, params)
        theirs = reference.greedy(loaded.tokenizer.encode(prompt).ids, GREEDY_TOKENS)
        eos = loaded.model.cfg.eos_token_id
        if eos in theirs:  # our generation stops at EOS without emitting it
            theirs = theirs[: theirs.index(eos)]
        assert ours.token_ids == theirs


def test_int8_greedy_tokens_agree_with_fp32_on_the_trained_model(trained_int8, model_dir):
    fp32, int8 = load_from(model_dir), load_from(trained_int8)
    params = SamplingParams(max_new_tokens=GREEDY_TOKENS, temperature=0, ignore_eos=True)
    agreeing = total = 0
    for prompt in PROMPTS:
        expected = generate(fp32.model, fp32.tokenizer, prompt, params).token_ids
        got = generate(int8.model, int8.tokenizer, prompt, params).token_ids
        prefix = next((i for i, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b), len(expected))
        agreeing, total = agreeing + prefix, total + len(expected)
    assert agreeing / total >= INT8_GREEDY_AGREEMENT


def test_a_session_refuses_to_run_past_the_context(random_dirs):
    session = load_from(random_dirs["fp32"]).model.session()
    session.feed(list(range(60)))
    with pytest.raises(ValueError, match="exceed the context of 64"):
        session.feed(list(range(5)))


def test_the_thread_count_comes_from_the_environment_and_a_bad_one_is_refused(monkeypatch):
    monkeypatch.setenv(ENV_THREADS, "2")
    assert threads_from_env() == 2
    monkeypatch.delenv(ENV_THREADS)
    assert threads_from_env() is None
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(ENV_THREADS, bad)
        with pytest.raises(ValueError, match=ENV_THREADS):
            threads_from_env()


def test_packages_get_onnxruntime_only_for_onnx_models_pinned_as_the_onnx_extra(random_dirs):
    assert model_requirements(random_dirs["int8"]) == ONNX_PINS
    assert model_requirements(random_dirs["source"]) == ()
    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text(encoding="utf-8"))
    assert tuple(pyproject["project"]["optional-dependencies"]["onnx"]) == ONNX_PINS


def test_an_onnx_model_is_baked_with_onnxruntime_and_sized_at_its_packing(random_dirs, tmp_path):
    # The GCP package lists its requirements (Cloud Run installs them), so no wheel is downloaded here.
    package = bundle.build("gcp", dist=tmp_path, model_dir=random_dirs["int8"])
    requirements = (package.directory / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert set(ONNX_PINS) <= set(requirements)
    assert sorted(p.name for p in (package.directory / "model").iterdir()) == [
        "config.json",
        "manifest.json",
        "model.onnx",
        "tokenizer.json",
    ]
    onnx, numpy = read_model(random_dirs["int8"]), read_model(random_dirs["source"])
    assert (onnx.engine, onnx.dtype, numpy.engine) == ("onnx", "int8", "numpy")
    # ONNX Runtime holds the int8 graph, the numpy engine 4 bytes a parameter: the same shape needs less memory.
    assert onnx.serving_bytes < numpy.serving_bytes


LOAD_ONLY = """
import sys, core.artifacts, core.generate
loaded = core.artifacts.load_from(__import__("pathlib").Path(sys.argv[1]))
core.generate.generate(loaded.model, loaded.tokenizer, "Hello", core.generate.SamplingParams(temperature=0))
print(",".join(sorted(m for m in ("torch", "transformers", "onnxruntime") if m in sys.modules)) or "none")
"""


@pytest.mark.parametrize(("which", "expected"), [("int8", "onnxruntime"), ("source", "none")])
def test_serving_imports_onnxruntime_only_for_onnx_models_and_never_torch(random_dirs, which, expected):
    out = subprocess.run(
        [sys.executable, "-c", LOAD_ONLY, str(random_dirs[which])], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == expected


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train.onnx_export", *args], capture_output=True, text=True)


def test_export_refuses_a_directory_that_is_not_a_model_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = run_export(str(tmp_path), "--out", str(out))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "manifest is missing" in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_an_onnx_model_directory(random_dirs, tmp_path):
    result = run_export(str(random_dirs["fp32"]), "--out", str(tmp_path / "again"))
    assert result.returncode == 2 and "already an onnx model" in result.stderr
    assert not (tmp_path / "again").exists()
