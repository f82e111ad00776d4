"""Ephemeral Azure stacks deploy into the PR stacks' own pre-created resource group, the only scope of the
pr-stacks identity's roles (docs/ci.md): the workflow's prepare step, run by bash with a stand-in `pulumi`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from workflow_files import Workflow

PR_BOUNDARY = "arn:aws:iam::123456789012:policy/tinyllmpr-boundary"


def prepare_step(by_name: dict[str, Workflow]) -> dict:
    (found,) = [
        s for s in by_name["pulumi-stack.yml"].jobs["pulumi"]["steps"] if s.get("name") == "Prepare the ephemeral stack"
    ]
    return found


def run_prepare(by_name: dict[str, Workflow], tmp_path: Path, **inputs: str) -> tuple[int, str, list[str]]:
    """Run the step in a copy of infra/'s stack files; `pulumi` records its arguments, one call per line."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    (bin_dir / "pulumi").chmod(0o755)
    (tmp_path / "Pulumi.azure.yaml").write_text("config:\n  tinyllm:cloud: azure\n")
    env = {
        "CLOUD": "azure",
        "STACK": "pr-7-azure",
        "BASE_STACK": "azure",
        "NAME_PREFIX": "tinyllmpr7",
        "GCP_PR_STACKS_PROJECT": "",
        "AZURE_PR_STACKS_RESOURCE_GROUP": "tinyllmpr",
        "AWS_PR_STACKS_PERMISSIONS_BOUNDARY": PR_BOUNDARY,
        "PULUMI_SECRETS_PROVIDER": "azurekeyvault://kv.vault.azure.net/keys/pulumi",
    } | inputs
    env["PATH"] = f"{bin_dir}:{os.environ['PATH']}"
    result = subprocess.run(
        ["bash", "-e", "-c", prepare_step(by_name)["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, result.stdout, calls.read_text().splitlines() if calls.exists() else []


def test_the_step_reads_the_group_from_its_repository_variable(by_name: dict[str, Workflow]) -> None:
    expected = "${{ vars.AZURE_PR_STACKS_RESOURCE_GROUP }}"
    assert prepare_step(by_name)["env"]["AZURE_PR_STACKS_RESOURCE_GROUP"] == expected


def test_an_ephemeral_azure_stack_is_put_in_the_pr_stacks_group(by_name, tmp_path) -> None:
    status, _, calls = run_prepare(by_name, tmp_path)
    assert status == 0
    assert "config set tinyllm:resourceGroupName tinyllmpr --stack pr-7-azure" in calls
    assert (tmp_path / "Pulumi.pr-7-azure.yaml").exists()  # started from the base stack's file


def test_an_ephemeral_azure_stack_without_the_group_variable_is_refused(by_name, tmp_path) -> None:
    status, stdout, calls = run_prepare(by_name, tmp_path, AZURE_PR_STACKS_RESOURCE_GROUP="")
    assert status == 1 and "set AZURE_PR_STACKS_RESOURCE_GROUP" in stdout
    assert not [call for call in calls if "resourceGroupName" in call]


@pytest.mark.parametrize("cloud", ["gcp", "aws"])
def test_other_clouds_get_no_resource_group(by_name, tmp_path, cloud) -> None:
    (tmp_path / f"Pulumi.{cloud}.yaml").write_text(f"config:\n  tinyllm:cloud: {cloud}\n")
    status, _, calls = run_prepare(
        by_name, tmp_path, CLOUD=cloud, STACK=f"pr-7-{cloud}", BASE_STACK=cloud, GCP_PR_STACKS_PROJECT="my-project-pr"
    )
    assert status == 0
    assert not [call for call in calls if "resourceGroupName" in call]


# The prepare step also keeps an ephemeral stack off production's key and production's invoker.

BASE_WITH_SECRETS = """secretsprovider: azurekeyvault://prod-kv.vault.azure.net/keys/pulumi
encryptedkey: c2VjcmV0LWRhdGEta2V5
config:
  azure-native:location: westeurope
  tinyllm:cloud: azure
  tinyllm:apiKey:
    secure: v1:AAAAproductionciphertext
  tinyllm:public: true
"""


def test_an_ephemeral_stack_starts_from_the_base_config_without_productions_key_or_secrets(by_name, tmp_path) -> None:
    (tmp_path / "Pulumi.azure.yaml").write_text(BASE_WITH_SECRETS)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "pulumi").chmod(0o755)
    env = {
        "CLOUD": "azure",
        "STACK": "pr-7-azure",
        "BASE_STACK": "azure",
        "NAME_PREFIX": "tinyllmpr7",
        "AZURE_PR_STACKS_RESOURCE_GROUP": "tinyllmpr",
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-e", "-c", prepare_step(by_name)["run"]], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "Pulumi.pr-7-azure.yaml").read_text()
    assert written == (
        "config:\n  azure-native:location: westeurope\n  tinyllm:cloud: azure\n  tinyllm:public: true\n"
    )  # `pulumi stack select --create --secrets-provider` then gives it the pr-stacks key and a new data key
    assert "dropped the secret tinyllm:apiKey:" in result.stderr


def test_an_ephemeral_gcp_stack_is_invoked_by_the_pr_stacks_identity_only(by_name, tmp_path) -> None:
    (tmp_path / "Pulumi.gcp.yaml").write_text(
        "config:\n  tinyllm:cloud: gcp\n"
        '  tinyllm:invokers: ["serviceAccount:tinyllm-deploy@p.iam.gserviceaccount.com"]\n'
    )
    status, _, calls = run_prepare(
        by_name,
        tmp_path,
        CLOUD="gcp",
        STACK="pr-7-gcp",
        BASE_STACK="gcp",
        GCP_PR_STACKS_PROJECT="my-project-pr",
        IDENTITY="tinyllm-pr-stacks@my-project-pr.iam.gserviceaccount.com",
    )
    assert status == 0
    (invokers,) = [call for call in calls if "tinyllm:invokers" in call]
    assert invokers == (
        'config set tinyllm:invokers ["serviceAccount:tinyllm-pr-stacks@my-project-pr.iam.gserviceaccount.com"] '
        "--stack pr-7-gcp"
    )
    assert calls.index(invokers) > calls.index("config set gcp:project my-project-pr --stack pr-7-gcp")


@pytest.mark.parametrize("boundary", [PR_BOUNDARY, ""])
def test_an_ephemeral_aws_stack_gets_the_pr_stacks_permissions_boundary(by_name, tmp_path, boundary) -> None:
    (tmp_path / "Pulumi.aws.yaml").write_text("config:\n  tinyllm:cloud: aws\n")
    status, stdout, calls = run_prepare(
        by_name, tmp_path, CLOUD="aws", STACK="pr-7-aws", BASE_STACK="aws", AWS_PR_STACKS_PERMISSIONS_BOUNDARY=boundary
    )
    if boundary:
        assert status == 0
        assert f"config set tinyllm:permissionsBoundary {PR_BOUNDARY} --stack pr-7-aws" in calls
    else:  # without it the pr-stacks role could not create the execution role: refused before anything runs
        assert status == 1 and "set AWS_PR_STACKS_PERMISSIONS_BOUNDARY" in stdout
