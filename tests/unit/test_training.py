"""Training: deterministic, recorded in a timestamp-free manifest, and it learned the corpus."""

from __future__ import annotations

import json

from core.artifacts import sha256_file
from train.__main__ import main as train_main
from train.evaluate import line_recall
from train.manifest import is_current
from train.config import DEFAULT_CORPUS, TrainConfig, read_corpus_lines


def test_manifest_records_every_file_the_corpus_and_the_config(model_dir):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert manifest["files"][name] == sha256_file(model_dir / name)
    assert manifest["corpus"]["sha256"] == sha256_file(DEFAULT_CORPUS)
    assert manifest["train_config"] == TrainConfig().as_dict()
    assert set(manifest["versions"]) >= {"torch", "transformers", "tokenizers"}
    assert is_current(model_dir, DEFAULT_CORPUS, TrainConfig())
    assert not is_current(model_dir, DEFAULT_CORPUS, TrainConfig(seed=1))


def test_greedy_continuation_reproduces_most_corpus_lines(loaded):
    recall = line_recall(loaded, read_corpus_lines(DEFAULT_CORPUS))
    assert recall.lines > 90
    assert recall.share >= 0.8
    assert json.loads((loaded.directory / "manifest.json").read_text())["metrics"]["line_recall"] == round(recall.share, 4)


def test_same_inputs_give_the_same_model_and_manifest(tmp_path):
    flags = ["--quiet", "--steps", "4", "--n-embd", "32", "--vocab-size", "300"]
    assert train_main([*flags, "--out", str(tmp_path / "a")]) == 0
    assert train_main([*flags, "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()
    assert train_main([*flags, "--seed", "2", "--out", str(tmp_path / "c")]) == 0

    def files(run: str) -> dict[str, str]:
        return json.loads((tmp_path / run / "manifest.json").read_text())["files"]

    assert files("a")["model.safetensors"] != files("c")["model.safetensors"]
