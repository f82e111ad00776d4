"""Each package, built for this interpreter and machine, serves a correct completion on its own.

The zip is unpacked into an empty directory and its real entry point runs under `python -I -S`: no
site-packages, no PYTHON* variables, nothing on sys.path but the package (and, for GCP, its requirements.txt
installed apart, as Cloud Run functions does at deploy time). Whatever the package lacks fails to import here.
The same build code makes the cloud packages; only the wheels' --platform/--python-version differ.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_packages import CLOUDS, unpack

from core.api import Request, create_app
from infra.bundle_deps import Runtime, install

DRIVER = Path(__file__).with_name("drive_package.py")
COMPLETION = {"path": "/v1/completions", "json": {"prompt": "Hello world,", "max_tokens": 12, "temperature": 0}}


def expected_text(model_dir: Path) -> str:
    """The completion this repository's core gives for COMPLETION, in this process."""
    reply = create_app(str(model_dir)).handle(
        Request.of(
            "POST", COMPLETION["path"], {"content-type": "application/json"}, json.dumps(COMPLETION["json"]).encode()
        )
    )
    assert reply.status == 200
    return json.loads(reply.read())["choices"][0]["text"]


def run_isolated(cloud: str, root: Path, extra_paths: list[Path], result: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYLLM_")}  # the model must come from root
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            str(DRIVER),
            cloud,
            str(root),
            str(result),
            json.dumps(COMPLETION),
            *map(str, extra_paths),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(result.read_text())


@pytest.mark.skipif(sys.platform != "linux", reason="the packages' wheels are manylinux ones")
@pytest.mark.parametrize("cloud", CLOUDS)
def test_unpacked_package_serves_a_completion_with_nothing_else_on_the_path(cloud, local_bundles, model_dir, tmp_path):
    root = unpack(local_bundles[cloud], tmp_path / "package")
    extra = []
    if cloud == "gcp":  # Cloud Run functions installs requirements.txt; do the same, apart from the package
        requirements = tuple((root / "requirements.txt").read_text().split())
        install(requirements, Runtime.local(), tmp_path / "gcp-deps", dependencies=True)
        extra.append(tmp_path / "gcp-deps")

    outcome = run_isolated(cloud, root, extra, tmp_path / "result.json")

    assert outcome["status"] == 200, outcome["body"]
    text = json.loads(outcome["body"])["choices"][0]["text"]
    assert text and text == expected_text(model_dir)
    assert outcome["model_dir"] == str((root / "model").resolve())
    assert outcome["torch_importable"] is False
    assert outcome["foreign_modules"] == []
