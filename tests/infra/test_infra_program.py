"""The Pulumi program, run under mocks with each committed stack file: what it creates and what it exports."""

from __future__ import annotations

import hashlib
import json

import pytest
from infra_mocks import comparable

from infra.config import ConfigError

# The inventory docs/deploying.md ("What gets created") documents, per stack, with the committed defaults
# (private, no invokers).
EXPECTED_INVENTORY = {
    "gcp": {
        "tinyllm:gcp:Function": 1,
        "gcp:storage/bucket:Bucket": 1,
        "gcp:storage/bucketObject:BucketObject": 1,
        "gcp:artifactregistry/repository:Repository": 1,
        "gcp:serviceaccount/account:Account": 2,
        "gcp:projects/iAMMember:IAMMember": 2,
        "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": 1,
        "gcp:storage/bucketIAMMember:BucketIAMMember": 1,
        "time:index/sleep:Sleep": 1,
        "gcp:cloudfunctionsv2/function:Function": 1,
    },
    "aws": {
        "tinyllm:aws:Function": 1,
        "aws:cloudwatch/logGroup:LogGroup": 1,
        "aws:iam/role:Role": 1,
        "aws:iam/rolePolicy:RolePolicy": 1,
        "aws:lambda/function:Function": 1,
        "aws:lambda/functionUrl:FunctionUrl": 1,
    },
    "azure": {
        "tinyllm:azure:Function": 1,
        "azure-native:resources:ResourceGroup": 1,
        "azure-native:storage:StorageAccount": 1,
        "azure-native:storage:BlobContainer": 1,
        "azure-native:web:AppServicePlan": 1,
        "azure-native:web:WebApp": 1,
        "azure-native:operationalinsights:Workspace": 1,
        "azure-native:applicationinsights:Component": 1,
        "azure-native:authorization:RoleAssignment": 2,
        "command:local:Command": 1,
    },
}


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_each_stack_creates_the_documented_inventory_and_exports_an_https_url(run_stack, stack):
    deployment = run_stack(stack)
    assert deployment.inventory() == EXPECTED_INVENTORY[stack]
    assert deployment.outputs["url"].startswith("https://")
    assert deployment.outputs["cloud"] == stack
    assert deployment.outputs["public"] is False


def test_gcp_function_runs_python312_serve_with_a_cost_cap_from_the_content_named_object(run_stack):
    deployment = run_stack("gcp")
    function = deployment.one("gcp:cloudfunctionsv2/function:Function").inputs
    package_object = deployment.one("gcp:storage/bucketObject:BucketObject").inputs
    assert function["buildConfig"]["runtime"] == "python312"
    assert function["buildConfig"]["entryPoint"] == "serve"
    assert function["serviceConfig"]["maxInstanceCount"] == 3
    assert package_object["name"] == f"tinyllm-{deployment.outputs['package_sha256']}.zip"
    assert function["buildConfig"]["source"]["storageSource"]["object"] == package_object["name"]
    runtime, build = (a.inputs["accountId"] for a in deployment.of_type("gcp:serviceaccount/account:Account"))
    assert function["serviceConfig"]["serviceAccountEmail"].startswith(runtime + "@")
    assert build + "@" in function["buildConfig"]["serviceAccount"]


def test_gcp_function_knows_its_project_so_log_lines_link_to_their_traces(run_stack):
    function = run_stack("gcp").one("gcp:cloudfunctionsv2/function:Function").inputs
    assert function["serviceConfig"]["environmentVariables"]["GOOGLE_CLOUD_PROJECT"] == "my-project"


def test_aws_lambda_is_python312_arm64_with_reserved_concurrency_and_its_own_log_group(run_stack):
    deployment = run_stack("aws")
    function = deployment.one("aws:lambda/function:Function").inputs
    log_group = deployment.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert (function["runtime"], function["handler"], function["architectures"]) == (
        "python3.12",
        "handler.handler",
        ["arm64"],
    )
    assert function["reservedConcurrentExecutions"] == 5
    assert function["loggingConfig"]["logGroup"] == log_group["name"] == "/aws/lambda/tinyllm"
    assert log_group["retentionInDays"] == 14
    assert deployment.one("aws:lambda/functionUrl:FunctionUrl").inputs["authorizationType"] == "AWS_IAM"


def test_aws_architecture_comes_from_config(run_stack):
    function = run_stack("aws", architecture="x86_64").one("aws:lambda/function:Function").inputs
    assert function["architectures"] == ["x86_64"]


def test_azure_is_flex_consumption_with_identity_based_storage_and_no_keys(run_stack):
    deployment = run_stack("azure")
    plan = deployment.one("azure-native:web:AppServicePlan").inputs
    app = deployment.one("azure-native:web:WebApp").inputs
    settings = {s["name"]: s["value"] for s in app["siteConfig"]["appSettings"]}
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert app["identity"] == {"type": "SystemAssigned"}
    assert app["httpsOnly"] is True
    assert app["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.12"}
    assert app["functionAppConfig"]["deployment"]["storage"]["authentication"] == {"type": "SystemAssignedIdentity"}
    assert app["functionAppConfig"]["scaleAndConcurrency"]["maximumInstanceCount"] == 40
    assert set(settings) == {
        "AzureWebJobsStorage__accountName",
        "TINYLLM_AZURE_AUTH_LEVEL",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    }
    assert settings["TINYLLM_AZURE_AUTH_LEVEL"] == "FUNCTION"
    storage = deployment.one("azure-native:storage:StorageAccount").inputs
    assert (storage["allowSharedKeyAccess"], storage["allowBlobPublicAccess"], storage["minimumTlsVersion"]) == (
        False,
        False,
        "TLS1_2",
    )
    assert "key_command" in deployment.outputs


def test_azure_deploys_the_package_inside_pulumi_up_and_only_when_it_changes(run_stack):
    deployment = run_stack("azure")
    command = deployment.one("command:local:Command").inputs
    assert "az functionapp deployment source config-zip " in command["create"]
    assert "azure.zip --subscription" in command["create"]
    assert command["update"] == command["create"]
    assert command["triggers"] == [deployment.outputs["package_sha256"]]


def test_azure_public_switches_the_auth_level_to_anonymous(run_stack):
    app = run_stack("azure", public=True).one("azure-native:web:WebApp").inputs
    assert {s["name"]: s["value"] for s in app["siteConfig"]["appSettings"]}["TINYLLM_AZURE_AUTH_LEVEL"] == "ANONYMOUS"


@pytest.mark.parametrize("stack,public", [("gcp", False), ("aws", True), ("azure", False)])
def test_the_api_key_reaches_the_function_only_as_its_sha256(run_stack, stack, public):
    key = "sk-tinyllm-test-key"
    deployment = run_stack(stack, secrets={"tinyllm:apiKey": key}, public=public)
    digest = hashlib.sha256(key.encode()).hexdigest()
    every_input = repr([r.inputs for r in deployment.resources])
    assert key not in every_input
    assert digest in every_input
    assert "TINYLLM_API_KEY_SHA256" in every_input


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_running_twice_with_the_same_config_produces_identical_inputs(run_stack, stack):
    def snapshot(deployment):
        # Registration order and key order are async and may vary; the (type, name, inputs) themselves may not.
        return sorted((r.type, r.name, json.dumps(comparable(r.inputs), sort_keys=True)) for r in deployment.resources)

    assert snapshot(run_stack(stack)) == snapshot(run_stack(stack))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"maxInstances": 0}, "cost cap"),
        ({"invokers": ["allUsers"]}, "public invoker"),
        ({"public": True, "invokers": ["user:a@example.com"]}, "meaningless"),
    ],
)
def test_unsafe_or_contradictory_config_is_refused_before_any_resource(run_stack, overrides, message):
    with pytest.raises(ConfigError, match=message):
        run_stack("gcp", **overrides)


def test_aws_refuses_an_api_key_behind_iam_auth_because_clients_could_not_send_it(run_stack):
    with pytest.raises(ConfigError, match="public=true on AWS"):
        run_stack("aws", secrets={"tinyllm:apiKey": "k"})


def test_azure_refuses_an_instance_size_flex_consumption_does_not_offer(run_stack):
    with pytest.raises(ConfigError, match="Flex Consumption"):
        run_stack("azure", memoryMb=1024)
