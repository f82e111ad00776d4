"""The baked model is found by a fixed precedence and refused when any file differs from its manifest."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file

from core import artifacts
from core.artifacts import ArtifactError, load, load_from, read_safetensors, resolve_model_dir


@pytest.fixture
def model_copy(model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(model_dir, target)
    return target


def test_a_verified_model_loads_and_reports_its_manifest_hash(model_copy):
    loaded = load_from(model_copy)
    assert loaded.manifest_sha256 == artifacts.sha256_file(model_copy / "manifest.json")
    assert loaded.name == "tinyllm"


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json", "config.json"])
def test_a_tampered_file_is_refused_naming_the_file(model_copy, name):
    path = model_copy / name
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{name}: sha256 .* does not match the manifest"):
        load_from(model_copy)


@pytest.mark.parametrize("name", ["model.safetensors", "tokenizer.json"])
def test_a_missing_file_is_refused_naming_the_file(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ArtifactError, match=f"{name}: file listed in the manifest is missing"):
        load_from(model_copy)


def test_a_missing_manifest_is_refused(model_copy):
    (model_copy / "manifest.json").unlink()
    with pytest.raises(ArtifactError, match=r"manifest\.json: manifest is missing"):
        load_from(model_copy)


def test_precedence_is_argument_then_environment_then_default(model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(artifacts.ENV_MODEL_DIR, str(tmp_path / "from-env"))
    assert resolve_model_dir(tmp_path / "from-arg") == tmp_path / "from-arg"
    assert resolve_model_dir() == tmp_path / "from-env"
    monkeypatch.delenv(artifacts.ENV_MODEL_DIR)
    assert resolve_model_dir() == model_dir  # the repository layout: artifacts/model/


def test_no_model_anywhere_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(artifacts.ENV_MODEL_DIR, raising=False)
    monkeypatch.setattr(artifacts, "DEFAULT_DIRS", (tmp_path / "model",))
    with pytest.raises(ArtifactError, match=r"no model found .*python -m train"):
        resolve_model_dir()


def test_the_model_is_loaded_once_per_process(model_dir):
    assert load(model_dir) is load(model_dir)


def test_our_safetensors_reader_equals_the_safetensors_library(model_dir):
    ours = read_safetensors(model_dir / "model.safetensors")
    theirs = load_file(model_dir / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name])
