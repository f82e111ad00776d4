"""Every physical name the program gives a resource is the one `infra.naming.Names` derives from the stack's prefix:
one place decides names, and the preflight and the program cannot disagree about which Lambda they mean."""

from __future__ import annotations

import pytest
from infra_mocks import SUBSCRIPTION

from infra.naming import Names

PREFIX = "tinyllmpr42"
NAMES = Names(PREFIX)


def physical_names(deployment) -> dict[tuple[str, str], str]:
    """(type, input key) -> value, for every input that names a resource in its cloud."""
    keys = {
        "aws:lambda/function:Function": "name",
        "aws:cloudwatch/logGroup:LogGroup": "name",
        "gcp:cloudfunctionsv2/function:Function": "name",
        "gcp:artifactregistry/repository:Repository": "repositoryId",
        "gcp:storage/bucketObject:BucketObject": "name",
        "azure-native:storage:StorageAccount": "accountName",
    }
    found = {}
    for resource in deployment.resources:
        if resource.type in keys:
            found[resource.type, keys[resource.type]] = resource.inputs[keys[resource.type]]
        if resource.type == "gcp:serviceaccount/account:Account":
            found[resource.type, resource.name] = resource.inputs["accountId"]
        if resource.type == "azure-native:authorization:RoleAssignment":
            found[resource.type, resource.name] = resource.inputs["roleAssignmentName"]
    return found


def test_aws_names_come_from_the_prefix(run_stack):
    deployment = run_stack("aws", namePrefix=PREFIX)
    assert physical_names(deployment) == {
        ("aws:lambda/function:Function", "name"): NAMES.lambda_function,
        ("aws:cloudwatch/logGroup:LogGroup", "name"): NAMES.lambda_log_group,
    }
    assert NAMES.lambda_log_group == f"/aws/lambda/{PREFIX}"  # the group Lambda writes to unless told otherwise


def test_gcp_names_come_from_the_prefix(run_stack):
    deployment = run_stack("gcp", namePrefix=PREFIX)
    (package,) = deployment.of_type("gcp:storage/bucketObject:BucketObject")
    sha256 = package.inputs["name"].removeprefix(f"{PREFIX}-").removesuffix(".zip")
    assert physical_names(deployment) == {
        ("gcp:cloudfunctionsv2/function:Function", "name"): NAMES.gcp_function,
        ("gcp:artifactregistry/repository:Repository", "repositoryId"): NAMES.gcp_repository,
        ("gcp:storage/bucketObject:BucketObject", "name"): NAMES.gcp_source_object(sha256),
        ("gcp:serviceaccount/account:Account", f"{PREFIX}-runtime"): NAMES.gcp_runtime_account,
        ("gcp:serviceaccount/account:Account", f"{PREFIX}-build"): NAMES.gcp_build_account,
    }


def test_azure_names_come_from_the_prefix(run_stack):
    deployment = run_stack("azure", namePrefix=PREFIX)
    assert physical_names(deployment) == {
        ("azure-native:storage:StorageAccount", "accountName"): NAMES.azure_storage_account(SUBSCRIPTION, "azure"),
        ("azure-native:authorization:RoleAssignment", f"{PREFIX}-host-storage"): NAMES.azure_role_assignment(
            "azure", "host-storage"
        ),
        ("azure-native:authorization:RoleAssignment", f"{PREFIX}-telemetry"): NAMES.azure_role_assignment(
            "azure", "telemetry"
        ),
    }


@pytest.mark.parametrize("stack", ["aws", "gcp", "azure"])
def test_every_logical_name_starts_with_the_prefix_so_auto_names_do_too(run_stack, stack):
    """Providers derive auto-names (AWS role, GCP bucket, Azure group) from logical names; the PR-stack identity
    may only touch `tinyllmpr*` names (docs/ci.md)."""
    deployment = run_stack(stack, namePrefix=PREFIX)
    assert all(r.name == NAMES.component or r.name.startswith(f"{PREFIX}-") for r in deployment.resources)


def test_role_assignment_names_are_stable_guids_distinct_per_stack_and_purpose():
    first = NAMES.azure_role_assignment("azure", "telemetry")
    assert first == Names(PREFIX).azure_role_assignment("azure", "telemetry")
    assert (
        len(
            {
                first,
                NAMES.azure_role_assignment("azure", "host-storage"),
                NAMES.azure_role_assignment("pr", "telemetry"),
            }
        )
        == 3
    )
    assert len(first) == 36 and first.count("-") == 4
