"""Shared fixtures: one trained model for the whole session (the real one, in artifacts/model/)."""

from __future__ import annotations

import pytest

from core.artifacts import LoadedModel, load
from train.config import DEFAULT_OUT


@pytest.fixture(scope="session")
def model_dir():
    """artifacts/model/, trained now unless it already matches the corpus and the default config."""
    from train.__main__ import main as train_main

    assert train_main(["--if-stale", "--quiet", "--out", str(DEFAULT_OUT)]) == 0
    return DEFAULT_OUT


@pytest.fixture(scope="session")
def loaded(model_dir) -> LoadedModel:
    return load(model_dir)
