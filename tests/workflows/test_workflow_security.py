"""Security rules every workflow follows: no long-lived cloud secrets, declared and minimal permissions
(`id-token: write` only where an OIDC login happens), and every third-party action pinned to a full commit SHA.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from workflow_files import ROOT, Workflow, all_workflows, load

# Static credentials for the clouds (and for Pulumi, whose state lives in the cloud's own bucket instead).
LONG_LIVED_SECRET_NAMES = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_CREDENTIALS",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GCP_SA_KEY",
    "GCP_CREDENTIALS",
    "AZURE_CREDENTIALS",
    "AZURE_CLIENT_SECRET",
    "ARM_CLIENT_SECRET",
    "ARM_ACCESS_KEY",
    "AZURE_STORAGE_KEY",
    "PULUMI_ACCESS_TOKEN",
    "PULUMI_CONFIG_PASSPHRASE",
}
# Login-action inputs that only exist to pass such a key.
STATIC_KEY_INPUTS = {"aws-access-key-id", "aws-secret-access-key", "credentials_json", "creds", "client-secret"}
OIDC_LOGIN_ACTIONS = {"google-github-actions/auth", "aws-actions/configure-aws-credentials", "azure/login"}
SECRET_REFERENCE = re.compile(r"secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[)")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
TAG_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\s*$")


def walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair anywhere in a parsed workflow."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def long_lived_secrets(workflow: Workflow) -> set[str]:
    """Names of secrets (other than the per-run GITHUB_TOKEN) and static-key inputs or variables it uses."""
    found = {match.group(1) or "secrets[...]" for match in SECRET_REFERENCE.finditer(workflow.text)}
    found.discard("GITHUB_TOKEN")
    found |= {str(key) for key, _ in walk(workflow.data) if key in LONG_LIVED_SECRET_NAMES | STATIC_KEY_INPUTS}
    return found


def action_references(workflow: Workflow) -> list[str]:
    """Every `uses:` value: steps' actions and jobs' reusable workflows."""
    return [value for key, value in walk(workflow.data) if key == "uses"]


def permissions_of(job: dict[str, Any]) -> dict[str, str]:
    permissions = job.get("permissions", {})
    assert isinstance(permissions, dict), "permissions are listed per scope, never read-all/write-all"
    return permissions


def logs_in_with_oidc(job: dict[str, Any]) -> bool:
    """A step uses an OIDC login action, or the job calls a workflow of this repository whose jobs do."""
    called = job.get("uses", "")
    if called.startswith("./"):
        return any(logs_in_with_oidc(inner) for inner in load(ROOT / called).jobs.values())
    return any(step.get("uses", "").split("@")[0] in OIDC_LOGIN_ACTIONS for step in job.get("steps", []))


def all_jobs() -> list[tuple[Workflow, str, dict[str, Any]]]:
    """Jobs whose permissions are their own: a called workflow's job that declares none is checked through
    its callers (test_permissions_are_declared_for_every_job makes sure they declare them)."""
    return [
        (workflow, job_id, job)
        for workflow in all_workflows()
        for job_id, job in workflow.jobs.items()
        if "permissions" in job or not workflow.is_reusable
    ]


def test_the_secret_scan_finds_static_keys() -> None:
    # The scan below is only worth something if it can fail.
    planted = Workflow(
        path=None,
        data={"jobs": {"a": {"steps": [{"with": {"aws-access-key-id": "x"}}]}}},  # type: ignore[arg-type]
        text="run: echo ${{ secrets.AWS_SECRET_ACCESS_KEY }} ${{ secrets.GITHUB_TOKEN }}",
    )
    assert long_lived_secrets(planted) == {"aws-access-key-id", "AWS_SECRET_ACCESS_KEY"}


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda workflow: workflow.name)
def test_no_long_lived_secrets(workflow: Workflow) -> None:
    assert long_lived_secrets(workflow) == set()


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda workflow: workflow.name)
def test_permissions_are_declared_for_every_job(workflow: Workflow, workflows: list[Workflow]) -> None:
    if "permissions" in workflow.data:
        return
    for job_id, job in workflow.jobs.items():
        if "permissions" in job:
            continue
        # A called workflow's job without its own block inherits the calling job's: that one must declare it.
        callers = workflow.called_by(workflows) if workflow.is_reusable else []
        assert callers, f"{workflow.name}: job {job_id} has no permissions and nothing declares them for it"
        for caller, caller_job_id, caller_job in callers:
            assert "permissions" in caller_job, f"{caller.name}: {caller_job_id} calls {workflow.name} undeclared"


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda workflow: workflow.name)
def test_workflow_level_permissions_grant_at_most_read(workflow: Workflow) -> None:
    granted = workflow.data.get("permissions", {})
    assert isinstance(granted, dict)
    assert set(granted.items()) <= {("contents", "read")}


@pytest.mark.parametrize("job_ref", all_jobs(), ids=lambda ref: f"{ref[0].name}:{ref[1]}")
def test_id_token_write_exactly_where_an_oidc_login_happens(job_ref: tuple[Workflow, str, dict[str, Any]]) -> None:
    _, _, job = job_ref
    asks_for_token = permissions_of(job).get("id-token") == "write"
    assert asks_for_token == logs_in_with_oidc(job)


@pytest.mark.parametrize("job_ref", all_jobs(), ids=lambda ref: f"{ref[0].name}:{ref[1]}")
def test_write_scopes_are_only_the_oidc_token_and_pr_comments(job_ref: tuple[Workflow, str, dict[str, Any]]) -> None:
    _, _, job = job_ref
    comments = any(job.get("with", {}).get(flag) is True for flag in ("comment-on-pr", "comment-url"))
    writes = {scope for scope, level in permissions_of(job).items() if level == "write"}
    assert writes <= {"id-token"} | ({"pull-requests"} if comments else set())
    assert ("pull-requests" in writes) == comments


@pytest.mark.parametrize("workflow", all_workflows(), ids=lambda workflow: workflow.name)
def test_third_party_actions_are_pinned_to_a_full_commit_sha(workflow: Workflow) -> None:
    for reference in action_references(workflow):
        if reference.startswith("./"):
            continue  # this repository's own reusable workflow, versioned with the caller
        assert PINNED.match(reference), f"{workflow.name}: {reference} is not pinned to a 40-hex commit SHA"
        lines = [line for line in workflow.text.splitlines() if reference in line]
        assert lines and all(TAG_COMMENT.search(line) for line in lines), f"{reference} lacks its # vX.Y.Z tag"


def test_each_action_is_pinned_to_one_sha_everywhere(workflows: list[Workflow]) -> None:
    pins: dict[str, set[str]] = {}
    for workflow in workflows:
        for reference in action_references(workflow):
            if not reference.startswith("./"):
                action, sha = reference.split("@")
                pins.setdefault(action, set()).add(sha)
    assert pins and {action: shas for action, shas in pins.items() if len(shas) > 1} == {}


def test_checkout_never_leaves_the_token_on_disk(workflows: list[Workflow]) -> None:
    checkouts = [
        step
        for workflow in workflows
        for step in workflow.steps()
        if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts and all(step.get("with", {}).get("persist-credentials") is False for step in checkouts)
