"""ci.yml tests every push and pull request with exactly the command .ci/run runs, caches pip, and keeps the
quick benchmark tables as an artifact."""

from __future__ import annotations

import shlex

from workflow_files import CI_RUN, Workflow

SHELL_SETUP = ("set", "cd", "#!")


def ci_run_command() -> str:
    """The command .ci/run exists to run: its last line that is not shell set-up or a comment."""
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    commands = [line for line in lines if line and not line.startswith("#") and not line.startswith(SHELL_SETUP)]
    assert commands, f"{CI_RUN} runs nothing"
    return commands[-1]


def test_ci_runs_on_every_push_and_pull_request(by_name: dict[str, Workflow]) -> None:
    triggers = by_name["ci.yml"].on
    assert "push" in triggers and "pull_request" in triggers
    assert triggers["push"] is None and triggers["pull_request"] is None  # no branch or path filters


def test_the_test_job_runs_the_same_command_as_ci_run(by_name: dict[str, Workflow]) -> None:
    runs = [shlex.split(step["run"]) for step in by_name["ci.yml"].jobs["test"]["steps"] if "run" in step]
    assert shlex.split(ci_run_command()) in runs


def test_pip_downloads_are_cached(by_name: dict[str, Workflow]) -> None:
    setups = [
        step
        for step in by_name["ci.yml"].jobs["test"]["steps"]
        if step.get("uses", "").startswith("actions/setup-python@")
    ]
    assert len(setups) == 1
    assert setups[0]["with"]["cache"] == "pip"
    assert setups[0]["with"]["cache-dependency-path"] == "pyproject.toml"


def test_quick_benchmarks_run_and_their_tables_are_uploaded(by_name: dict[str, Workflow]) -> None:
    steps = by_name["ci.yml"].jobs["test"]["steps"]
    bench = [
        index for index, step in enumerate(steps) if shlex.split(step.get("run", "")) == ["make", "bench", "QUICK=1"]
    ]
    uploads = [index for index, step in enumerate(steps) if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(bench) == 1 and len(uploads) == 1 and bench[0] < uploads[0]
    upload = steps[uploads[0]]["with"]
    assert upload["path"].startswith("bench/results/")
    assert upload["if-no-files-found"] == "error"  # a bench that wrote no table is a failure, not a silent pass
