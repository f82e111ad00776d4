"""The Pulumi CLI (installed, logged in) and the stack's configuration: from `pulumi config --json` when the CLI
can read the stack, else from the committed infra/Pulumi.<stack>.yaml, so the cloud checks still run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from infra.preflight import Report, one_line

INFRA = Path(__file__).resolve().parents[1]
PULUMI_TIMEOUT_SECONDS = 60


def _pulumi(executable: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [executable, *args, "--non-interactive"],
        cwd=INFRA,
        capture_output=True,
        text=True,
        timeout=PULUMI_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def _from_cli(executable: str, stack: str, report: Report) -> dict[str, str] | None:
    """The stack's config through the CLI (which includes `pulumi config set` values); None if it cannot read it."""
    whoami = _pulumi(executable, "whoami")
    if whoami.returncode != 0:
        report.problem(
            f"the Pulumi CLI is not logged in ({one_line(whoami.stderr or whoami.stdout, 120)})",
            "run `pulumi login` (Pulumi Cloud), `pulumi login --local`, or your backend's URL",
        )
        return None
    report.good(f"Pulumi CLI logged in as {whoami.stdout.strip()}")
    shown = _pulumi(executable, "config", "--json", "--stack", stack)
    if shown.returncode != 0:
        report.problem(
            f"the Pulumi backend has no stack {stack!r} ({one_line(shown.stderr, 120)})",
            f"create it: cd infra && pulumi stack init {stack}",
        )
        return None
    # `pulumi config --json`: {"<ns>:<key>": {"value": "<string>", "secret": bool, ...}}; secrets stay hidden.
    return {
        key: entry["value"]
        for key, entry in json.loads(shown.stdout).items()
        if isinstance(entry, dict) and "value" in entry and not entry.get("secret")
    }


def _from_file(stack: str) -> dict[str, str] | None:
    """The committed stack file, values as the engine hands them to the program (JSON text for non-strings)."""
    path = INFRA / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    values = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def check(stack: str, report: Report) -> dict[str, str] | None:
    """Check the CLI; return the stack's raw config values, or None (with a problem reported) if there are none."""
    executable = shutil.which("pulumi")
    values = None
    if executable is None:
        report.problem(
            "the Pulumi CLI is not installed (`pulumi` is not on PATH)",
            "install it (https://www.pulumi.com/docs/install/), then run `pulumi login`",
        )
    else:
        values = _from_cli(executable, stack, report)
    if values is None:
        values = _from_file(stack)
        if values is None:
            report.problem(
                f"no configuration for stack {stack!r} (no infra/Pulumi.{stack}.yaml)",
                "use a committed stack (gcp, aws, azure) or create yours with `pulumi stack init`",
            )
    return values
