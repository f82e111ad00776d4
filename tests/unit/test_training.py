"""Training: deterministic, recorded in a timestamp-free manifest with its validation metrics, it learned the
corpus, presets give their documented shapes, and early stopping ends a plateau."""

from __future__ import annotations

import json
import math

import pytest

from core.artifacts import sha256_file
from train.__main__ import main as train_main
from train.config import DEFAULT_CORPUS, PRESETS, ConfigError, TrainConfig
from train.corpus import SPLIT_RULE, split_documents
from train.evaluate import line_recall
from train.manifest import is_current

# A model small enough to train in a second or two: for tests of the machinery, not of quality.
QUICK = [
    "--quiet",
    "--steps",
    "4",
    "--n-embd",
    "32",
    "--n-head",
    "2",
    "--vocab-size",
    "300",
    "--block-size",
    "16",
    "--batch-size",
    "4",
    "--eval-interval",
    "2",
    "--eval-windows",
    "4",
]


def manifest_of(directory) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def test_manifest_records_every_file_the_corpus_and_the_config(model_dir):
    manifest = manifest_of(model_dir)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert manifest["files"][name] == sha256_file(model_dir / name)
    assert manifest["corpus"]["sha256"] == sha256_file(DEFAULT_CORPUS)
    assert manifest["train_config"] == TrainConfig().as_dict()
    assert set(manifest["versions"]) >= {"torch", "transformers", "tokenizers"}
    assert is_current(model_dir, DEFAULT_CORPUS, TrainConfig())
    assert not is_current(model_dir, DEFAULT_CORPUS, TrainConfig(seed=1))


def test_manifest_carries_validation_metrics_tokens_seen_and_the_split_rule(model_dir):
    manifest = manifest_of(model_dir)
    metrics, cfg = manifest["metrics"], TrainConfig()
    assert metrics["tokens_seen"] == metrics["steps"] * cfg.batch_size * cfg.block_size > 0
    assert metrics["train_loss"] > 0 and metrics["val_loss"] > 0
    assert metrics["val_perplexity"] == pytest.approx(math.exp(metrics["val_loss"]), rel=1e-4)
    assert metrics["best_val_loss"] <= metrics["val_loss"]
    split = manifest["split"]
    assert split["rule"] == SPLIT_RULE and split["val_fraction"] == cfg.val_fraction

    def side(validation: bool) -> list[str]:
        return list(split_documents(DEFAULT_CORPUS, cfg.val_fraction, cfg.seed, validation))

    assert split["val_documents"] == len(side(True)) > 0 and split["train_documents"] == len(side(False))
    import torch

    assert manifest["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # --device auto
    assert (model_dir.parent / "model-report" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "loss.png" not in manifest["files"]  # the picture is beside the model, never baked into a package


def test_the_split_is_deterministic_disjoint_and_ignores_line_order(tmp_path):
    docs = [f"document number {i}" for i in range(2000)] + ["a repeated line"] * 3
    forward, backward = tmp_path / "forward.txt", tmp_path / "backward.txt"
    forward.write_text("\n".join(docs))
    backward.write_text("\n".join(reversed(docs)))
    val, train = list(split_documents(forward, 0.1, 7, True)), list(split_documents(forward, 0.1, 7, False))
    assert sorted(val + train) == sorted(docs) and not set(val) & set(train)
    assert val == list(split_documents(forward, 0.1, 7, True))
    assert sorted(val) == sorted(split_documents(backward, 0.1, 7, True))
    assert 0.07 < len(val) / len(docs) < 0.13
    assert set(split_documents(forward, 0.1, 8, True)) != set(val)  # another seed draws another split


def test_greedy_continuation_reproduces_most_training_lines(loaded):
    training_lines = list(split_documents(DEFAULT_CORPUS, TrainConfig().val_fraction, TrainConfig().seed, False))
    recall = line_recall(loaded, training_lines)
    assert recall.lines > 80
    assert recall.share >= 0.8
    assert manifest_of(loaded.directory)["metrics"]["line_recall"] == round(recall.share, 4)


def test_same_inputs_give_the_same_model_and_manifest(tmp_path):
    assert train_main([*QUICK, "--out", str(tmp_path / "a")]) == 0
    assert train_main([*QUICK, "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json").read_bytes()
    assert train_main([*QUICK, "--seed", "2", "--out", str(tmp_path / "c")]) == 0

    def files(run: str) -> dict[str, str]:
        return manifest_of(tmp_path / run)["files"]

    assert files("a")["model.safetensors"] != files("c")["model.safetensors"]


@pytest.mark.parametrize(
    "preset, shape",
    [
        ("tiny", dict(n_layer=1, n_head=4, n_embd=128, block_size=64)),
        ("small", dict(n_layer=4, n_head=4, n_embd=256, block_size=128)),
        ("base", dict(n_layer=6, n_head=6, n_embd=384, block_size=256)),
    ],
)
def test_presets_have_the_documented_shapes(preset, shape):
    cfg = TrainConfig.from_preset(preset)
    assert {k: getattr(cfg, k) for k in shape} == shape
    assert cfg.preset == preset and cfg.n_positions == 256
    assert TrainConfig.from_preset(preset, n_layer=2, n_embd=None).n_layer == 2  # explicit flags override
    assert TrainConfig.from_preset(preset, n_layer=2).n_embd == shape["n_embd"]  # None means "the preset's"


def test_the_default_config_is_the_tiny_preset():
    assert TrainConfig() == TrainConfig.from_preset("tiny")
    assert set(PRESETS) == {"tiny", "small", "base"}


def test_a_preset_shape_reaches_the_written_model(tmp_path):
    out = tmp_path / "m"
    flags = [
        "--quiet",
        "--preset",
        "small",
        "--steps",
        "1",
        "--n-layer",
        "2",
        "--vocab-size",
        "300",
        "--block-size",
        "16",
        "--batch-size",
        "2",
        "--eval-windows",
        "2",
    ]
    assert train_main([*flags, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["n_layer"], config["n_embd"], config["n_head"]) == (2, 256, 4)
    assert manifest_of(out)["train_config"]["preset"] == "small"


def test_early_stop_ends_a_validation_plateau(tmp_path):
    # A learning rate this small leaves every float32 weight unchanged: the validation loss is flat.
    flags = [
        *QUICK,
        "--steps",
        "50",
        "--eval-interval",
        "1",
        "--patience",
        "2",
        "--keep",
        "best",
        "--learning-rate",
        "1e-15",
        "--warmup-steps",
        "0",
    ]
    assert train_main([*flags, "--out", str(tmp_path / "m")]) == 0
    metrics = manifest_of(tmp_path / "m")["metrics"]
    assert metrics["stop_reason"].startswith("early stop")
    assert metrics["steps"] == 3  # best at step 1, then two evaluations without a better loss
    assert metrics["best_step"] == 1 and metrics["val_loss"] == metrics["best_val_loss"]


def test_keep_best_writes_the_weights_of_the_best_validation_loss(tmp_path):
    # The bundled corpus is memorised: its held-out lines get worse as training goes on.
    flags = [*QUICK, "--steps", "40", "--eval-interval", "5", "--keep", "best", "--learning-rate", "1e-2"]
    assert train_main([*flags, "--out", str(tmp_path / "m")]) == 0
    metrics = manifest_of(tmp_path / "m")["metrics"]
    assert metrics["val_loss"] == metrics["best_val_loss"]
    assert metrics["stop_reason"] == "steps" and metrics["steps"] == 40


def test_token_budget_stops_training(tmp_path):
    assert train_main([*QUICK, "--steps", "100", "--max-tokens", "200", "--out", str(tmp_path / "m")]) == 0
    metrics = manifest_of(tmp_path / "m")["metrics"]
    assert metrics["steps"] == 200 // (4 * 16) and metrics["tokens_seen"] <= 200
    assert metrics["stop_reason"] == "max tokens"


def test_time_budget_stops_training(tmp_path):
    assert train_main([*QUICK, "--steps", "100000", "--time-budget", "1", "--out", str(tmp_path / "m")]) == 0
    metrics = manifest_of(tmp_path / "m")["metrics"]
    assert metrics["stop_reason"] == "time budget" and 0 < metrics["steps"] < 100000


def test_validation_can_be_turned_off_but_not_silently(tmp_path):
    with pytest.raises(ConfigError, match="--keep last --patience 0"):
        TrainConfig.from_preset("small", val_fraction=0.0)
    flags = [*QUICK, "--val-fraction", "0", "--keep", "last", "--patience", "0"]
    assert train_main([*flags, "--out", str(tmp_path / "m")]) == 0
    manifest = manifest_of(tmp_path / "m")
    assert manifest["metrics"]["val_loss"] is None and manifest["split"]["val_documents"] == 0
