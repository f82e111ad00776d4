"""Build the deployable package for one cloud: dist/<cloud>/ and its byte-reproducible dist/<cloud>.zip.

    python -m infra.bundle gcp|aws|azure [--arch arm64|x86_64]      (make bundle CLOUD=...)

The Pulumi program calls `build(cloud, arch=...)` and uploads `Bundle.zip_path`, named by `Bundle.sha256`.
A package holds, and holds only:
  - the cloud's adapter where its platform looks for it (TARGETS below);
  - `core/`, the serving package, copied whole: whatever is in core/ ships, and nothing else of this repository
    does (the developer tools live in functions/devtools, see docs/architecture.md);
  - `model/`: the files the model's manifest lists, and the manifest. core.artifacts looks for `model/` beside
    `core/` first and checks every file against the manifest's sha256 when the function cold-starts;
  - the pinned runtime dependencies, as the platform wants them: a requirements.txt that Cloud Run functions
    installs at deploy time (GCP), or wheels for the target runtime vendored in the package (AWS, Azure).
The model comes from artifacts/model/, trained first when its manifest does not match the corpus and the
training config, so a fresh clone can deploy. Same inputs, same bytes: entries are sorted and carry a fixed
timestamp and mode, so an unchanged package never makes Pulumi redeploy.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from infra.bundle_deps import ARCH_TO_MACHINE, DependencyError, Runtime, install

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST = REPO_ROOT / "dist"
MODEL_DIR = REPO_ROOT / "artifacts" / "model"
SERVING_PACKAGE = REPO_ROOT / "core"
BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.pyc")  # what running the code writes, not the code
# The serving path's whole closure: tokenizers declares huggingface-hub, used only to download models, not here.
SERVING_PINS = ("numpy==2.4.6", "tokenizers==0.23.3")
MIB = 1024 * 1024
# Lambda's hard limits for a .zip uploaded directly: 50 MB zipped, 250 MB unzipped
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); checked for every cloud.
MAX_ZIPPED, MAX_UNZIPPED = 50 * MIB, 250 * MIB
AIM_ZIPPED, AIM_UNZIPPED = 25 * MIB, 100 * MIB
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class BundleError(Exception):
    """The package cannot be built, or is too large to deploy."""


@dataclass(frozen=True)
class Target:
    """What one cloud's package holds besides core/ and model/."""

    adapter: tuple[str, ...]  # files copied from functions/<cloud>/ to the package root
    requirements: tuple[str, ...]  # every runtime dependency, pinned
    vendor_dir: str | None  # where the wheels go inside the package; None: the platform installs requirements.txt
    machine: str | None = None  # the platform's only machine; None: chosen by `arch` (Lambda offers both)


TARGETS = {
    # Cloud Run functions (python312) pip-installs requirements.txt beside main.py at deploy time; the Functions
    # Framework must be listed (https://cloud.google.com/run/docs/runtimes/python-dependencies).
    "gcp": Target(("main.py",), ("functions-framework==3.10.2", *SERVING_PINS), None, "x86_64"),
    # Lambda puts the package root on sys.path (https://docs.aws.amazon.com/lambda/latest/dg/python-package.html).
    # stream-runtime (executable) and stream_runtime.py stream a RESPONSE_STREAM Function URL's answers; see
    # functions/aws/stream_runtime.py.
    "aws": Target(("handler.py", "stream_runtime.py", "stream-runtime"), SERVING_PINS, ""),
    # Flex Consumption runs a package deployed as is (no remote build) only if its dependencies are in
    # .python_packages/lib/site-packages, built for the same Linux and Python as production
    # (https://learn.microsoft.com/en-us/azure/azure-functions/python-build-options). azure-functions is vendored
    # too, pinned with its dependencies: the worker's own copy may shadow it on some plans, never replace it
    # (https://github.com/Azure/azure-functions-python-worker/wiki/Python-Packages-Loading-Order-and-Sys-Path).
    "azure": Target(
        ("function_app.py", "host.json"),
        ("azure-functions==1.26.0", "werkzeug==3.1.9", "markupsafe==3.0.4", *SERVING_PINS),
        ".python_packages/lib/site-packages",
        "x86_64",
    ),
}


@dataclass(frozen=True)
class Bundle:
    """A built package: the unpacked directory, its zip and the zip's sha256 (what names the uploaded object)."""

    cloud: str  # "gcp" | "aws" | "azure"
    directory: Path  # dist/<cloud>/ (the unpacked package)
    zip_path: Path  # dist/<cloud>.zip (byte-reproducible)
    sha256: str  # hex sha256 of the zip
    zipped_bytes: int = 0
    unzipped_bytes: int = 0

    def summary(self) -> str:
        return (
            f"{self.zip_path}: {self.zipped_bytes / MIB:.1f} MiB zipped, {self.unzipped_bytes / MIB:.1f} MiB "
            f"unzipped (aim <= {AIM_ZIPPED // MIB} / {AIM_UNZIPPED // MIB}, limit {MAX_ZIPPED // MIB} / "
            f"{MAX_UNZIPPED // MIB})\nsha256 {self.sha256}"
        )


def target_runtime(cloud: str, arch: str) -> Runtime:
    """The runtime the cloud runs the package on: CPython 3.12 on Linux, arm64 or x86_64 (Lambda), x86_64."""
    if arch not in ARCH_TO_MACHINE:
        raise BundleError(f"arch must be one of {sorted(ARCH_TO_MACHINE)}, not {arch!r}")
    return Runtime("3.12", TARGETS[cloud].machine or ARCH_TO_MACHINE[arch])


def ensure_model() -> Path:
    """artifacts/model/, trained now if it does not match the corpus and the training config.

    `python -m train` runs in its own process: infra treats the model as files, and the Pulumi program that
    calls this never loads torch itself.
    """
    command = [sys.executable, "-m", "train", "--if-stale", "--quiet", "--out", str(MODEL_DIR)]
    if subprocess.run(command, cwd=REPO_ROOT).returncode != 0:
        raise BundleError(f"training the model failed: {' '.join(command)}")
    return MODEL_DIR


def copy_model(model_dir: Path, dest: Path) -> None:
    """Copy the manifest and exactly the files it lists (nothing stray that the manifest does not vouch for)."""
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    dest.mkdir()
    for name in [*sorted(manifest["files"]), "manifest.json"]:
        if not (model_dir / name).is_file():
            raise BundleError(f"{model_dir / name}: listed in the manifest but missing; retrain with python -m train")
        shutil.copyfile(model_dir / name, dest / name)


def assemble(cloud: str, runtime: Runtime, model_dir: Path, root: Path) -> None:
    """Lay the package out in the empty directory `root`."""
    target = TARGETS[cloud]
    for name in target.adapter:
        shutil.copy(REPO_ROOT / "functions" / cloud / name, root / name)  # with its mode: a wrapper is executable
    shutil.copytree(SERVING_PACKAGE, root / "core", ignore=BUILD_LEFTOVERS)
    copy_model(model_dir, root / "model")
    if target.vendor_dir is None:
        (root / "requirements.txt").write_text("\n".join(target.requirements) + "\n", encoding="utf-8")
    else:
        install(target.requirements, runtime, root / target.vendor_dir)


def package_files(root: Path) -> list[tuple[str, Path]]:
    """(name inside the zip, path) of every file under root, sorted by name."""
    return sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())


def write_zip(root: Path, zip_path: Path) -> tuple[str, int]:
    """Zip root's files reproducibly into zip_path (atomically); return (hex sha256, total unzipped bytes)."""
    partial = zip_path.with_name(zip_path.name + ".partial")
    unzipped = 0
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in package_files(root):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so that external_attr carries the mode below
            mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16  # regular file
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            archive.writestr(info, data, compresslevel=6)  # level 9: 3x the time for 0.3% fewer bytes
    os.replace(partial, zip_path)
    return hashlib.sha256(zip_path.read_bytes()).hexdigest(), unzipped


def check_budget(zip_path: Path, zipped: int, unzipped: int) -> None:
    """Refuse a package that Lambda would refuse (the same ceiling for every cloud: none needs more)."""
    if zipped > MAX_ZIPPED or unzipped > MAX_UNZIPPED:
        try:  # dist/<cloud>/model/, just zipped
            manifest = json.loads((zip_path.with_suffix("") / "model" / "manifest.json").read_text(encoding="utf-8"))
            preset = manifest.get("train_config", {}).get("preset", "unknown")
        except (OSError, ValueError):
            preset = "unknown"
        raise BundleError(
            f"{zip_path} is {zipped / MIB:.1f} MiB zipped, {unzipped / MIB:.1f} MiB unzipped: over "
            f"the limit of {MAX_ZIPPED // MIB} MiB zipped / {MAX_UNZIPPED // MIB} MiB unzipped "
            f"(Lambda refuses it) with a model of preset {preset!r}; train a smaller preset "
            "(python -m train --preset tiny|small) or look for a dependency that does not belong on "
            "the serving path"
        )


def build(cloud: str, *, arch: str = "arm64", runtime: Runtime | None = None, dist: Path = DIST) -> Bundle:
    """Build dist/<cloud>/, dist/<cloud>.zip and dist/<cloud>.zip.sha256 for the cloud's runtime.

    `arch` only matters for aws. `runtime` overrides the target runtime (the smoke tests build for this
    interpreter and machine); `dist` the output directory.
    """
    if cloud not in TARGETS:
        raise BundleError(f"cloud must be one of {sorted(TARGETS)}, not {cloud!r}")
    runtime = runtime or target_runtime(cloud, arch)
    model_dir = ensure_model()
    dist.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cloud}-staging-", dir=dist))
    try:
        assemble(cloud, runtime, model_dir, staging)
    except BaseException:
        shutil.rmtree(staging)
        raise
    directory = dist / cloud
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    directory.chmod(0o755)
    zip_path = dist / f"{cloud}.zip"
    sha256, unzipped = write_zip(directory, zip_path)
    zipped = zip_path.stat().st_size
    check_budget(zip_path, zipped, unzipped)
    (dist / f"{cloud}.zip.sha256").write_text(f"{sha256}  {zip_path.name}\n", encoding="utf-8")
    return Bundle(cloud, directory, zip_path, sha256, zipped, unzipped)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bundle", description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("cloud", choices=sorted(TARGETS))
    parser.add_argument(
        "--arch",
        choices=sorted(ARCH_TO_MACHINE),
        default="arm64",
        help="Lambda's architecture (aws only; Cloud Run functions and Azure run x86_64)",
    )
    args = parser.parse_args(argv)
    try:
        bundle = build(args.cloud, arch=args.arch)
    except (BundleError, DependencyError) as exc:
        print(f"infra.bundle: {exc}", file=sys.stderr)
        return 1
    print(bundle.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
