"""What each cloud's package holds: its adapter where the platform looks, core/ copied whole, the verified model,
its pinned dependencies — and nothing else (no torch, transformers, tests, caches, developer tools)."""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

import pytest
from bundle_packages import CLOUDS, zip_names

from core.artifacts import verify
from infra import bundle
from infra.bundle import REPO_ROOT, TARGETS
from infra.bundle_deps import Runtime

ADAPTER_FILES = {
    "gcp": {"main.py"},
    "aws": {"handler.py", "stream_runtime.py", "stream-runtime"},
    "azure": {"function_app.py", "host.json"},
}
VENDOR_DIR = {"aws": "", "azure": ".python_packages/lib/site-packages"}
# the import packages (and numpy's bundled shared libraries) each vendoring cloud ships, besides .dist-info dirs
VENDORED_TOP_LEVEL = {
    "aws": {"numpy", "numpy.libs", "tokenizers"},
    "azure": {"azure", "werkzeug", "markupsafe", "numpy", "numpy.libs", "tokenizers"},
}
NEVER = {"torch", "transformers", "huggingface_hub", "tests", "__pycache__"}  # at any depth


def dist_info_stem(pin: str) -> str:
    """ "azure-functions==1.26.0" -> "azure_functions-1.26.0", as a wheel names its .dist-info directory."""
    name, version = pin.split("==")
    return f"{name.replace('-', '_').lower()}-{version}"


def top_level(names: list[str], under: str = "") -> set[str]:
    prefix = f"{under}/" if under else ""
    return {name[len(prefix) :].split("/")[0] for name in names if name.startswith(prefix)}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_adapter_sits_at_the_package_root_unchanged(cloud, target_bundles):
    package = target_bundles[cloud]
    for name in ADAPTER_FILES[cloud]:
        assert (package.directory / name).read_bytes() == (REPO_ROOT / "functions" / cloud / name).read_bytes()
    assert ADAPTER_FILES[cloud] <= set(zip_names(package))


def test_the_lambda_exec_wrapper_is_executable_in_the_zip(target_bundles):
    """Lambda runs AWS_LAMBDA_EXEC_WRAPPER as a program: the zip entry must carry the executable mode."""
    with zipfile.ZipFile(target_bundles["aws"].zip_path) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["stream-runtime"] == 0o100755
    assert modes["handler.py"] == modes["stream_runtime.py"] == 0o100644


def source_files(folder: Path) -> dict[str, bytes]:
    """Every file under a source folder (relative name -> bytes), without what running the code leaves behind."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }


@pytest.mark.parametrize("cloud", CLOUDS)
def test_core_is_the_repositorys_core_folder_copied_whole(cloud, target_bundles):
    package = target_bundles[cloud]
    expected = source_files(REPO_ROOT / "core")
    assert {n.removeprefix("core/") for n in zip_names(package) if n.startswith("core/")} == set(expected)
    assert source_files(package.directory / "core") == expected


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_developer_tools_never_ship(cloud, target_bundles):
    tools = set(source_files(REPO_ROOT / "functions" / "devtools").values())
    assert len(tools) >= 4  # the package, the CLI, the local runs, the transformers oracle
    package = target_bundles[cloud]
    assert not any("devtools" in name for name in zip_names(package))
    assert not any(path.read_bytes() in tools for path in package.directory.rglob("*.py"))  # under no other name


def test_a_new_module_in_core_ships_without_touching_the_builder(model_dir, monkeypatch, tmp_path):
    """What ships is a folder, not a list of names: a module added to core/ is in the next package."""
    serving = tmp_path / "core"
    for name, data in source_files(REPO_ROOT / "core").items():
        (serving / name).parent.mkdir(parents=True, exist_ok=True)
        (serving / name).write_bytes(data)
    (serving / "added_later.py").write_text('"""A module nobody told the builder about."""\n')
    monkeypatch.setattr(bundle, "SERVING_PACKAGE", serving)
    (tmp_path / "package").mkdir()
    bundle.assemble("gcp", Runtime("3.12", "x86_64"), model_dir, tmp_path / "package")  # gcp: no wheels to fetch
    assert source_files(tmp_path / "package" / "core") == source_files(serving)


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
    expected = (
        ADAPTER_FILES[cloud]
        | {"core", "model"}
        | {"gcp": {"requirements.txt"}, "azure": {".python_packages"}, "aws": VENDORED_TOP_LEVEL["aws"]}[cloud]
    )
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
