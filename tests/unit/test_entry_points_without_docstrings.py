"""The command-line entry points also start under `python -OO`, which strips docstrings (argparse reads them)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("module", "usage"),
    [
        ("functions.devtools", "usage: tinyllm"),
        ("bench", "usage: python -m bench"),
        ("infra.bundle", "usage: python -m infra.bundle"),
    ],
)
def test_help_works_with_docstrings_stripped(module, usage):
    out = subprocess.run([sys.executable, "-OO", "-m", module, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(usage)
