"""`python -m train --init-from DIR` fine-tunes a GPT-2 checkpoint: its shape and tokenizer, never a preset's,
and the run records the validation loss before and after."""

from __future__ import annotations

import json

import pytest
from tokenizers import Tokenizer

from core.artifacts import load_from
from tests.unit.checkpoints import save_checkpoint
from train.__main__ import main as train_main

SMALL = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=300)  # room for the recall check


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("hf") / "tiny-gpt2", **SMALL)


@pytest.fixture(scope="module")
def fine_tuned(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("fine-tuned") / "model"
    flags = [
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--block-size",
        "32",
        "--eval-interval",
        "3",
        "--learning-rate",
        "3e-3",
    ]
    assert train_main(["--quiet", "--init-from", str(checkpoint), "--out", str(out), *flags]) == 0
    return out


def test_fine_tuning_keeps_the_checkpoints_shape_and_tokenizer(checkpoint, fine_tuned):
    loaded = load_from(fine_tuned)
    cfg = loaded.model.cfg
    assert (cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.n_positions, cfg.vocab_size) == (2, 64, 4, 128, 300)
    text = "fine-tuning keeps the tokenizer"
    assert loaded.tokenizer.encode(text).ids == Tokenizer.from_file(str(checkpoint / "tokenizer.json")).encode(text).ids


def test_the_manifest_records_the_source_and_the_loss_before_and_after(checkpoint, fine_tuned):
    manifest = json.loads((fine_tuned / "manifest.json").read_text())
    assert manifest["init_from"]["config"] == json.loads((checkpoint / "config.json").read_text())
    assert manifest["train_config"]["preset"] == "init-from"
    metrics = manifest["metrics"]
    assert metrics["val_loss"] < metrics["initial_val_loss"]  # random weights: a few steps must already help


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--n-layer", "3"], "--n-layer: the shape comes from the --init-from checkpoint"),
        (["--vocab-size", "512"], "--vocab-size: the shape comes from the --init-from checkpoint"),
        (["--preset", "small"], "--preset sets a shape, --init-from's checkpoint has its own"),
    ],
)
def test_a_shape_flag_with_init_from_is_refused(checkpoint, tmp_path, capsys, flags, message):
    assert train_main(["--quiet", "--init-from", str(checkpoint), "--out", str(tmp_path / "m"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "m").exists()


def test_a_directory_that_is_not_a_gpt2_checkpoint_is_refused(tmp_path, capsys):
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.txt").write_text("hello")
    assert train_main(["--quiet", "--init-from", str(tmp_path / "not-a-model"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--init-from:" in err and "config.json: missing" in err
    assert not (tmp_path / "m").exists()
