"""Deploying into pre-created identities and groups, so CI identities can be narrowed (docs/ci.md):
GCP `tinyllm:runtimeServiceAccount` + `tinyllm:buildServiceAccount`, Azure `tinyllm:resourceGroupName`.
Both modes run the real program under mocks; the self-managed default is what every other test in tests/infra runs."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from policy_harness import POLICY_DIR, StackResource, from_deployment

from infra.config import ConfigError, from_values
from infra.gcp import gcf_sources_condition
from infra.policy.tinyllm_rules import Resource, grants, ownership_violations, violations

ACCOUNTS = {"runtimeServiceAccount": "tinyllm-runtime", "buildServiceAccount": "tinyllm-builder"}
RUNTIME = "tinyllm-runtime@my-project.iam.gserviceaccount.com"  # the mocks' gcp:project is my-project
BUILDER = "tinyllm-builder@my-project.iam.gserviceaccount.com"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
ACCOUNT = "gcp:serviceaccount/account:Account"
PRIVATE = POLICY_DIR / "private.json"


def stack_grants(deployment):
    return [grant for r in deployment.resources for grant in grants(r.type, r.inputs)]


# -- GCP: pre-created service accounts ------------------------------------------------------------------------------


def test_gcp_default_creates_both_accounts_and_grants_the_build_account_its_project_roles(run_stack):
    deployment = run_stack("gcp")
    assert {r.inputs["accountId"] for r in deployment.of_type(ACCOUNT)} == {"tinyllm-run", "tinyllm-build"}
    assert {(g.permission, g.scope_kind) for g in stack_grants(deployment)} >= {
        ("roles/logging.logWriter", "project"),
        ("roles/storage.objectAdmin", "gcf-v2-sources-bucket"),
    }


def test_gcp_precreated_accounts_create_no_account_and_are_the_functions_identities(run_stack):
    deployment = run_stack("gcp", **ACCOUNTS)
    assert deployment.of_type(ACCOUNT) == []
    function = deployment.one(FUNCTION).inputs
    assert function["serviceConfig"]["serviceAccountEmail"] == RUNTIME
    # buildConfig.serviceAccount is the account's fully-qualified name.
    assert function["buildConfig"]["serviceAccount"] == f"projects/my-project/serviceAccounts/{BUILDER}"


def test_gcp_precreated_build_account_gets_only_roles_on_this_stacks_own_resources(run_stack):
    deployment = run_stack("gcp", **ACCOUNTS)
    found = stack_grants(deployment)
    # The project-level roles (logWriter, the conditioned gcf-v2-sources read) are granted once in docs/ci.md: a
    # project binding shared by every stack using the account would be removed by the first stack destroyed.
    assert {(g.permission, g.scope_kind) for g in found} == {
        ("roles/artifactregistry.writer", "artifact-registry-repository"),
        ("roles/storage.objectViewer", "storage-bucket"),
    }
    assert {g.principal for g in found} == {f"serviceAccount:{BUILDER}"}  # the runtime account gets nothing
    assert [v for r in deployment.resources for v in violations(r.type, r.inputs)] == []
    wait = deployment.one("time:index/sleep:Sleep").inputs
    assert set(wait["triggers"]) == {"images", "source"}


def test_gcp_precreated_accounts_may_be_emails_in_another_project(run_stack):
    runtime = "run-identity@shared-ids.iam.gserviceaccount.com"
    builder = "build-identity@shared-ids.iam.gserviceaccount.com"
    function = run_stack("gcp", runtimeServiceAccount=runtime, buildServiceAccount=builder).one(FUNCTION).inputs
    assert function["serviceConfig"]["serviceAccountEmail"] == runtime
    assert function["buildConfig"]["serviceAccount"] == f"projects/shared-ids/serviceAccounts/{builder}"


def test_the_pack_accepts_the_precreated_accounts_and_a_pr_stack_using_them(pack, run_stack):
    for prefix in ("tinyllm", "tinyllmpr12"):
        assert pack.violations(from_deployment(run_stack("gcp", namePrefix=prefix, **ACCOUNTS)), PRIVATE) == []


@pytest.mark.parametrize(
    "member",
    [
        "serviceAccount:intruder@my-project.iam.gserviceaccount.com",  # any other account
        "serviceAccount:314159265358-compute@developer.gserviceaccount.com",  # the default compute account (Editor)
    ],
)
def test_a_grant_to_any_other_account_is_still_an_ownership_violation(pack, run_stack, member):
    resources = from_deployment(run_stack("gcp", **ACCOUNTS))
    writer = next(r for r in resources if r.type == "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember")
    stolen = StackResource(
        writer.type, "stolen-writer", {**writer.inputs, "member": member}, {**writer.outputs, "member": member}
    )
    assert any("not an identity of this stack" in message for message in pack.violations([*resources, stolen], PRIVATE))
    # The same rule as a plain function: only the function's own two accounts count as this stack's.
    as_rules = [Resource(r.type, r.name, r.outputs) for r in [*resources, stolen]]
    assert [p for p in ownership_violations(as_rules) if "stolen-writer" in p] == [
        f"stolen-writer: roles/artifactregistry.writer granted to {member}, which is not an identity of this stack"
    ]


GCP = {"tinyllm:cloud": "gcp", "gcp:region": "europe-west1"}


@pytest.mark.parametrize(
    "values,message",
    [
        ({"tinyllm:runtimeServiceAccount": "tinyllm-runtime"}, "buildServiceAccount is required"),
        ({"tinyllm:buildServiceAccount": "tinyllm-builder"}, "runtimeServiceAccount is required"),
        ({"tinyllm:runtimeServiceAccount": "x", "tinyllm:buildServiceAccount": "tinyllm-builder"}, "user-managed"),
        (
            {
                "tinyllm:runtimeServiceAccount": "123-compute@developer.gserviceaccount.com",
                "tinyllm:buildServiceAccount": "tinyllm-builder",
            },
            "user-managed",
        ),
        (
            {"tinyllm:runtimeServiceAccount": "tinyllm-same", "tinyllm:buildServiceAccount": "tinyllm-same"},
            "two different accounts",
        ),
        (
            {
                "tinyllm:runtimeServiceAccount": "tinyllm-same",
                "tinyllm:buildServiceAccount": "tinyllm-same@my-project.iam.gserviceaccount.com",
            },
            "two different accounts",
        ),
    ],
)
def test_gcp_precreated_accounts_are_refused_unless_both_valid_and_distinct(values, message):
    with pytest.raises(ConfigError, match=message):
        from_values({**GCP, **values}.get)


def test_gcp_account_keys_are_refused_on_other_clouds():
    values = {"tinyllm:cloud": "aws", "aws:region": "eu-west-1", **{f"tinyllm:{k}": v for k, v in ACCOUNTS.items()}}
    with pytest.raises(ConfigError, match="GCP only"):
        from_values(values.get)


# -- Azure: an existing resource group ------------------------------------------------------------------------------


def test_azure_default_creates_its_own_resource_group(run_stack):
    deployment = run_stack("azure")
    group = deployment.one("azure-native:resources:ResourceGroup")
    assert {r.inputs["resourceGroupName"] for r in deployment.resources if "resourceGroupName" in r.inputs} == {
        group.name
    }  # the mocks name a created group after its logical name


@pytest.mark.parametrize("group", ["tinyllm", "tinyllmpr"])
def test_azure_existing_group_is_looked_up_and_holds_every_resource(run_stack, group):
    prefix = "tinyllmpr12" if group == "tinyllmpr" else "tinyllm"  # PR stacks share the group tinyllmpr
    deployment = run_stack("azure", resourceGroupName=group, namePrefix=prefix)
    assert deployment.of_type("azure-native:resources:ResourceGroup") == []
    placed = {
        r.type: r.inputs.get("resourceGroupName")
        for r in deployment.resources
        if r.type.startswith("azure-native:") and r.type != "azure-native:authorization:RoleAssignment"
    }
    assert set(placed.values()) == {group}, placed
    push = deployment.one("command:local:Command").inputs["create"]
    assert f"--resource-group {group} " in push
    assert f"--resource-group {group} " in deployment.outputs["key_command"]


def test_the_pack_accepts_a_stack_in_an_existing_group(pack, run_stack):
    assert pack.violations(from_deployment(run_stack("azure", resourceGroupName="tinyllm")), PRIVATE) == []


AZURE = {"tinyllm:cloud": "azure", "azure-native:location": "westeurope"}


@pytest.mark.parametrize("name", ["bad/name", "ends-with-a-period.", "x" * 91, "spaces are not allowed"])
def test_azure_resource_group_name_must_be_a_valid_group_name(name):
    with pytest.raises(ConfigError, match="resourceGroupName must be an Azure resource group name"):
        from_values({**AZURE, "tinyllm:resourceGroupName": name}.get)


def test_azure_resource_group_name_is_refused_on_other_clouds():
    with pytest.raises(ConfigError, match="Azure only"):
        from_values({**GCP, "tinyllm:resourceGroupName": "tinyllm"}.get)


def test_the_new_keys_are_in_the_documented_config_table():
    readme = (POLICY_DIR.parents[1] / "docs" / "deploying.md").read_text()
    table_keys = set(re.findall(r"^\| (`[^|]*`) \|", readme, re.M))
    rows = {key for cell in table_keys for key in re.findall(r"`(\w+)`", cell)}
    assert {"runtimeServiceAccount", "buildServiceAccount", "resourceGroupName"} <= rows


DOCS = POLICY_DIR.parents[1] / "docs" / "ci.md"


def test_the_documented_build_grant_condition_is_the_programs_own(tmp_path):
    # docs/ci.md grants the pre-created build account the conditioned role the program grants its own one.
    (command,) = re.findall(r"(printf '\{\"title\".*?) > gcf-sources-condition\.json", DOCS.read_text(), re.S)
    script = f'bucket="projects/_/buckets/gcf-v2-sources-314-europe-west1"; {command}'
    written = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(written) == {
        key: value for key, value in gcf_sources_condition("314", "europe-west1").items() if key != "description"
    }


def test_the_docs_grant_service_account_user_on_the_two_accounts_only():
    commands = DOCS.read_text()
    project_wide = re.findall(r"gcloud projects add-iam-policy-binding[^\n]*(?:\\\n[^\n]*)*", commands)
    assert project_wide and not [c for c in project_wide if "serviceAccountUser" in c or "serviceAccountCreator" in c]
    assert re.search(
        r'gcloud iam service-accounts add-iam-policy-binding "\$account@\$1\.iam\.gserviceaccount\.com"'
        r'[^\n]*\\\n\s*--member "serviceAccount:\$2" --role roles/iam\.serviceAccountUser',
        commands,
    )


# AWS: the permissions boundary CI's deploying roles require on every role they create (docs/ci.md).

BOUNDARY = "arn:aws:iam::123456789012:policy/tinyllm-lambda-boundary"


def test_aws_role_carries_the_configured_permissions_boundary(run_stack):
    role = run_stack("aws", permissionsBoundary=BOUNDARY).one("aws:iam/role:Role")
    assert role.inputs["permissionsBoundary"] == BOUNDARY
    assert "permissionsBoundary" not in run_stack("aws").one("aws:iam/role:Role").inputs


@pytest.mark.parametrize(
    "cloud,boundary,message",
    [
        ("aws", "tinyllm-lambda-boundary", "must be a managed policy ARN"),
        ("aws", "arn:aws:iam::123456789012:role/tinyllm", "must be a managed policy ARN"),
        ("gcp", BOUNDARY, "AWS only"),
    ],
)
def test_a_permissions_boundary_that_is_not_a_policy_arn_is_refused(cloud, boundary, message):
    values = {
        "tinyllm:cloud": cloud,
        {"aws": "aws:region", "gcp": "gcp:region"}[cloud]: "eu-west-1",
        "tinyllm:permissionsBoundary": boundary,
    }
    with pytest.raises(ConfigError, match=message):
        from_values(values.get)
