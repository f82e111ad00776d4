"""Who each deploy job is, and what it runs: one identity per GitHub environment (preview, pr-stacks,
production) with no fallback between them, the policy pack on every preview and up, and a GCP smoke call with an
ID token minted for the function's URL.

The step scripts are run with bash as the runner would, on stand-in inputs; nothing here calls a cloud.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_files import DOCS, Workflow

CLOUDS = ("gcp", "aws", "azure")
ENVIRONMENTS = ("preview", "pr-stacks", "production")
# `inputs.cloud == 'gcp' && inputs.environment == 'preview' && vars.GCP_PREVIEW_SERVICE_ACCOUNT`
IDENTITY_CASE = re.compile(r"inputs\.cloud == '(\w+)' && inputs\.environment == '([\w-]+)' && vars\.(\w+)")


def pulumi_job(by_name: dict[str, Workflow]) -> dict:
    return by_name["pulumi-stack.yml"].jobs["pulumi"]


def step(by_name: dict[str, Workflow], *, name: str | None = None, step_id: str | None = None) -> dict:
    steps = pulumi_job(by_name)["steps"]
    found = [s for s in steps if (name and s.get("name") == name) or (step_id and s.get("id") == step_id)]
    assert len(found) == 1, (name, step_id)
    return found[0]


def identity_variables(by_name: dict[str, Workflow]) -> dict[tuple[str, str], str]:
    """(cloud, environment) -> the repository variable naming the identity that job logs in as."""
    expression = pulumi_job(by_name)["env"]["IDENTITY"]
    cases = IDENTITY_CASE.findall(expression)
    mapping = {(cloud, environment): variable for cloud, environment, variable in cases}
    assert len(mapping) == len(cases), "a (cloud, environment) appears twice"
    assert expression.rstrip().endswith("|| '' }}"), "no identity may be a fallback for another"
    return mapping


def test_every_environment_of_every_cloud_has_its_own_identity(by_name: dict[str, Workflow]) -> None:
    mapping = identity_variables(by_name)
    assert set(mapping) == {(cloud, environment) for cloud in CLOUDS for environment in ENVIRONMENTS}
    for cloud in CLOUDS:
        names = [mapping[cloud, environment] for environment in ENVIRONMENTS]
        assert len(set(names)) == 3, f"{cloud}: preview, pr-stacks and production must be three identities"
        assert all(name.startswith(f"{cloud.upper()}_") for name in names)


def test_pr_stacks_use_a_different_identity_from_production(by_name: dict[str, Workflow]) -> None:
    mapping = identity_variables(by_name)
    for cloud in CLOUDS:
        assert mapping[cloud, "pr-stacks"] != mapping[cloud, "production"]
        assert "_PR_STACKS_" in mapping[cloud, "pr-stacks"]


def test_the_preview_identity_is_required_for_a_cloud_to_be_configured(by_name: dict[str, Workflow]) -> None:
    # A preview runs in environment `preview`, whose OIDC subject only the preview identity trusts: a cloud
    # without one is not configured at all (rather than previewing with an identity that cannot log in).
    picker = by_name["deploy.yml"].jobs["clouds"]["steps"][0]["env"]
    mapping = identity_variables(by_name)
    for cloud in CLOUDS:
        assert f"vars.{mapping[cloud, 'preview']} != ''" in picker[cloud.upper()]
        assert f"vars.{mapping[cloud, 'production']} != ''" in picker[cloud.upper()]


def test_every_login_uses_the_identity_picked_for_the_environment(by_name: dict[str, Workflow]) -> None:
    logins = {
        "google-github-actions/auth": "service_account",
        "aws-actions/configure-aws-credentials": "role-to-assume",
        "azure/login": "client-id",
    }
    used = [(s["uses"].split("@")[0], s["with"]) for s in pulumi_job(by_name)["steps"] if "uses" in s]
    checked = 0
    for action, inputs in used:
        if action in logins:
            assert inputs[logins[action]] == "${{ env.IDENTITY }}", action
            checked += 1
    assert checked == 4  # three logins and the GCP ID-token step


def run_check(by_name: dict[str, Workflow], tmp_path: Path, **inputs: str) -> subprocess.CompletedProcess[str]:
    script = step(by_name, name="Check the inputs and pick the identity")["run"]
    env = {
        "CLOUD": "gcp",
        "COMMAND": "up",
        "ENVIRONMENT": "production",
        "STACK": "gcp",
        "BASE_STACK": "",
        "NAME_PREFIX": "",
        "IDENTITY": "deploy@p.iam.gserviceaccount.com",
    } | inputs
    env |= {"GITHUB_ENV": str(tmp_path / "github_env"), "PATH": os.environ["PATH"]}
    return subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False)


PR_STACK = {
    "ENVIRONMENT": "pr-stacks",
    "STACK": "pr-7-aws",
    "CLOUD": "aws",
    "BASE_STACK": "aws",
    "NAME_PREFIX": "tinyllmpr7",
    "IDENTITY": "arn:aws:iam::1:role/tinyllm-pr-stacks",
}


@pytest.mark.parametrize(
    "inputs",
    [
        {"ENVIRONMENT": "preview", "COMMAND": "preview", "IDENTITY": "preview@p.iam.gserviceaccount.com"},
        {"ENVIRONMENT": "production", "COMMAND": "up"},
        PR_STACK,
        PR_STACK | {"COMMAND": "destroy"},
    ],
)
def test_the_check_step_accepts_each_documented_job(by_name, tmp_path, inputs) -> None:
    result = run_check(by_name, tmp_path, **inputs)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "inputs,message",
    [
        ({"ENVIRONMENT": "preview", "COMMAND": "up"}, "not allowed in environment 'preview'"),
        ({"ENVIRONMENT": "production", "COMMAND": "destroy"}, "not allowed in environment 'production'"),
        ({"ENVIRONMENT": "production", "STACK": "pr-7-gcp", "BASE_STACK": "gcp"}, "only operates on the committed"),
        (PR_STACK | {"NAME_PREFIX": "tinyllm"}, "tinyllmpr<number>"),  # production's names from a PR stack
        (PR_STACK | {"STACK": "aws"}, "tinyllmpr<number>"),
        ({"IDENTITY": ""}, "no production identity is configured for gcp"),
    ],
)
def test_the_check_step_refuses_a_job_outside_its_environment(by_name, tmp_path, inputs, message) -> None:
    result = run_check(by_name, tmp_path, **inputs)
    assert result.returncode == 1 and message in result.stdout, result.stdout


def test_azure_gets_its_client_id_from_the_picked_identity(by_name, tmp_path) -> None:
    result = run_check(by_name, tmp_path, CLOUD="azure", STACK="azure", IDENTITY="00000000-client")
    assert result.returncode == 0, result.stdout
    assert (tmp_path / "github_env").read_text() == "ARM_CLIENT_ID=00000000-client\n"


def test_ephemeral_gcp_stacks_are_deployed_to_the_pr_stacks_project(by_name: dict[str, Workflow]) -> None:
    prepare = step(by_name, name="Prepare the ephemeral stack")
    assert prepare["env"]["GCP_PR_STACKS_PROJECT"] == "${{ vars.GCP_PR_STACKS_PROJECT }}"
    assert 'pulumi config set gcp:project "$GCP_PR_STACKS_PROJECT"' in prepare["run"]


# The policy pack.


def test_the_policy_pack_runs_on_preview_and_up_with_its_configuration(by_name: dict[str, Workflow]) -> None:
    pulumi = step(by_name, step_id="pulumi")  # preview and destroy
    assert pulumi["uses"].startswith("pulumi/actions@") and pulumi["if"] == "inputs.command != 'up'"
    assert pulumi["with"]["policyPacks"] == (
        "${{ inputs.command != 'destroy' && format('{0}/infra/policy', github.workspace) || '' }}"
    )
    assert pulumi["with"]["policyPackConfigs"] == "${{ steps.policy.outputs.config }}"
    up = step(by_name, step_id="up")
    assert up["if"] == "inputs.command == 'up'"
    assert up["env"]["POLICY_CONFIG"] == "${{ steps.policy.outputs.config }}"
    assert '--policy-pack "$GITHUB_WORKSPACE/infra/policy" --policy-pack-config "$POLICY_CONFIG"' in up["run"]
    policy = step(by_name, step_id="policy")
    assert policy["if"] == "inputs.command != 'destroy'"
    steps = pulumi_job(by_name)["steps"]
    assert steps.index(policy) < steps.index(pulumi) and steps.index(policy) < steps.index(up)


def test_up_runs_what_make_deploy_runs_and_exports_the_url(by_name: dict[str, Workflow], tmp_path: Path) -> None:
    """The step's script, run by bash with a stand-in `pulumi` (the real infra.deploy in between)."""
    (tmp_path / "bin").mkdir()
    calls = tmp_path / "calls"
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1 $2" = "stack output" ] && echo https://f.example\nexit 0\n'
    )
    pulumi.chmod(0o755)
    env = {
        "STACK": "gcp",
        "POLICY_CONFIG": "/w/infra/policy/private.json",
        "GITHUB_WORKSPACE": "/w",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        ["bash", "-e", "-c", step(by_name, step_id="up")["run"]],
        cwd=DOCS.parents[1],  # the checkout, whose .venv has the project installed (as the workflow's does)
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    up, output = calls.read_text().splitlines()
    assert up.startswith("up --stack gcp --event-log ")  # infra.deploy, the retry wrapper of `make deploy`
    assert up.endswith(
        "--yes --non-interactive --diff --policy-pack /w/infra/policy --policy-pack-config /w/infra/policy/private.json"
    )
    assert output == "stack output url --stack gcp --cwd infra"
    assert (tmp_path / "out").read_text() == "url=https://f.example\n"


def test_every_deploy_runs_the_preflight_before_pulumi_up(by_name: dict[str, Workflow]) -> None:
    preflight = step(by_name, name="Preflight")
    assert preflight["if"] == "inputs.command == 'up'"  # production and PR stacks alike
    assert preflight["run"] == '.venv/bin/python -m infra.preflight "$STACK"'  # what `make preflight` runs
    steps = pulumi_job(by_name)["steps"]
    logins = [i for i, s in enumerate(steps) if s.get("name", "").startswith("Log in to")]
    prepare = steps.index(step(by_name, name="Prepare the ephemeral stack"))
    assert max(logins) < steps.index(preflight) and prepare < steps.index(preflight)
    assert steps.index(preflight) < steps.index(step(by_name, step_id="up"))
    # The same module `make preflight` runs.
    makefile = (DOCS.parents[1] / "Makefile").read_text()
    assert "\npreflight: install\n\t$(BIN)/python -m infra.preflight $(STACK)\n" in makefile


def run_policy_step(by_name, tmp_path: Path, stack_file: str | None) -> subprocess.CompletedProcess[str]:
    infra = tmp_path / "infra"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    infra.mkdir()
    if stack_file is not None:
        (infra / "Pulumi.gcp.yaml").write_text(stack_file)
    env = {"STACK": "gcp", "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_WORKSPACE": "/w", "PATH": os.environ["PATH"]}
    return subprocess.run(
        ["bash", "-e", "-c", step(by_name, step_id="policy")["run"]],
        cwd=infra,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "stack_file,config",
    [
        ("config:\n  tinyllm:cloud: gcp\n  tinyllm:public: true\n", "public.json"),
        ("config:\n  tinyllm:cloud: gcp\n  tinyllm:public: false\n", "private.json"),
        ("config:\n  tinyllm:cloud: gcp\n", "private.json"),  # the program's default is private
    ],
)
def test_only_a_public_stack_runs_the_pack_with_allow_public(by_name, tmp_path, stack_file, config) -> None:
    result = run_policy_step(by_name, tmp_path, stack_file)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_text() == f"config=/w/infra/policy/{config}\n"


@pytest.mark.parametrize("stack_file", ["config:\n  tinyllm:public: maybe\n", None])
def test_the_policy_step_fails_on_an_unreadable_public_setting(by_name, tmp_path, stack_file) -> None:
    assert run_policy_step(by_name, tmp_path, stack_file).returncode != 0


def test_both_policy_configurations_exist_and_differ_only_in_allow_public() -> None:
    import json

    policy = DOCS.parents[1] / "infra" / "policy"
    configs = {name: json.loads((policy / name).read_text()) for name in ("public.json", "private.json")}
    assert configs["public.json"] == {"tinyllm-least-privilege": {"allowPublic": True}}
    assert configs["private.json"] == {"tinyllm-least-privilege": {"allowPublic": False}}


# The GCP smoke call.


def test_gcp_smoke_gets_an_id_token_with_the_function_url_as_audience(by_name: dict[str, Workflow]) -> None:
    mint = step(by_name, step_id="id-token")
    assert mint["uses"].startswith("google-github-actions/auth@")
    assert mint["if"] == "inputs.command == 'up' && inputs.cloud == 'gcp'"
    assert mint["with"]["token_format"] == "id_token"
    assert mint["with"]["id_token_audience"] == "${{ steps.up.outputs.url }}"
    smoke = step(by_name, name="Smoke-test the deployed URL")
    assert smoke["env"]["TINYLLM_ID_TOKEN"] == "${{ steps.id-token.outputs.id_token }}"
    steps = pulumi_job(by_name)["steps"]
    assert steps.index(step(by_name, step_id="up")) < steps.index(mint) < steps.index(smoke)


# The documented set-up.


def code_blocks(markdown: str) -> str:
    return "\n".join(markdown.split("```")[1::2])


def test_docs_set_up_three_identities_per_cloud_each_trusting_its_environment() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for title in ("GCP", "AWS", "Azure"):
        section = text.split(f"## {title}:", 1)[1].split("\n## ", 1)[0]
        commands = code_blocks(section)
        assert "environment:" in commands, title  # the OIDC subject repo:<owner>/<repo>:environment:<name>
        for environment in ENVIRONMENTS:
            assert re.search(rf"\b{environment}\b", commands), (title, environment)


def test_docs_make_production_require_a_reviewer_and_main_only() -> None:
    commands = code_blocks(DOCS.read_text(encoding="utf-8"))
    assert "environments/production" in commands and "reviewers" in commands
    assert "environments/production/deployment-branch-policies" in commands and "name=main" in commands


def test_docs_name_no_prefix_pattern_that_pr_stacks_would_also_match() -> None:
    # `tinyllm*` matches `tinyllmpr*` too: production is narrowed to its exact names.
    commands = code_blocks(DOCS.read_text(encoding="utf-8"))
    assert "tinyllm*" not in commands.replace("tinyllmpr*", "")
