"""deploy.yml and the pulumi-stack.yml it calls: preview on pull requests, up and smoke on main, ephemeral
pr-<number>-<cloud> stacks behind a label, and only the clouds whose repository variables are set."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from workflow_files import DOCS, Workflow

CLOUDS = ("gcp", "aws", "azure")
VARIABLE = re.compile(r"vars\.([A-Z][A-Z0-9_]*)")
PR_STACK = "pr-${{ github.event.pull_request.number }}-${{ matrix.cloud }}"


def run_cloud_picker(
    deploy: Workflow, tmp_path: Path, configured: set[str], with_pr_stacks: set[str] = frozenset()
) -> tuple[list[str], list[str]]:
    """Run the `clouds` job's script as the runner would, with each cloud's 'all variables set' flags."""
    step = deploy.jobs["clouds"]["steps"][0]
    output = tmp_path / "github_output"
    env = {name.upper(): str(name in configured).lower() for name in CLOUDS}
    env |= {f"{name.upper()}_PR_STACKS": str(name in with_pr_stacks).lower() for name in CLOUDS}
    subprocess.run(
        ["bash", "-e", "-c", step["run"]], env={**env, "GITHUB_OUTPUT": str(output)}, check=True, capture_output=True
    )
    found = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert set(found) == {"clouds", "pr-clouds"}
    return json.loads(found["clouds"]), json.loads(found["pr-clouds"])


@pytest.mark.parametrize("configured", [set(), {"aws"}, {"gcp", "azure"}, set(CLOUDS)])
def test_only_configured_clouds_enter_the_matrix(
    by_name: dict[str, Workflow], tmp_path: Path, configured: set[str]
) -> None:
    clouds, pr_clouds = run_cloud_picker(by_name["deploy.yml"], tmp_path, configured, with_pr_stacks={"aws"})
    assert clouds == [cloud for cloud in CLOUDS if cloud in configured]
    assert pr_clouds == (["aws"] if "aws" in configured else [])  # a PR stack also needs its cloud configured


def variables_by_role(stack_workflow: Workflow) -> dict[str, set[str]]:
    """The repository variables pulumi-stack.yml reads, split into those of PR stacks and all the others."""
    used = set(VARIABLE.findall(stack_workflow.text))
    pr_stacks = {name for name in used if "_PR_STACKS_" in name}
    return {"pr-stacks": pr_stacks, "required": used - pr_stacks}


def test_a_cloud_counts_as_configured_only_with_every_variable_its_deployment_needs(
    by_name: dict[str, Workflow],
) -> None:
    picker_env = by_name["deploy.yml"].jobs["clouds"]["steps"][0]["env"]
    needed = variables_by_role(by_name["pulumi-stack.yml"])
    for cloud in CLOUDS:
        prefix = f"{cloud.upper()}_"
        required = {name for name in needed["required"] if name.startswith(prefix)}
        assert required and required == set(VARIABLE.findall(picker_env[cloud.upper()]))
        pr_stacks = {name for name in needed["pr-stacks"] if name.startswith(prefix)}
        assert pr_stacks and pr_stacks == set(VARIABLE.findall(picker_env[f"{cloud.upper()}_PR_STACKS"]))


def test_every_repository_variable_is_documented(workflows: list[Workflow]) -> None:
    documented = DOCS.read_text(encoding="utf-8")
    used = {name for workflow in workflows for name in VARIABLE.findall(workflow.text)}
    assert used and {name for name in used if f"`{name}`" not in documented} == set()


def matrix_jobs_calling_the_stack_workflow(deploy: Workflow) -> dict[str, dict]:
    jobs = {job_id: job for job_id, job in deploy.jobs.items() if job.get("uses", "").endswith("/pulumi-stack.yml")}
    for job_id, job in jobs.items():
        output = "pr-clouds" if job["with"]["environment"] == "pr-stacks" else "clouds"
        assert job["needs"] == "clouds"
        assert job["strategy"]["matrix"]["cloud"] == f"${{{{ fromJSON(needs.clouds.outputs.{output}) }}}}", job_id
        assert f"needs.clouds.outputs.{output} != '[]'" in job["if"]  # an empty matrix is an error, not a skip
    return jobs


def test_pull_requests_preview_with_the_diff_as_a_comment(by_name: dict[str, Workflow]) -> None:
    preview = matrix_jobs_calling_the_stack_workflow(by_name["deploy.yml"])["preview"]
    assert "github.event_name == 'pull_request'" in preview["if"]
    assert preview["with"] | {"cloud": None} == {
        "cloud": None,
        "stack": "${{ matrix.cloud }}",
        "command": "preview",
        "environment": "preview",
        "comment-on-pr": True,
    }


def test_main_deploys_and_the_stack_workflow_smoke_tests_after_up(by_name: dict[str, Workflow]) -> None:
    deploy = by_name["deploy.yml"]
    assert deploy.on["push"] == {"branches": ["main"]}
    job = matrix_jobs_calling_the_stack_workflow(deploy)["deploy"]
    assert "github.ref == 'refs/heads/main'" in job["if"]
    assert (job["with"]["command"], job["with"]["environment"]) == ("up", "production")
    steps = by_name["pulumi-stack.yml"].jobs["pulumi"]["steps"]
    names = [step.get("id") or step.get("name") for step in steps]
    smoke = next(step for step in steps if "make smoke" in step.get("run", ""))
    assert names.index("up") < steps.index(smoke) and smoke["if"] == "inputs.command == 'up'"


def test_labelled_pull_requests_get_an_ephemeral_stack_removed_on_close(by_name: dict[str, Workflow]) -> None:
    deploy = by_name["deploy.yml"]
    assert {"labeled", "closed"} <= set(deploy.on["pull_request"]["types"])
    jobs = matrix_jobs_calling_the_stack_workflow(deploy)
    up, down = jobs["pr-stack-up"], jobs["pr-stack-down"]
    for job in (up, down):
        assert "'pr-stack'" in job["if"]
        assert (job["with"]["stack"], job["with"]["base-stack"]) == (PR_STACK, "${{ matrix.cloud }}")
        assert job["with"]["comment-url"] is True
    assert up["with"]["command"] == "up" and "github.event.label.name == 'pr-stack'" in up["if"]
    assert down["with"]["command"] == "destroy" and "github.event.action == 'closed'" in down["if"]
    assert up["with"]["name-prefix"] == down["with"]["name-prefix"]


def test_destroying_an_ephemeral_stack_also_removes_it(by_name: dict[str, Workflow]) -> None:
    pulumi = next(step for step in by_name["pulumi-stack.yml"].jobs["pulumi"]["steps"] if step.get("id") == "pulumi")
    assert pulumi["with"]["remove"] == "${{ inputs.command == 'destroy' && inputs.base-stack != '' }}"
    assert pulumi["with"]["work-dir"] == "infra"


def test_fork_pull_requests_never_reach_a_cloud_job(by_name: dict[str, Workflow]) -> None:
    jobs = matrix_jobs_calling_the_stack_workflow(by_name["deploy.yml"])
    for job_id, job in jobs.items():
        if "pull_request" in job["if"]:
            assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"], job_id


def test_deployments_are_serialised_and_never_cancelled_halfway(by_name: dict[str, Workflow]) -> None:
    assert by_name["deploy.yml"].data["concurrency"]["cancel-in-progress"] is False
