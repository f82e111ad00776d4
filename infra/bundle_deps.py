"""Vendor pinned runtime dependencies for a target runtime (not for this machine) into a package directory.

pip does the work, with `--platform/--python-version/--implementation cp/--only-binary=:all:` so that it picks
the wheels the cloud's Linux runs (https://pip.pypa.io/en/stable/cli/pip_install/#cmdoption-platform; AWS
recommends exactly this for Lambda packages: https://repost.aws/knowledge-center/lambda-python-package-compatible).
Wheels are cached in TINYLLM_WHEEL_CACHE (default ~/.cache/tinyllm-wheels): the first build downloads them,
later builds install offline from the cache, so repeated builds are fast and use the very same wheel files.

After installing, what no runtime reads is pruned: byte code caches, console scripts (their shebang names this
machine's interpreter), the packages' own test suites, and RECORD files (they list the pruned files and the
scripts' machine-specific hashes; only `pip uninstall` reads them). The rest of each .dist-info stays.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

WHEEL_CACHE = Path(os.environ.get("TINYLLM_WHEEL_CACHE", Path.home() / ".cache" / "tinyllm-wheels"))
ARCH_TO_MACHINE = {"arm64": "aarch64", "x86_64": "x86_64"}  # Lambda's names -> Linux machine names
PRUNED_DIRS = ("__pycache__", "tests")
# A model dir whose manifest says `engine: onnx` (python -m train.onnx_export) is served by core/onnx_engine.py.
# onnxruntime's declared dependencies (flatbuffers, packaging, protobuf) are for its tools, not for
# `import onnxruntime` + InferenceSession, so the pin alone is the closure (docs/engines.md measures it).
ONNX_PINS = ("onnxruntime==1.32.0",)


def model_requirements(model_dir: Path) -> tuple[str, ...]:
    """The pins a model dir needs on top of the serving ones: ONNX_PINS for an ONNX model, else none."""
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    return ONNX_PINS if manifest.get("engine") == "onnx" else ()


class DependencyError(Exception):
    """pip could not install the pinned requirements for the target runtime."""


@dataclass(frozen=True)
class Runtime:
    """The interpreter and machine a package runs on: CPython `python_version` on Linux `machine`."""

    python_version: str  # "3.12"
    machine: str  # "x86_64" | "aarch64"

    @classmethod
    def local(cls) -> Runtime:
        """This interpreter on this (Linux) machine: to run a package here, in the self-contained smoke tests."""
        return cls(f"{sys.version_info.major}.{sys.version_info.minor}", platform.machine())

    @property
    def platforms(self) -> tuple[str, ...]:
        # numpy 2.4 ships manylinux_2_27/2_28 wheels only, tokenizers manylinux2014 (glibc 2.17) ones; pip does not
        # widen a manylinux_2_28 tag to older ones, so both are named. glibc 2.28 is below every target runtime's:
        # Lambda python3.12 (Amazon Linux 2023, glibc 2.34) and Azure Functions python 3.12 (Debian 12, glibc 2.36).
        return (f"manylinux_2_28_{self.machine}", f"manylinux2014_{self.machine}")

    def pip_options(self) -> list[str]:
        options = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python_version]
        for tag in self.platforms:
            options += ["--platform", tag]
        return options


def run_pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args], capture_output=True, text=True
    )


def install(
    requirements: tuple[str, ...],
    runtime: Runtime,
    target: Path,
    *,
    dependencies: bool = False,
    cache: Path = WHEEL_CACHE,
) -> None:
    """pip-install `requirements` for `runtime` into `target`, from the wheel cache (filled on a miss), then prune.

    By default the requirements are a complete, pinned list and pip installs exactly them (--no-deps), so the
    package holds nothing that was not asked for; `dependencies=True` lets pip resolve the rest.
    """
    options = runtime.pip_options() + ([] if dependencies else ["--no-deps"])
    offline = [
        "install",
        "--target",
        str(target),
        "--no-compile",
        "--no-index",
        "--find-links",
        str(cache),
        *options,
        *requirements,
    ]
    if run_pip(*offline).returncode != 0:  # a cache miss: download once, then install from the cache
        cache.mkdir(parents=True, exist_ok=True)
        download = run_pip("download", "--dest", str(cache), *options, *requirements)
        if download.returncode != 0:
            raise DependencyError(f"pip download {' '.join(requirements)} for {runtime} failed:\n{download.stderr}")
        result = run_pip(*offline)
        if result.returncode != 0:
            raise DependencyError(f"pip install {' '.join(requirements)} for {runtime} failed:\n{result.stderr}")
    prune(target)


def prune(site_packages: Path) -> None:
    """Remove what no runtime reads (see the module docstring) from an installed site-packages directory."""
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for path in sorted(site_packages.rglob("*"), reverse=True):  # deepest first, so removed dirs are not revisited
        if path.is_dir() and path.name in PRUNED_DIRS:
            shutil.rmtree(path)
        elif path.suffix == ".pyc" or (path.name == "RECORD" and path.parent.name.endswith(".dist-info")):
            path.unlink()
