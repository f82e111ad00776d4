"""The repository's GitHub Actions workflows as objects the tests can read: parsed YAML plus the raw text.

YAML 1.1 reads the bare key `on:` as the boolean True, so `Workflow.on` looks the triggers up under both.
A job either runs steps or calls a reusable workflow (`uses:` at job level); `Workflow.called_by` finds the
jobs that call a given workflow, because a called workflow's jobs inherit the calling job's permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CI_RUN = ROOT / ".ci" / "run"
DOCS = ROOT / "docs" / "ci.md"


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def on(self) -> dict[str, Any]:
        triggers = self.data.get("on", self.data.get(True))
        if isinstance(triggers, str):
            return {triggers: None}
        if isinstance(triggers, list):
            return dict.fromkeys(triggers)
        return triggers or {}

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.data["jobs"]

    @property
    def is_reusable(self) -> bool:
        return "workflow_call" in self.on

    def steps(self) -> list[dict[str, Any]]:
        return [step for job in self.jobs.values() for step in job.get("steps", [])]

    def called_by(self, workflows: list[Workflow]) -> list[tuple[Workflow, str, dict[str, Any]]]:
        """Every (caller workflow, job id, job) whose job-level `uses:` names this workflow."""
        target = f"./.github/workflows/{self.name}"
        return [
            (caller, job_id, job)
            for caller in workflows
            for job_id, job in caller.jobs.items()
            if job.get("uses") == target
        ]


def load(path: Path) -> Workflow:
    text = path.read_text(encoding="utf-8")
    return Workflow(path=path, text=text, data=yaml.safe_load(text))


def all_workflows() -> list[Workflow]:
    found = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert found, f"no workflows under {WORKFLOWS}"
    return [load(path) for path in found]
