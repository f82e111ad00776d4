"""Fixtures for the GitHub Actions workflow tests: every workflow under .github/workflows, loaded once."""

from __future__ import annotations

import pytest
from workflow_files import Workflow, all_workflows


@pytest.fixture(scope="session")
def workflows() -> list[Workflow]:
    return all_workflows()


@pytest.fixture(scope="session")
def by_name(workflows: list[Workflow]) -> dict[str, Workflow]:
    return {workflow.name: workflow for workflow in workflows}
