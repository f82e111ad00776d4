"""Each grant the pack exists to stop, planted into a real stack and judged by the pack's own gRPC server, the way
`pulumi up --policy-pack infra/policy` would judge it (tests/infra/policy_harness.py). Every one of these passed
the pack before issue #10; each must now fail `pulumi up`."""

from __future__ import annotations

import json

import pytest
from policy_harness import POLICY_DIR, StackResource, from_deployment

PRIVATE, PUBLIC = POLICY_DIR / "private.json", POLICY_DIR / "public.json"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
EVERYTHING = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
BLOB_OWNER = "/providers/Microsoft.Authorization/roleDefinitions/b7e6dc6d-f1e8-4753-8033-0f276bb0955b"


def planted(type_: str, name: str, props: dict) -> StackResource:
    return StackResource(type_, name, props, props)


def own(resources: list[StackResource], type_: str) -> dict:
    (found,) = [r.outputs for r in resources if r.type == type_]
    return found


def verdict(pack, resources: list[StackResource], extra: StackResource, config=PRIVATE) -> list[str]:
    assert pack.violations(resources, config) == []  # the stack itself is compliant
    return pack.violations([*resources, extra], config)


@pytest.fixture
def aws(run_stack) -> list[StackResource]:
    return from_deployment(run_stack("aws"))


def role_policy(resources, *statements: dict) -> StackResource:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    return planted(
        "aws:iam/rolePolicy:RolePolicy",
        "extra",
        {"role": own(resources, "aws:iam/role:Role")["id"], "policy": document},
    )


# NotAction / NotResource were read as if they were Action / Resource.


def test_an_allow_everything_except_statement_is_a_violation(pack, aws):
    streams = own(aws, "aws:cloudwatch/logGroup:LogGroup")["arn"] + ":*"
    extra = role_policy(aws, {"Effect": "Allow", "NotAction": "logs:PutLogEvents", "Resource": streams})
    assert any("NotAction" in message for message in verdict(pack, aws, extra))


def test_a_not_resource_statement_is_a_violation(pack, aws):
    streams = own(aws, "aws:cloudwatch/logGroup:LogGroup")["arn"] + ":*"
    extra = role_policy(aws, {"Effect": "Allow", "Action": "logs:PutLogEvents", "NotResource": streams})
    assert any("NotResource" in message for message in verdict(pack, aws, extra))


# Grants on resources that are not this stack's own (name patterns used to pass).


@pytest.mark.parametrize(
    "log_group",
    [
        "arn:aws:logs:us-east-1:999999999999:log-group:/aws/lambda/someone-else:*",  # another account and region
        "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/another-function:*",  # this account, not ours
    ],
)
def test_log_writes_to_another_log_group_are_a_violation(pack, aws, log_group):
    extra = role_policy(aws, {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": [log_group]})
    assert any("not this stack's own log-group" in message for message in verdict(pack, aws, extra))


def test_gcp_build_grants_on_another_bucket_or_repository_are_a_violation(pack, run_stack):
    gcp = from_deployment(run_stack("gcp"))
    (build_email,) = [r.outputs["email"] for r in gcp if r.name.endswith("-build")]
    build = "serviceAccount:" + build_email
    bucket = planted(
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "extra-bucket",
        {"bucket": "someone-elses-bucket", "role": "roles/storage.objectViewer", "member": build},
    )
    repository = planted(
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
        "extra-repo",
        {
            "repository": "someone-elses-images",
            "location": "europe-west1",
            "role": "roles/artifactregistry.writer",
            "member": build,
        },
    )
    assert any("someone-elses-bucket" in message for message in verdict(pack, gcp, bucket))
    assert any("someone-elses-images" in message for message in verdict(pack, gcp, repository))


@pytest.mark.parametrize(
    ("type_", "binding"),
    [
        ("gcp:projects/iAMBinding:IAMBinding", {"role": "roles/logging.logWriter", "members": ["{member}"]}),
        (
            "gcp:projects/iAMPolicy:IAMPolicy",
            {"policyData": json.dumps({"bindings": [{"role": "roles/logging.logWriter", "members": ["{member}"]}]})},
        ),
    ],
)
def test_authoritative_project_iam_is_a_violation_even_for_an_allowed_role(pack, run_stack, type_, binding):
    # Applied, either would remove every other binding on the project, the owners' included.
    gcp = from_deployment(run_stack("gcp"))
    (build_email,) = [r.outputs["email"] for r in gcp if r.name.endswith("-build")]
    props = json.loads(json.dumps(binding).replace("{member}", "serviceAccount:" + build_email))
    extra = planted(type_, "whole-project", {"project": "my-project", **props})
    assert any("authoritative on the whole project" in message for message in verdict(pack, gcp, extra))


def test_azure_blob_data_owner_on_another_storage_account_is_a_violation(pack, run_stack):
    azure = from_deployment(run_stack("azure"))
    identity = own(azure, "azure-native:web:WebApp")["identity"]["principalId"]
    other = "/subscriptions/0/resourceGroups/payroll/providers/Microsoft.Storage/storageAccounts/payrolldata"
    extra = planted(
        "azure-native:authorization:RoleAssignment",
        "extra",
        {
            "scope": other,
            "principalId": identity,
            "principalType": "ServicePrincipal",
            "roleDefinitionId": f"/subscriptions/0{BLOB_OWNER}",
        },
    )
    assert any("payrolldata" in message for message in verdict(pack, azure, extra))


def test_azure_blob_data_owner_for_someone_other_than_the_app_is_a_violation(pack, run_stack):
    azure = from_deployment(run_stack("azure"))
    storage = own(azure, "azure-native:storage:StorageAccount")["id"]
    extra = planted(
        "azure-native:authorization:RoleAssignment",
        "extra",
        {
            "scope": storage,
            "principalId": "an-attacker",
            "principalType": "User",
            "roleDefinitionId": f"/subscriptions/0{BLOB_OWNER}",
        },
    )
    assert any("not an identity of this stack" in message for message in verdict(pack, azure, extra))


# Policy-bearing resources that were never inspected.


@pytest.mark.parametrize(
    "type_,props",
    [
        (
            "aws:iam/role:Role",
            {
                "assumeRolePolicy": json.dumps({"Statement": []}),
                "inlinePolicies": [{"name": "admin", "policy": EVERYTHING}],
            },
        ),
        ("aws:iam/policyAttachment:PolicyAttachment", {"name": "admin", "policyArn": ADMIN, "roles": ["tinyllm-role"]}),
        (
            "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive",
            {"roleName": "tinyllm-role", "policyArns": [ADMIN]},
        ),
        (
            "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive",
            {"userName": "u", "policyArns": [ADMIN]},
        ),
        (
            "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive",
            {"groupName": "g", "policyArns": [ADMIN]},
        ),
        ("aws:iam/userPolicy:UserPolicy", {"user": "u", "policy": EVERYTHING}),
        ("aws:iam/groupPolicy:GroupPolicy", {"group": "g", "policy": EVERYTHING}),
        ("aws:iam/userPolicyAttachment:UserPolicyAttachment", {"user": "u", "policyArn": ADMIN}),
        ("aws:iam/groupPolicyAttachment:GroupPolicyAttachment", {"group": "g", "policyArn": ADMIN}),
        ("aws:iam/policy:Policy", {"name": "admin", "policy": EVERYTHING}),
        ("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": EVERYTHING}),
        (
            "gcp:serviceaccount/iAMMember:IAMMember",
            {
                "serviceAccountId": "projects/p/serviceAccounts/123-compute@developer.gserviceaccount.com",
                "role": "roles/iam.serviceAccountUser",
                "member": "serviceAccount:x@p.iam.gserviceaccount.com",
            },
        ),
        (
            "gcp:organizations/iAMMember:IAMMember",
            {"orgId": "1", "role": "roles/logging.logWriter", "member": "user:x"},
        ),
    ],
)
def test_every_policy_bearing_resource_is_inspected(pack, aws, type_, props):
    assert verdict(pack, aws, planted(type_, "extra", props)), type_


def test_administrator_access_on_the_functions_own_role_is_a_violation(pack, aws):
    role = own(aws, "aws:iam/role:Role")
    for type_, props in [
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", {"role": role["id"], "policyArn": ADMIN}),
        ("aws:iam/role:Role", {**role, "managedPolicyArns": [ADMIN]}),
    ]:
        assert any("AdministratorAccess" in message for message in verdict(pack, aws, planted(type_, "extra", props)))


# Public principals may only invoke the function, even on a public stack.


@pytest.mark.parametrize(
    "type_,props",
    [
        (
            "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember",
            {
                "repository": "tinyllm-images",
                "location": "europe-west1",
                "role": "roles/artifactregistry.writer",
                "member": "allUsers",
            },
        ),
        (
            "gcp:projects/iAMMember:IAMMember",
            {"project": "my-project", "role": "roles/logging.logWriter", "member": "allAuthenticatedUsers"},
        ),
        (
            "gcp:storage/bucketIAMMember:BucketIAMMember",
            {"bucket": "tinyllm-source-bucket", "role": "roles/storage.objectViewer", "member": "allUsers"},
        ),
    ],
)
def test_public_principals_hold_nothing_but_the_invoker_role_even_when_public(pack, run_stack, type_, props):
    gcp = from_deployment(run_stack("gcp", public=True))
    assert any(
        "may only invoke the function" in message
        for message in verdict(pack, gcp, planted(type_, "extra", props), PUBLIC)
    )


def test_public_run_invoker_only_on_this_stacks_service(pack, run_stack):
    gcp = from_deployment(run_stack("gcp", public=True))
    extra = planted(
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "extra",
        {
            "name": "projects/my-project/locations/europe-west1/services/payroll",
            "location": "europe-west1",
            "role": "roles/run.invoker",
            "member": "allUsers",
        },
    )
    assert any("services/payroll" in message for message in verdict(pack, gcp, extra, PUBLIC))
