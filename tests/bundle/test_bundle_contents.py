"""What each cloud's package holds: its adapter where the platform looks, core, the verified model, its pinned
dependencies — and nothing else (no torch, transformers, tests, caches, developer tools)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from core.artifacts import verify
from infra.bundle import REPO_ROOT, TARGETS

from bundle_packages import CLOUDS, zip_names

ADAPTER_FILES = {"gcp": {"main.py"}, "aws": {"handler.py"}, "azure": {"function_app.py", "host.json"}}
SERVING_CORE = {"__init__.py", "api.py", "artifacts.py", "completions.py", "generate.py", "model.py", "openapi.py",
                "schema.py"}
DEV_ONLY_CORE = {"reference.py", "cli.py", "local.py", "__main__.py"}
VENDOR_DIR = {"aws": "", "azure": ".python_packages/lib/site-packages"}
# the import packages (and numpy's bundled shared libraries) each vendoring cloud ships, besides .dist-info dirs
VENDORED_TOP_LEVEL = {"aws": {"numpy", "numpy.libs", "tokenizers"},
                      "azure": {"azure", "werkzeug", "markupsafe", "numpy", "numpy.libs", "tokenizers"}}
NEVER = {"torch", "transformers", "huggingface_hub", "tests", "__pycache__"}  # at any depth


def dist_info_stem(pin: str) -> str:
    """"azure-functions==1.26.0" -> "azure_functions-1.26.0", as a wheel names its .dist-info directory."""
    name, version = pin.split("==")
    return f"{name.replace('-', '_').lower()}-{version}"


def top_level(names: list[str], under: str = "") -> set[str]:
    prefix = f"{under}/" if under else ""
    return {name[len(prefix):].split("/")[0] for name in names if name.startswith(prefix)}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_adapter_sits_at_the_package_root_unchanged(cloud, target_bundles):
    package = target_bundles[cloud]
    for name in ADAPTER_FILES[cloud]:
        assert (package.directory / name).read_bytes() == (REPO_ROOT / "functions" / cloud / name).read_bytes()
    assert ADAPTER_FILES[cloud] <= set(zip_names(package))


@pytest.mark.parametrize("cloud", CLOUDS)
def test_core_is_the_serving_modules_without_the_reference_engine_or_dev_tools(cloud, target_bundles):
    core = {PurePosixPath(n).name for n in zip_names(target_bundles[cloud]) if n.startswith("core/")}
    assert SERVING_CORE <= core
    assert not core & DEV_ONLY_CORE


@pytest.mark.parametrize("cloud", CLOUDS)
def test_model_and_manifest_are_baked_in_and_verify(cloud, target_bundles):
    package = target_bundles[cloud]
    manifest, _ = verify(package.directory / "model")  # every listed sha256 matches the packaged bytes
    model_files = {n.removeprefix("model/") for n in zip_names(package) if n.startswith("model/")}
    assert model_files == set(manifest["files"]) | {"manifest.json"}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_no_training_stack_tests_caches_or_scripts(cloud, target_bundles):
    for name in zip_names(target_bundles[cloud]):
        parts = PurePosixPath(name).parts
        assert not NEVER & set(parts), name
        assert not any(p.startswith(("torch-", "transformers-", "huggingface_hub-")) for p in parts), name
        assert not name.endswith((".pyc", ".pyo")), name


@pytest.mark.parametrize("cloud", CLOUDS)
def test_package_root_holds_only_adapter_core_model_and_dependencies(cloud, target_bundles):
    expected = ADAPTER_FILES[cloud] | {"core", "model"} | {"gcp": {"requirements.txt"}, "azure": {".python_packages"},
                                                            "aws": VENDORED_TOP_LEVEL["aws"]}[cloud]
    root = {n for n in top_level(zip_names(target_bundles[cloud])) if not n.endswith(".dist-info")}
    assert root == expected


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_vendored_dependencies_are_exactly_the_pinned_ones(cloud, target_bundles):
    entries = top_level(zip_names(target_bundles[cloud]), VENDOR_DIR[cloud])
    if cloud == "azure":
        assert {n for n in entries if not n.endswith(".dist-info")} == VENDORED_TOP_LEVEL[cloud]
    installed = {n.removesuffix(".dist-info") for n in entries if n.endswith(".dist-info")}
    assert installed == {dist_info_stem(pin) for pin in TARGETS[cloud].requirements}


def test_gcp_ships_pinned_requirements_instead_of_wheels(target_bundles):
    package = target_bundles["gcp"]
    requirements = (package.directory / "requirements.txt").read_text().split()
    assert {r.split("==")[0] for r in requirements} == {"functions-framework", "numpy", "tokenizers"}
    assert all("==" in r for r in requirements)
    assert not any(n.startswith(("numpy/", "tokenizers/")) for n in zip_names(package))
