"""`python -m train.convert` imports a Hugging Face GPT-2 checkpoint into a model directory the numpy engine
serves exactly, and refuses, in one line with exit status 2, whatever it could not serve exactly."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from core.artifacts import load_from, sha256_file
from functions.devtools.reference import ReferenceEngine
from tests.unit.checkpoints import EOS, byte_level_bpe, save_checkpoint
from train.convert import default_name
from train.convert import main as convert_main

SMALL = dict(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=300)
LOGIT_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("hf") / "tiny-gpt2", **SMALL)


@pytest.fixture
def source(checkpoint, tmp_path):
    """A copy of the checkpoint that a test may break."""
    return shutil.copytree(checkpoint, tmp_path / "source")


def convert(source, out, *flags) -> int:
    return convert_main([str(source), "--out", str(out), *flags])


def test_an_imported_checkpoint_serves_the_logits_transformers_computes(checkpoint, tmp_path):
    out = tmp_path / "model"
    assert convert(checkpoint, out) == 0
    loaded, reference = load_from(out), ReferenceEngine(checkpoint)
    ids = np.random.default_rng(0).integers(0, SMALL["vocab_size"], size=40).tolist()
    np.testing.assert_allclose(
        loaded.model.session().feed_every(ids), reference.session().feed_every(ids), atol=LOGIT_TOLERANCE, rtol=0
    )


def test_the_manifest_records_every_file_the_dtype_and_the_source(checkpoint, tmp_path):
    out = tmp_path / "model"
    assert convert(checkpoint, out, "--dtype", "int8") == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert all(manifest["files"][name] == sha256_file(out / name) for name in manifest["files"])
    assert manifest["dtype"] == "int8"
    assert manifest["name"] == "tiny-gpt2"
    assert manifest["source"]["config"] == json.loads((checkpoint / "config.json").read_text())
    assert manifest["source"]["files"]["model.safetensors"] == sha256_file(checkpoint / "model.safetensors")
    C, V, P, L = SMALL["n_embd"], SMALL["vocab_size"], SMALL["n_positions"], SMALL["n_layer"]
    assert manifest["parameters"] == V * C + P * C + 2 * C + L * (12 * C * C + 13 * C)  # GPT-2's count, tied head


@pytest.mark.parametrize("dtype, max_bytes_per_weight", [("fp32", 4.01), ("fp16", 2.01), ("int8", 1.2)])
def test_each_dtype_packs_the_weights_to_its_size(checkpoint, tmp_path, dtype, max_bytes_per_weight):
    out = tmp_path / dtype
    assert convert(checkpoint, out, "--dtype", dtype) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (out / "model.safetensors").stat().st_size <= manifest["parameters"] * max_bytes_per_weight + 20_000
    assert load_from(out).model.cfg.n_layer == SMALL["n_layer"]


def test_vocab_and_merges_give_the_same_tokens_as_gpt2_tokenizer_fast(checkpoint, source, tmp_path):
    from transformers import GPT2TokenizerFast

    (source / "tokenizer.json").unlink()
    if not (source / "vocab.json").is_file():  # transformers 5 writes tokenizer.json alone: write GPT-2's classic pair
        byte_level_bpe(SMALL["vocab_size"]).model.save(str(source))
    out = tmp_path / "model"
    assert convert(source, out) == 0
    ours, theirs = load_from(out).tokenizer, GPT2TokenizerFast.from_pretrained(checkpoint)
    for text in ["Hello world", "  two spaces", f"end{EOS}start", "naïve café 日本 🚀"]:
        assert ours.encode(text).ids == theirs(text)["input_ids"]


def test_a_pytorch_model_bin_imports_like_the_safetensors_file(checkpoint, source, tmp_path):
    import torch

    from core.artifacts import read_safetensors

    state = {name: torch.from_numpy(t.copy()) for name, t in read_safetensors(source / "model.safetensors").items()}
    torch.save(state, source / "pytorch_model.bin")
    (source / "model.safetensors").unlink()
    assert convert(source, tmp_path / "from-bin") == 0
    assert convert(checkpoint, tmp_path / "from-safetensors") == 0
    assert sha256_file(tmp_path / "from-bin" / "model.safetensors") == sha256_file(
        tmp_path / "from-safetensors" / "model.safetensors"
    )


def edit_config(source, **changes) -> None:
    path = source / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def truncate_weights(source) -> None:
    path = source / "model.safetensors"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_header(source) -> None:
    path = source / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:24] = b"\xff" * 16
    path.write_bytes(bytes(data))


def remove_tokenizer(source) -> None:
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        (source / name).unlink(missing_ok=True)


def wrong_size_tokenizer(source) -> None:
    byte_level_bpe(SMALL["vocab_size"] - 20).save(str(source / "tokenizer.json"))


REFUSALS = {
    "another architecture": (lambda s: edit_config(s, model_type="llama"), "model_type 'llama' is not gpt2"),
    "a classification head": (
        lambda s: edit_config(s, architectures=["GPT2ForSequenceClassification"]),
        "is not \\['GPT2LMHeadModel'\\]",
    ),
    "reorder_and_upcast_attn": (
        lambda s: edit_config(s, reorder_and_upcast_attn=True),
        "reorder_and_upcast_attn=True is not supported",
    ),
    "cross-attention": (lambda s: edit_config(s, add_cross_attention=True), "add_cross_attention=True"),
    "an erf GELU": (lambda s: edit_config(s, activation_function="gelu"), "activation_function 'gelu'"),
    "no tokenizer": (remove_tokenizer, "no tokenizer"),
    "a tokenizer of another size": (wrong_size_tokenizer, "the tokenizer has 280 tokens but .* vocab_size is 300"),
    "a truncated safetensors": (truncate_weights, "truncated"),
    "a corrupt safetensors header": (corrupt_header, "corrupt"),
    "no weights": (lambda s: (s / "model.safetensors").unlink(), "no weights"),
    "no config": (lambda s: (s / "config.json").unlink(), "config.json: missing"),
    "a shape the config does not imply": (
        lambda s: edit_config(s, n_positions=32),
        "'wpe.weight' has shape \\(64, 64\\), config.json implies \\(32, 64\\)",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_what_the_engine_cannot_serve_exactly_is_refused_in_one_line(case, source, tmp_path, capsys):
    break_source, message = REFUSALS[case]
    break_source(source)
    out = tmp_path / "model"
    assert convert(source, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m train.convert: error: ")
    assert re.search(message, err), err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["source"]  # no staging directory left behind


def test_an_unknown_dtype_is_refused_in_one_line(checkpoint, tmp_path, capsys):
    assert convert(checkpoint, tmp_path / "model", "--dtype", "q4") == 2
    err = capsys.readouterr().err
    assert err == "python -m train.convert: error: --dtype 'q4' is not one of fp32, fp16, int8\n"
    assert not (tmp_path / "model").exists()


def test_a_refused_import_leaves_the_previous_model_directory_untouched(checkpoint, source, tmp_path):
    out = tmp_path / "model"
    assert convert(checkpoint, out) == 0
    before = {p.name: sha256_file(p) for p in out.iterdir()}
    truncate_weights(source)
    assert convert(source, out, "--dtype", "int8") == 2
    assert {p.name: sha256_file(p) for p in out.iterdir()} == before


def test_a_hugging_face_cache_snapshot_is_named_after_its_repository_not_its_commit(tmp_path):
    # `huggingface-cli download distilgpt2` prints .../models--distilgpt2/snapshots/<commit>; orgs join with "--".
    for repository, expected in (("models--distilgpt2", "distilgpt2"), ("models--openai-community--gpt2", "gpt2")):
        snapshot = tmp_path / repository / "snapshots" / "0123abcd"
        snapshot.mkdir(parents=True)
        assert default_name(snapshot) == expected
    assert default_name(tmp_path / "my-checkpoint") == "my-checkpoint"
