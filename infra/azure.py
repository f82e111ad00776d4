"""Azure: a Function App on the Flex Consumption plan with a system-assigned identity, identity-based host
storage on an account with shared keys disabled, and function-level keys unless public.

Facts relied on:
- Flex Consumption is configured through `functionAppConfig` (deployment storage, runtime, scale) and runs
  from the package that *one deploy* puts in the deployment container; WEBSITE_RUN_FROM_PACKAGE is not used:
  https://learn.microsoft.com/azure/azure-functions/functions-infrastructure-as-code (Flex Consumption pivot)
  and https://learn.microsoft.com/azure/azure-functions/deployment-zip-push (package deployment by plan).
- Identity-based host storage needs `AzureWebJobsStorage__accountName` and the Storage Blob Data Owner role on
  the account (the Functions host creates its own containers there, so no narrower scope works):
  https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
- Why not an ARM `sites/extensions/onedeploy` resource with a packageUri: the package must first be uploaded
  to a blob, and pulumi-azure-native cannot write blobs to an account with shared keys disabled
  (pulumi/pulumi-azure-native#2015). So the package is pushed with the Flex one-deploy endpoint through
  `az functionapp deployment source config-zip` (Entra ID auth, no keys), run by pulumi-command inside
  `pulumi up` and re-run only when the package hash changes.
"""

from __future__ import annotations

import os
import uuid

import pulumi
import pulumi_azure_native as azure
from pulumi_command import local

from infra.config import Package, StackConfig, function_environment, provided

PYTHON_VERSION = "3.12"
DEPLOYMENT_CONTAINER = "deployment-package"
# Built-in role definition ids are the same in every tenant.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"


def stable_guid(*parts: str) -> str:
    """Role assignment names must be GUIDs; derive them from stable strings so a rerun changes nothing."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tinyllm/" + "/".join(parts)))


class AzureFunction(pulumi.ComponentResource):
    """Everything tinyllm needs on Azure; `url` is the app's HTTPS origin, `key_command` prints the key."""

    url: pulumi.Output[str]
    key_command: pulumi.Output[str]

    def __init__(self, name: str, stack: StackConfig, package: Package, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tinyllm:azure:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        group = azure.resources.ResourceGroup(f"{name}-rg", location=stack.region, opts=child)
        storage = azure.storage.StorageAccount(
            f"{stack.name_prefix}host",
            resource_group_name=group.name,
            location=stack.region,
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_blob_public_access=False,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            opts=child,
        )
        container = azure.storage.BlobContainer(
            f"{name}-deployments", resource_group_name=group.name, account_name=storage.name,
            container_name=DEPLOYMENT_CONTAINER, public_access=azure.storage.PublicAccess.NONE, opts=child,
        )
        plan = azure.web.AppServicePlan(
            f"{name}-plan", resource_group_name=group.name, location=stack.region, kind="functionapp",
            reserved=True, sku={"name": "FC1", "tier": "FlexConsumption"}, opts=child,
        )

        settings = {"AzureWebJobsStorage__accountName": storage.name, **function_environment(stack)}
        app = azure.web.WebApp(
            f"{name}-app",
            resource_group_name=group.name,
            location=stack.region,
            kind="functionapp,linux",
            server_farm_id=plan.id,
            https_only=True,
            identity={"type": azure.web.ManagedServiceIdentityType.SYSTEM_ASSIGNED},
            site_config={
                "app_settings": [{"name": key, "value": value} for key, value in sorted(settings.items())],
                "min_tls_version": "1.2",
                "ftps_state": "Disabled",
            },
            function_app_config={
                "deployment": {"storage": {
                    "type": "blobContainer",
                    "value": pulumi.Output.concat(storage.primary_endpoints.blob, DEPLOYMENT_CONTAINER),
                    "authentication": {"type": "SystemAssignedIdentity"},
                }},
                "runtime": {"name": "python", "version": PYTHON_VERSION},
                "scale_and_concurrency": {
                    "maximum_instance_count": stack.max_instances,
                    "instance_memory_mb": stack.memory_mb,
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
        )

        host_storage_access = azure.authorization.RoleAssignment(
            f"{name}-host-storage",
            role_assignment_name=stable_guid(pulumi.get_stack(), name, "host-storage"),
            scope=storage.id,
            principal_id=app.identity.apply(lambda identity: provided(identity, "app.identity").principal_id),
            principal_type="ServicePrincipal",
            role_definition_id=client.subscription_id.apply(
                lambda sub: f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/"
                            f"{STORAGE_BLOB_DATA_OWNER}"
            ),
            opts=child,
        )

        deploy_command = pulumi.Output.format(
            "az functionapp deployment source config-zip --resource-group {0} --name {1} --src {2}",
            group.name, app.name, os.path.relpath(package.zip_path),  # relative: same input on every machine
        )
        local.Command(
            f"{name}-deploy",
            create=deploy_command,
            update=deploy_command,
            triggers=[package.sha256],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[host_storage_access]),
        )

        self.url = pulumi.Output.concat("https://", app.default_host_name)
        self.key_command = pulumi.Output.format(
            "az functionapp keys list --resource-group {0} --name {1} --query functionKeys.default -o tsv",
            group.name, app.name,
        )
        self.register_outputs({"url": self.url, "key_command": self.key_command})
