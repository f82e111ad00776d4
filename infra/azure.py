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
- That push starts as soon as the role assignment exists, but Flex uploads the package with the app's identity and
  gets 403 until the new role applies (Azure/azure-functions-core-tools#4346: "Failed to upload because Azure
  Storage responded with Forbidden"), so it is retried, a bounded number of times. `--build-remote false`: the
  package already carries its dependencies, nothing may rebuild it; `--timeout`: seconds to wait for the
  deployment status; `--subscription`: the one azure-native deploys to, not the CLI's local default.
  Source: learn.microsoft.com/cli/azure/functionapp/deployment/source#az-functionapp-deployment-source-config-zip
- Logs: the JSON lines the function prints reach a workspace-based Application Insights ("traces"; stdout of
  the worker, Azure/azure-functions-host#10222) with local (key) auth disabled, so ingestion needs Entra ID: the
  app's identity gets Monitoring Metrics Publisher on that component only, and the app sets
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD (system-assigned identity).
  Source: learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication ("add the Monitoring Metrics
  Publisher role ... by setting the target Application Insights resource as the role scope").
- Storage account names: explicit and deterministic (infra/naming.py), because autonaming overflows 24
  characters for long prefixes (pulumi/pulumi-azure-native#4294).
"""

from __future__ import annotations

import os
import shlex

import pulumi
import pulumi_azure_native as azure
from pulumi_command import local

from infra.config import Package, StackConfig, function_environment, provided
from infra.naming import Names
from infra.policy.tinyllm_rules import AZURE_ROLE_NAMES

PYTHON_VERSION = "3.12"
DEPLOYMENT_CONTAINER = "deployment-package"
# Built-in role definition ids, the same in every tenant: one table, with its source, shared with the policy pack.
ROLE_IDS = {name: role_id for role_id, name in AZURE_ROLE_NAMES.items()}
# The app identity's roles: (role assignment purpose, built-in role, which of this stack's resources is the scope).
# Host storage on the account (the host creates its own containers there); telemetry ingestion on the component.
APP_ROLES = (
    ("host-storage", "Storage Blob Data Owner", "storage"),
    ("telemetry", "Monitoring Metrics Publisher", "insights"),
)
# The package push, bounded as a whole: at most PUSH_TRIES attempts, PUSH_DELAY_SECONDS apart, each stopped after
# PUSH_TRY_SECONDS (az's own --timeout, PUSH_TIMEOUT_SECONDS, bounds only its wait for the deployment status; its
# health check after that has no bound of its own), and none started after PUSH_DEADLINE_SECONDS. The deadline stays
# well below the CI job's 45 minutes (.github/workflows/pulumi-stack.yml, timeout-minutes), so a push that never
# succeeds fails the deploy with a message instead of the runner killing it.
PUSH_TRIES = 10
PUSH_DELAY_SECONDS = 30
PUSH_TIMEOUT_SECONDS = 600
PUSH_TRY_SECONDS = 900
PUSH_DEADLINE_SECONDS = 1500
# The query that finds one request's log line (request id from the response's x-request-id header), in the
# Application Insights resource's Logs blade.
LOG_QUERY = 'traces | where message has "<request-id>" | project timestamp, message'


def push_command(
    group: str,
    app: str,
    zip_path: str,
    subscription: str,
    *,
    tries: int = PUSH_TRIES,
    delay: int = PUSH_DELAY_SECONDS,
    timeout: int = PUSH_TIMEOUT_SECONDS,
    try_seconds: int = PUSH_TRY_SECONDS,
    deadline_seconds: int = PUSH_DEADLINE_SECONDS,
) -> str:
    """A POSIX sh command that pushes the package with `az`, retrying up to `tries` times `delay` seconds apart.

    Each try runs in the background under a watchdog that kills it after `try_seconds` (fewer when the deadline is
    closer): after the upload, az's `check_flex_app_after_deployment` sleeps 60 s and then polls the app's
    `/admin/host/status` with `requests.get` and no timeout (Azure/azure-cli, src/azure-cli/azure/cli/
    command_modules/appservice/custom.py), so one try can hang when the host never answers. No try starts after
    `deadline_seconds`. Exits 0 on the first success, else with the last failure's status and a message saying what
    to check."""
    push = shlex.join(
        [
            "az",
            "functionapp",
            "deployment",
            "source",
            "config-zip",
            "--resource-group",
            group,
            "--name",
            app,
            "--src",
            zip_path,
            "--subscription",
            subscription,
            "--build-remote",
            "false",
            "--timeout",
            str(timeout),
        ]
    )
    give_up = (
        f"package push to {app} failed $try times within {deadline_seconds}s (last exit status $status). Check: "
        f"that the app's identity has Storage Blob Data Owner on its storage account (a new role assignment can take "
        f"up to 30 minutes to apply); the deployment log (az functionapp log deployment show --name {app} "
        f"--resource-group {group}); and that the host starts (a try stopped after {try_seconds}s is az waiting on "
        f"/admin/host/status). Then run pulumi up again."
    )
    return (
        f"deadline=$(( $(date +%s) + {deadline_seconds} )); try=1; "
        f"while true; do "
        f"limit={try_seconds}; left=$(( deadline - $(date +%s) )); "
        f'if [ "$left" -lt "$limit" ]; then limit=$left; fi; '
        f"{push} & pid=$!; "
        # The watchdog kills the try when its time is up, and ends by itself within a second of the try ending: it
        # sleeps a second at a time while the try lives, so no long sleep can outlive it (killing a watchdog that
        # sleeps in one piece races with its trap and leaves the sleep behind). The push waits for it.
        f'( n=0; while [ "$n" -lt "$limit" ] && kill -0 "$pid" 2>/dev/null; do sleep 1; n=$((n + 1)); done; '
        f'kill "$pid" 2>/dev/null ) >/dev/null 2>&1 & watchdog=$!; '
        f'wait "$pid"; status=$?; wait "$watchdog"; '
        f'if [ "$status" -eq 0 ]; then exit 0; fi; '
        f'if [ "$try" -ge {tries} ] || [ $(( $(date +%s) + {delay} )) -ge "$deadline" ]; then '
        f'echo "{give_up}" >&2; exit "$status"; fi; '
        f'echo "package push failed (try $try of {tries}, exit status $status); retrying in {delay}s" >&2; '
        f"try=$((try + 1)); sleep {delay}; done"
    )


def role_definition(subscription: str, role_id: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"


class AzureFunction(pulumi.ComponentResource):
    """Everything tinyllm needs on Azure; `url` is the app's HTTPS origin, `key_command` prints the key and
    `log_query` finds a request's log line in the Application Insights resource `insights_id` (its Logs blade)."""

    url: pulumi.Output[str]
    key_command: pulumi.Output[str]
    log_query: str
    insights_id: pulumi.Output[str]

    def __init__(self, stack: StackConfig, package: Package, opts: pulumi.ResourceOptions | None = None):
        names = Names(stack.name_prefix)
        super().__init__("tinyllm:azure:Function", names.component, None, opts)
        client = azure.authorization.get_client_config_output(opts=pulumi.InvokeOutputOptions(parent=self))

        group = self._group(names, stack)
        storage, container = self._storage(names, stack, group, client.subscription_id)
        insights = self._telemetry(names, stack, group)
        app = self._app(names, stack, group, storage, container, insights)
        grants = self._grants(names, app, {"storage": storage.id, "insights": insights.id}, client.subscription_id)
        # The push needs host storage (Flex uploads the package with the app's identity), not telemetry.
        self._push(names, package, group, app, client.subscription_id, depends_on=[grants["host-storage"]])

        self.url = pulumi.Output.concat("https://", app.default_host_name)
        self.key_command = pulumi.Output.format(
            "az functionapp keys list --resource-group {0} --name {1} --subscription {2} "
            "--query functionKeys.default -o tsv",
            group.name,
            app.name,
            client.subscription_id,
        )
        self.log_query = LOG_QUERY
        self.insights_id = insights.id
        self.register_outputs({"url": self.url, "key_command": self.key_command, "insights_id": self.insights_id})

    def _child(self, **options) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)

    def _group(
        self, names: Names, stack: StackConfig
    ) -> azure.resources.ResourceGroup | pulumi.Output[azure.resources.GetResourceGroupResult]:
        if stack.resource_group_name:
            # An existing group (tinyllm:resourceGroupName), looked up, never created or deleted: the deploying
            # identity's roles can then be scoped to that group alone (docs/ci.md). The look-up fails the deploy
            # before anything is created if the group does not exist or the identity cannot read it.
            return azure.resources.get_resource_group_output(
                resource_group_name=stack.resource_group_name, opts=pulumi.InvokeOutputOptions(parent=self)
            )
        return azure.resources.ResourceGroup(names.child("rg"), location=stack.region, opts=self._child())

    def _storage(
        self, names: Names, stack: StackConfig, group, subscription: pulumi.Output[str]
    ) -> tuple[azure.storage.StorageAccount, azure.storage.BlobContainer]:
        """The host's storage account (shared keys off, Entra ID only) and the container the package deploys to."""
        stack_name = pulumi.get_stack()
        storage = azure.storage.StorageAccount(
            names.child("storage"),
            account_name=subscription.apply(lambda sub: names.azure_storage_account(sub, stack_name)),
            resource_group_name=group.name,
            location=stack.region,
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            allow_blob_public_access=False,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            opts=self._child(),
        )
        container = azure.storage.BlobContainer(
            names.child("deployments"),
            resource_group_name=group.name,
            account_name=storage.name,
            container_name=DEPLOYMENT_CONTAINER,
            public_access=azure.storage.PublicAccess.NONE,
            opts=self._child(),
        )
        return storage, container

    def _telemetry(self, names: Names, stack: StackConfig, group) -> azure.applicationinsights.Component:
        """A Log Analytics workspace and the Application Insights component over it, local (key) auth disabled."""
        workspace = azure.operationalinsights.Workspace(
            names.child("logs"),
            resource_group_name=group.name,
            location=stack.region,
            sku={"name": "PerGB2018"},
            retention_in_days=stack.log_retention_days,
            opts=self._child(),
        )
        return azure.applicationinsights.Component(
            names.child("insights"),
            resource_group_name=group.name,
            location=stack.region,
            kind="web",
            application_type="web",
            workspace_resource_id=workspace.id,
            ingestion_mode="LogAnalytics",
            disable_local_auth=True,
            opts=self._child(),
        )

    def _app(
        self,
        names: Names,
        stack: StackConfig,
        group,
        storage: azure.storage.StorageAccount,
        container: azure.storage.BlobContainer,
        insights: azure.applicationinsights.Component,
    ) -> azure.web.WebApp:
        """The Flex Consumption plan and the function app on it, with a system-assigned identity."""
        plan = azure.web.AppServicePlan(
            names.child("plan"),
            resource_group_name=group.name,
            location=stack.region,
            kind="functionapp",
            reserved=True,
            sku={"name": "FC1", "tier": "FlexConsumption"},
            opts=self._child(),
        )
        settings = {
            "AzureWebJobsStorage__accountName": storage.name,
            # Where to send telemetry (not a credential: local auth is disabled) and how to authenticate: Entra ID
            # with the system-assigned identity.
            "APPLICATIONINSIGHTS_CONNECTION_STRING": insights.connection_string,
            "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Authorization=AAD",
            **function_environment(stack),
        }
        return azure.web.WebApp(
            names.child("app"),
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
                "deployment": {
                    "storage": {
                        "type": "blobContainer",
                        "value": pulumi.Output.concat(storage.primary_endpoints.blob, DEPLOYMENT_CONTAINER),
                        "authentication": {"type": "SystemAssignedIdentity"},
                    }
                },
                "runtime": {"name": "python", "version": PYTHON_VERSION},
                "scale_and_concurrency": {
                    "maximum_instance_count": stack.max_instances,
                    "instance_memory_mb": stack.memory_mb,
                },
            },
            opts=self._child(depends_on=[container]),
        )

    def _grants(
        self,
        names: Names,
        app: azure.web.WebApp,
        scopes: dict[str, pulumi.Output[str]],
        subscription: pulumi.Output[str],
    ) -> dict[str, azure.authorization.RoleAssignment]:
        """The app identity's roles (APP_ROLES), each on one of this stack's own resources; by purpose."""
        app_principal = app.identity.apply(lambda identity: provided(identity, "app.identity").principal_id)
        stack_name = pulumi.get_stack()
        return {
            purpose: azure.authorization.RoleAssignment(
                names.child(purpose),
                role_assignment_name=names.azure_role_assignment(stack_name, purpose),
                scope=scopes[scope],
                principal_id=app_principal,
                principal_type="ServicePrincipal",
                role_definition_id=subscription.apply(lambda sub, role=role: role_definition(sub, ROLE_IDS[role])),
                opts=self._child(),
            )
            for purpose, role, scope in APP_ROLES
        }

    def _push(
        self,
        names: Names,
        package: Package,
        group,
        app: azure.web.WebApp,
        subscription: pulumi.Output[str],
        depends_on: list[pulumi.Resource],
    ) -> local.Command:
        """Push the package with `az` (see push_command), again only when its hash changes."""
        deploy_command = pulumi.Output.all(group.name, app.name, subscription).apply(
            lambda args: push_command(args[0], args[1], os.path.relpath(package.zip_path), args[2])
        )  # relative zip path: the same command on every machine, so it only re-runs when the package changes
        return local.Command(
            names.child("deploy"),
            create=deploy_command,
            update=deploy_command,
            triggers=[package.sha256],
            opts=self._child(depends_on=depends_on),
        )
