"""The vendored dependencies are built for the cloud's runtime (CPython 3.12 on Linux, the right machine), not
for this machine, and their versions are the ones the project declares."""

from __future__ import annotations

import re
import struct
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.bundle import REPO_ROOT, TARGETS

ELF_MACHINES = {62: "x86_64", 183: "aarch64"}  # e_machine values: EM_X86_64, EM_AARCH64


def vendored(package) -> Path:
    return package.directory / (TARGETS[package.cloud].vendor_dir or "")


def runs_on_cp312(tag: str, machine: str) -> bool:
    """Whether a wheel tag (python-abi-platform) installs on CPython 3.12, Linux glibc, `machine`."""
    python, abi, platform = tag.split("-")
    if python == "py3" and abi == "none" and platform == "any":
        return True
    abi_ok = abi == "cp312" == python or (abi == "abi3" and re.fullmatch(r"cp3(\d+)", python) and int(python[3:]) <= 12)
    return bool(abi_ok) and re.fullmatch(rf"manylinux(2014|_2_\d+)_{machine}", platform) is not None


def elf_machine(path: Path) -> str:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", path
    return ELF_MACHINES.get(struct.unpack("<H", header[18:20])[0], "other")


@pytest.fixture(params=["aws-arm64", "aws-x86_64", "azure"])
def target(request, target_bundles, aws_x86_64_bundle):
    """(package, the Linux machine its cloud runs it on)."""
    return {
        "aws-arm64": (target_bundles["aws"], "aarch64"),
        "aws-x86_64": (aws_x86_64_bundle, "x86_64"),
        "azure": (target_bundles["azure"], "x86_64"),
    }[request.param]


def test_every_wheel_is_tagged_for_the_target_runtime(target):
    package, machine = target
    wheels = sorted(vendored(package).glob("*.dist-info/WHEEL"))
    assert len(wheels) == len(TARGETS[package.cloud].requirements)
    for wheel in wheels:
        tags = re.findall(r"^Tag: (\S+)$", wheel.read_text(), re.MULTILINE)
        assert tags and any(runs_on_cp312(tag, machine) for tag in tags), (wheel, tags)


def test_every_native_library_is_built_for_the_target_machine(target):
    package, machine = target
    libraries = [p for p in vendored(package).rglob("*.so*") if p.is_file()]
    assert libraries  # numpy and tokenizers are native
    assert {elf_machine(p) for p in libraries} == {machine}
    extensions = [p.name for p in libraries if ".cpython-" in p.name]
    assert extensions and all(f".cpython-312-{machine}-linux-gnu.so" in name for name in extensions)


def test_pins_satisfy_the_projects_declared_dependencies():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for group in ("gcp", "azure") for r in project["optional-dependencies"][group]]
    by_name = {canonicalize_name(r.name): r for r in declared}
    for cloud, target in TARGETS.items():
        for pin in target.requirements:
            name, version = pin.split("==")
            if canonicalize_name(name) in by_name:
                assert by_name[canonicalize_name(name)].specifier.contains(version), (cloud, pin)
