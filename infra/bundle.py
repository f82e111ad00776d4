"""Build the deployable package for one cloud: dist/<cloud>/ and its byte-reproducible dist/<cloud>.zip.

    python -m infra.bundle gcp|aws|azure [--arch arm64|x86_64] [--model-dir DIR]      (make bundle CLOUD=...)

The Pulumi program calls `build(cloud, arch=..., model_dir=...)` and uploads `Bundle.zip_path`, named by
`Bundle.sha256`. A package holds, and holds only:
  - the cloud's adapter where its platform looks for it (TARGETS below);
  - `core/`, the serving package, copied whole: whatever is in core/ ships, and nothing else of this repository
    does (the developer tools live in functions/devtools, see docs/architecture.md);
  - `model/`: the files the model's manifest lists, and the manifest. core.artifacts looks for `model/` beside
    `core/` first and checks every file against the manifest's sha256 when the function cold-starts;
  - the pinned runtime dependencies, as the platform wants them: a requirements.txt that Cloud Run functions
    installs at deploy time (GCP), or wheels for the target runtime vendored in the package (AWS, Azure).
The model: `--model-dir DIR` (the stack's `tinyllm:modelDir`) is baked as it is, never retrained, and must hold a
valid manifest (infra.model_info); without it, artifacts/model/, trained first when its manifest does not match
the corpus and the training config, so a fresh clone can deploy. Each cloud's documented package limits
(LIMITS) are enforced, and a refusal names the model, its packing and the limit. Same inputs, same bytes:
entries are sorted and carry a fixed timestamp and mode, so an unchanged package never makes Pulumi redeploy.
Exit status: 0 built; 2 refused (a bad model directory, a package over a limit, the default model failed to
train); 1 pip could not fetch the pinned dependencies.
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

from infra.bundle_deps import ARCH_TO_MACHINE, DependencyError, Runtime, install, model_requirements
from infra.model_info import DEFAULT_MODEL_DIR, REPO_ROOT, ModelDirError, ModelInfo, read_model

DIST = REPO_ROOT / "dist"
MODEL_DIR = DEFAULT_MODEL_DIR  # the default model (bench.runtime compares against it)
SERVING_PACKAGE = REPO_ROOT / "core"
BUILD_LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.pyc")  # what running the code writes, not the code
# The serving path's whole closure: tokenizers declares huggingface-hub, used only to download models, not here.
SERVING_PINS = ("numpy==2.4.6", "tokenizers==0.23.3")
MIB = 1024 * 1024
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


class BundleError(Exception):
    """The package cannot be built, or is too large to deploy."""


@dataclass(frozen=True)
class SizeLimits:
    """One cloud's documented limits on a package, in bytes; None where the platform documents none."""

    unzipped: int | None  # the package's contents
    direct_upload: int | None  # zipped; a larger package is uploaded to object storage first (AWS: S3)
    source: str


LIMITS = {
    # "Deployment package (.zip file archive) size: 50 MB (zipped, when uploading through the Lambda API or SDKs).
    # Upload larger files with Amazon S3. 250 MB: the maximum size of the contents of a deployment package,
    # including layers and custom runtimes (unzipped)." GetAccountSettings reports them in bytes as
    # CodeSizeZipped 52428800 and CodeSizeUnzipped 262144000 (MiB), the unit used here.
    "aws": SizeLimits(250 * MIB, 50 * MIB, "https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html"),
    # Cloud Run functions' quotas list "Max deployment size" as 100 MB compressed / 500 MB uncompressed for 1st
    # gen and "N/A" for 2nd gen (what infra/gcp.py deploys): no package limit; instance memory bounds the model.
    "gcp": SizeLimits(None, None, "https://cloud.google.com/functions/quotas"),
    # Flex Consumption deploys one package to a blob container (learn.microsoft.com/azure/azure-functions/
    # flex-consumption-plan#deployment); Microsoft's service limits (learn.microsoft.com/azure/azure-functions/
    # functions-scale#service-limits) state no package size for it, and none was found in its deployment pages:
    # no package limit is enforced; instance memory (at most 4096 MB) bounds the model.
    "azure": SizeLimits(None, None, "https://learn.microsoft.com/azure/azure-functions/functions-scale#service-limits"),
}
AIM_ZIPPED, AIM_UNZIPPED = 25 * MIB, 100 * MIB  # the default model's packages stay far below every limit


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
    zipped_bytes: int
    unzipped_bytes: int
    model: ModelInfo  # the model baked into model/

    @property
    def upload_through_storage(self) -> bool:
        """Too large to upload directly: the cloud takes it from an object the stack uploads first (AWS: S3)."""
        limit = LIMITS[self.cloud].direct_upload
        return limit is not None and self.zipped_bytes > limit

    def summary(self) -> str:
        limits = LIMITS[self.cloud]
        limit = f"limit {limits.unzipped // MIB} MiB unzipped" if limits.unzipped else "no documented size limit"
        route = " (over the direct upload limit: deployed through S3)" if self.upload_through_storage else ""
        return (
            f"{self.zip_path}: {self.zipped_bytes / MIB:.1f} MiB zipped{route}, {self.unzipped_bytes / MIB:.1f} "
            f"MiB unzipped ({limit})\n{self.model.describe()}\nsha256 {self.sha256}"
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


def model_to_bake(model_dir: Path | None) -> ModelInfo:
    """The model a package bakes: `model_dir` as it is (never retrained), else artifacts/model/ (trained if stale);
    verified against its manifest either way."""
    try:
        return read_model(ensure_model() if model_dir is None else model_dir)
    except ModelDirError as exc:
        raise BundleError(str(exc)) from None


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
    requirements = (*target.requirements, *model_requirements(model_dir))  # onnxruntime only for an ONNX model
    if target.vendor_dir is None:
        (root / "requirements.txt").write_text("\n".join(requirements) + "\n", encoding="utf-8")
    else:
        install(requirements, runtime, root / target.vendor_dir)


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


def check_limits(cloud: str, model: ModelInfo, unzipped: int) -> None:
    """Refuse a package the cloud would refuse, naming the model, its packing and the limit."""
    limits = LIMITS[cloud]
    if limits.unzipped is not None and unzipped > limits.unzipped:
        raise BundleError(
            f"the {cloud} package with {model.describe()} is {unzipped / MIB:.1f} MiB unzipped, over the limit of "
            f"{limits.unzipped // MIB} MiB unzipped ({limits.source}); {smaller_package_hint(cloud, model)}"
        )


def smaller_package_hint(cloud: str, model: ModelInfo) -> str:
    """What makes the package smaller: for an ONNX model (onnxruntime is bigger on x86_64 than on arm64) the arm64
    package or a smaller model; for a numpy one a tighter packing."""
    if model.engine == "onnx":
        arm64 = " or the arm64 package (onnxruntime is smaller there: --arch arm64)" if cloud == "aws" else ""
        return f"deploy a smaller model{arm64}"
    return "deploy a smaller model or a tighter packing (python -m train.convert --dtype fp16|int8)"


def build(
    cloud: str,
    *,
    arch: str = "arm64",
    runtime: Runtime | None = None,
    dist: Path = DIST,
    model_dir: Path | None = None,
) -> Bundle:
    """Build dist/<cloud>/, dist/<cloud>.zip and dist/<cloud>.zip.sha256 for the cloud's runtime.

    `arch` only matters for aws. `runtime` overrides the target runtime (the smoke tests build for this
    interpreter and machine); `dist` the output directory; `model_dir` the model to bake (default: artifacts/model/,
    trained if stale). A package over the cloud's limits is refused before anything is written to `dist`.
    """
    if cloud not in TARGETS:
        raise BundleError(f"cloud must be one of {sorted(TARGETS)}, not {cloud!r}")
    runtime = runtime or target_runtime(cloud, arch)
    model = model_to_bake(model_dir)
    check_limits(cloud, model, model.file_bytes)  # the model alone may pass the limit: refused before any copy
    dist.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cloud}-staging-", dir=dist))
    try:
        assemble(cloud, runtime, model.directory, staging)
        check_limits(cloud, model, sum(path.stat().st_size for _, path in package_files(staging)))
    except BaseException:
        shutil.rmtree(staging)
        raise
    directory = dist / cloud
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    directory.chmod(0o755)
    zip_path = dist / f"{cloud}.zip"
    sha256, unzipped = write_zip(directory, zip_path)
    (dist / f"{cloud}.zip.sha256").write_text(f"{sha256}  {zip_path.name}\n", encoding="utf-8")
    return Bundle(cloud, directory, zip_path, sha256, zip_path.stat().st_size, unzipped, model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.bundle", description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("cloud", choices=sorted(TARGETS))
    parser.add_argument(
        "--arch",
        choices=sorted(ARCH_TO_MACHINE),
        default="arm64",
        help="Lambda's architecture (aws only; Cloud Run functions and Azure run x86_64)",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=None,
        help="the model directory to bake, as it is (default: artifacts/model, trained first if stale)",
    )
    args = parser.parse_args(argv)
    try:
        bundle = build(args.cloud, arch=args.arch, model_dir=args.model_dir)
    except BundleError as exc:
        print(f"infra.bundle: {exc}", file=sys.stderr)
        return 2
    except DependencyError as exc:
        print(f"infra.bundle: {exc}", file=sys.stderr)
        return 1
    print(bundle.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
