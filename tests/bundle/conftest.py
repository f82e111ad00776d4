"""Bundles built once per session, into temporary dist/ directories (never the repository's dist/).

- `target_bundles`: each cloud's package for its real runtime (CPython 3.12; AWS arm64, Azure x86_64);
- `local_bundles`: the same packages built for this interpreter and machine, to unpack and run here.
Wheels come from the shared wheel cache (infra.bundle_deps.WHEEL_CACHE), so only a first run downloads.
"""

from __future__ import annotations

import pytest

from infra import bundle
from infra.bundle_deps import Runtime

from bundle_packages import CLOUDS


@pytest.fixture(scope="session")
def target_bundles(model_dir, tmp_path_factory) -> dict[str, bundle.Bundle]:
    dist = tmp_path_factory.mktemp("dist-target")
    return {cloud: bundle.build(cloud, dist=dist) for cloud in CLOUDS}


@pytest.fixture(scope="session")
def aws_x86_64_bundle(model_dir, tmp_path_factory) -> bundle.Bundle:
    return bundle.build("aws", arch="x86_64", dist=tmp_path_factory.mktemp("dist-aws-x86_64"))


@pytest.fixture(scope="session")
def local_bundles(model_dir, tmp_path_factory) -> dict[str, bundle.Bundle]:
    dist = tmp_path_factory.mktemp("dist-local")
    return {cloud: bundle.build(cloud, runtime=Runtime.local(), dist=dist) for cloud in CLOUDS}

