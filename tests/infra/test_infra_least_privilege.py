"""Least privilege as data: every IAM grant the program creates, checked against an explicit allow-list."""

from __future__ import annotations

import json

import pytest
from infra_mocks import is_secret
from parliament_compat import analyze_policy_string

from infra.policy.tinyllm_rules import ALLOWED_GRANTS, Grant, grants, private_grants, violations


def all_grants(deployment) -> list[Grant]:
    return [grant for r in deployment.resources for grant in grants(r.type, r.inputs)]


def all_violations(deployment, allow_public: bool) -> list[str]:
    return [f"{r.name}: {v}" for r in deployment.resources for v in violations(r.type, r.inputs, allow_public)]


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_private_stack_creates_exactly_the_expected_grants_and_passes_every_rule(run_stack, stack):
    # The pack's own table says which grants every private stack has: one list for the pack and the tests.
    deployment = run_stack(stack)
    found = {(g.permission, g.scope_kind) for g in all_grants(deployment)}
    assert found == private_grants(stack)
    assert found <= set(ALLOWED_GRANTS[stack])
    assert all_violations(deployment, allow_public=False) == []


@pytest.mark.parametrize("stack", ["gcp", "aws"])
def test_private_stack_has_no_public_principal(run_stack, stack):
    principals = {g.principal for g in all_grants(run_stack(stack))}
    assert not principals & {"allUsers", "allAuthenticatedUsers", "*"}


def test_gcp_public_grants_run_invoker_to_allusers_only_on_the_service_and_only_when_public(run_stack):
    deployment = run_stack("gcp", public=True)
    invokers = [g for g in all_grants(deployment) if g.permission == "roles/run.invoker"]
    assert [(g.permission, g.scope_kind, g.principal) for g in invokers] == [
        ("roles/run.invoker", "cloud-run-service", "allUsers")
    ]
    assert all_violations(deployment, allow_public=True) == []
    assert any("public principal allUsers" in v for v in all_violations(deployment, allow_public=False))


def test_gcp_configured_invokers_get_run_invoker_on_the_service(run_stack):
    members = ["user:alice@example.com", "serviceAccount:ci@p.iam.gserviceaccount.com"]
    deployment = run_stack("gcp", invokers=members)
    invokers = {g.principal for g in all_grants(deployment) if g.permission == "roles/run.invoker"}
    assert invokers == set(members)
    service = deployment.one("gcp:cloudfunctionsv2/function:Function")
    for binding in deployment.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember"):
        assert binding.inputs["name"].endswith(f"/services/{service.inputs['name']}")


def test_gcp_invokers_name_the_service_also_when_the_function_config_holds_a_secret(run_stack):
    """The API key's hash makes serviceConfig a secret; the service name the bindings read from it still arrives."""
    deployment = run_stack("gcp", secrets={"tinyllm:apiKey": "k"}, invokers=["user:alice@example.com"])
    service = deployment.one("gcp:cloudfunctionsv2/function:Function")
    (binding,) = deployment.of_type("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    name = binding.inputs["name"]
    assert is_secret(name)  # read from a secret output, so a secret itself
    assert name["value"].endswith(f"/services/{service.inputs['name']}")
    assert deployment.outputs["url"] == f"https://{service.inputs['name']}-abc123xyz-ew.a.run.app"


def test_gcp_runtime_service_account_has_no_roles(run_stack):
    deployment = run_stack("gcp")
    runtime = deployment.one("gcp:cloudfunctionsv2/function:Function").inputs["serviceConfig"]["serviceAccountEmail"]
    assert all(runtime not in g.principal for g in all_grants(deployment))


def test_aws_public_url_is_auth_none_only_when_public_and_the_program_grants_nothing_public_itself(run_stack):
    # Its two public statements are the provider's (infra/aws.py); the program's own grants stay private.
    deployment = run_stack("aws", public=True)
    assert deployment.one("aws:lambda/functionUrl:FunctionUrl").inputs["authorizationType"] == "NONE"
    assert {g.principal for g in all_grants(deployment)} & {"*", "allUsers", "allAuthenticatedUsers"} == set()
    assert all_violations(deployment, allow_public=True) == []
    assert all_violations(deployment, allow_public=False)  # the same stack fails the private rules (auth NONE)


def test_aws_role_is_trusted_only_by_lambda_for_this_account(run_stack):
    role = run_stack("aws").one("aws:iam/role:Role").inputs
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    assert not role.get("managedPolicyArns")


def test_aws_role_policy_is_scoped_to_its_own_log_group_and_passes_parliament(run_stack):
    deployment = run_stack("aws")
    log_group = deployment.one("aws:cloudwatch/logGroup:LogGroup").inputs["name"]
    document = deployment.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"]
    (statement,) = json.loads(document)["Statement"]
    assert statement["Resource"] == [f"arn:aws:logs:eu-west-1:123456789012:log-group:{log_group}:*"]
    findings = analyze_policy_string(document, include_community_auditors=True).findings
    assert [(f.issue, f.detail) for f in findings] == []


def test_azure_role_assignments_are_on_the_storage_account_and_the_insights_component_only(run_stack):
    deployment = run_stack("azure")
    scopes = {}
    for resource in deployment.of_type("azure-native:authorization:RoleAssignment"):
        (grant,) = grants(resource.type, resource.inputs)
        scopes[grant.permission] = resource.inputs["scope"]
        assert resource.inputs["principalType"] == "ServicePrincipal"
    storage = deployment.one("azure-native:storage:StorageAccount")
    insights = deployment.one("azure-native:applicationinsights:Component")
    assert scopes["Storage Blob Data Owner"].endswith(f"/providers/Microsoft.Storage/storageAccounts/{storage.name}")
    assert scopes["Monitoring Metrics Publisher"].endswith(f"/providers/Microsoft.Insights/components/{insights.name}")


# The rules must be able to fail: each of these is a mistake public examples make.
@pytest.mark.parametrize(
    "resource_type,props,expected",
    [
        (
            "aws:iam/rolePolicy:RolePolicy",
            {
                "role": "r",
                "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}),
            },
            "wildcard",
        ),
        (
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"role": "r", "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
            "allow-list",
        ),
        (
            "gcp:projects/iAMMember:IAMMember",
            {"project": "p", "role": "roles/editor", "member": "serviceAccount:x"},
            "primitive",
        ),
        (
            "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
            {"role": "roles/run.invoker", "member": "allUsers"},
            "public principal",
        ),
        (
            "azure-native:authorization:RoleAssignment",
            {
                "scope": "/subscriptions/s",
                "principalId": "p",
                "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/"
                "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
            },
            "allow-list",
        ),
        (
            "azure-native:storage:StorageAccount",
            {"allowSharedKeyAccess": True, "allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2"},
            "shared key",
        ),
        ("gcp:storage/bucket:Bucket", {"uniformBucketLevelAccess": True}, "public access prevention"),
        ("aws:lambda/function:Function", {"name": "f"}, "cost cap"),
    ],
)
def test_rules_reject_common_mistakes(resource_type, props, expected):
    assert any(expected in v for v in violations(resource_type, props))


@pytest.mark.parametrize(
    "resource_type,props",
    [
        ("gcp:serviceaccount/key:Key", {"serviceAccountId": "projects/p/serviceAccounts/a@p.iam.gserviceaccount.com"}),
        ("gcp:storage/hmacKey:HmacKey", {"serviceAccountEmail": "a@p.iam.gserviceaccount.com"}),
        ("gcp:projects/apiKey:ApiKey", {"name": "k"}),
        ("aws:iam/accessKey:AccessKey", {"user": "u"}),
        ("aws:iam/userLoginProfile:UserLoginProfile", {"user": "u"}),
        ("azure-native:web:WebAppScmAllowed", {"allow": True, "name": "app", "resourceGroupName": "rg"}),
        ("azure-native:web:WebAppFtpAllowed", {"name": "app", "resourceGroupName": "rg"}),
    ],
)
def test_long_lived_credentials_are_refused_on_every_cloud(resource_type, props):
    assert any("long-lived" in v for v in violations(resource_type, props, allow_public=True, allow_uncapped=True))


def test_basic_auth_publishing_switched_off_is_allowed():
    assert violations("azure-native:web:WebAppScmAllowed", {"allow": False, "name": "app"}) == []
