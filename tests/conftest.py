"""Shared fixtures: one trained model for the whole session (the real one, in artifacts/model/), and each cloud's
package built once per session, as `pulumi up` builds it, into temporary dist/ directories."""

from __future__ import annotations

import pytest

from core.artifacts import LoadedModel, load
from infra import bundle
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


@pytest.fixture(scope="session")
def build_package(model_dir, tmp_path_factory):
    """build_package(cloud, arch="arm64"): infra.bundle.build for the cloud's runtime, once per runtime and session."""
    built: dict[tuple[str, object], bundle.Bundle] = {}

    def build(cloud: str, arch: str = "arm64") -> bundle.Bundle:
        key = (cloud, bundle.target_runtime(cloud, arch))  # arch only matters where the cloud offers a choice
        if key not in built:
            built[key] = bundle.build(cloud, arch=arch, dist=tmp_path_factory.mktemp(f"dist-{cloud}-{arch}"))
        return built[key]

    return build
