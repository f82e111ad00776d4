"""Bundles built once per session, into temporary dist/ directories (never the repository's dist/).

- `target_bundles`: each cloud's package for its real runtime (CPython 3.12; AWS arm64, Azure x86_64), from the
  session's `build_package` (tests/conftest.py), which the runtime tests share;
- `local_bundles`: the same packages built for this interpreter and machine, to unpack and run here.
Wheels come from the shared wheel cache (infra.bundle_deps.WHEEL_CACHE), so only a first run downloads.
"""

from __future__ import annotations

import pytest
from bundle_packages import CLOUDS

from infra import bundle
from infra.bundle_deps import Runtime


@pytest.fixture(scope="session")
def target_bundles(build_package) -> dict[str, bundle.Bundle]:
    return {cloud: build_package(cloud) for cloud in CLOUDS}


@pytest.fixture(scope="session")
def aws_x86_64_bundle(build_package) -> bundle.Bundle:
    return build_package("aws", "x86_64")


@pytest.fixture(scope="session")
def local_bundles(model_dir, tmp_path_factory) -> dict[str, bundle.Bundle]:
    dist = tmp_path_factory.mktemp("dist-local")
    return {cloud: bundle.build(cloud, runtime=Runtime.local(), dist=dist) for cloud in CLOUDS}
