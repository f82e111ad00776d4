"""The builder's rules, checked without building: which runtime each cloud targets, what pruning removes,
and the errors a wrong request gets."""

from __future__ import annotations

import pytest

from infra import bundle
from infra.bundle_deps import Runtime, prune


@pytest.mark.parametrize(
    "cloud, arch, machine",
    [
        ("aws", "arm64", "aarch64"),
        ("aws", "x86_64", "x86_64"),
        ("azure", "arm64", "x86_64"),
        ("gcp", "arm64", "x86_64"),  # only Lambda offers a choice
    ],
)
def test_each_cloud_targets_cpython_3_12_on_its_machine(cloud, arch, machine):
    assert bundle.target_runtime(cloud, arch) == Runtime("3.12", machine)


def test_wheels_are_asked_for_the_target_platform_not_this_one():
    options = Runtime("3.12", "aarch64").pip_options()
    assert "--only-binary=:all:" in options
    assert options[options.index("--python-version") + 1] == "3.12"
    platforms = [options[i + 1] for i, o in enumerate(options) if o == "--platform"]
    assert platforms and all(p.endswith("_aarch64") for p in platforms)


def test_unknown_cloud_or_arch_is_refused_before_any_work(tmp_path):
    with pytest.raises(bundle.BundleError, match="cloud must be one of"):
        bundle.build("mars", dist=tmp_path)
    with pytest.raises(bundle.BundleError, match="arch must be one of"):
        bundle.build("aws", arch="mips", dist=tmp_path)
    assert not any(tmp_path.iterdir())


def test_prune_removes_what_no_runtime_reads_and_keeps_the_rest(tmp_path):
    kept = [
        "pkg/__init__.py",
        "pkg/testing/__init__.py",
        "pkg/core.so",
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/WHEEL",
    ]
    removed = [
        "bin/pkg-cli",
        "pkg/tests/test_pkg.py",
        "pkg/__pycache__/core.cpython-312.pyc",
        "pkg/stray.pyc",
        "pkg-1.0.dist-info/RECORD",
    ]
    for name in kept + removed:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    prune(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(kept)
    assert not (tmp_path / "bin").exists() and not (tmp_path / "pkg" / "tests").exists()
