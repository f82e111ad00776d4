"""Azure preflight with the `az` CLI (which the deploy needs anyway to push the package) and the ARM REST API:
whose login, which subscription, and whether the program's resource providers are registered.

- `az account show -o json` gives the selected subscription and user ({"id", "name", "user": {"name", "type"}});
  `az account get-access-token --resource https://management.azure.com/ -o json` an ARM token ({"accessToken"}).
  Source: learn.microsoft.com/cli/azure/account
- The subscription the program deploys to: `azure-native:subscriptionId`, else ARM_SUBSCRIPTION_ID, else the CLI's
  selected one (pulumi.com/registry/packages/azure-native/installation-configuration).
- GET https://management.azure.com/subscriptions/SUB/providers/NAMESPACE?api-version=2021-04-01 answers
  {"namespace": ..., "registrationState": "Registered" | "NotRegistered" | "Registering" | ...}
  (learn.microsoft.com/rest/api/resources/providers/get).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from infra.config import StackConfig
from infra.preflight import Report, one_line

ARM = "https://management.azure.com"
PROVIDERS_API_VERSION = "2021-04-01"
# Web: the plan and function app; Storage: the host storage; Insights: Application Insights and role-scoped
# telemetry; OperationalInsights: the Log Analytics workspace behind it.
RESOURCE_PROVIDERS = ("Microsoft.Web", "Microsoft.Storage", "Microsoft.Insights", "Microsoft.OperationalInsights")
AZ_TIMEOUT_SECONDS = 60


def _az(executable: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [executable, *args, "-o", "json"],
        capture_output=True,
        text=True,
        timeout=AZ_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )


def check(stack: StackConfig, values: dict[str, str], report: Report, *, arm: str = ARM, environ=os.environ) -> None:
    import requests

    executable = shutil.which("az", path=environ.get("PATH"))
    if executable is None:
        report.problem(
            "the Azure CLI (`az`) is not installed; the deploy pushes the package with it",
            "install it (https://learn.microsoft.com/cli/azure/install-azure-cli), then `az login`",
        )
        return
    account = _az(executable, "account", "show")
    if account.returncode != 0:
        report.problem(f"not logged in to Azure ({one_line(account.stderr, 120)})", "run `az login`")
        return
    account = json.loads(account.stdout)
    subscription = values.get("azure-native:subscriptionId") or environ.get("ARM_SUBSCRIPTION_ID") or account["id"]
    report.good(f"Azure identity {account.get('user', {}).get('name', '?')}, subscription {subscription}")
    token = _az(
        executable,
        "account",
        "get-access-token",
        "--subscription",
        subscription,
        "--resource",
        "https://management.azure.com/",
    )
    if token.returncode != 0:
        report.problem(
            f"no Azure token for subscription {subscription} ({one_line(token.stderr, 120)})",
            "check the subscription id, or `az login` again",
        )
        return
    headers = {"Authorization": f"Bearer {json.loads(token.stdout)['accessToken']}"}
    unregistered = []
    for namespace in RESOURCE_PROVIDERS:
        try:
            response = requests.get(
                f"{arm}/subscriptions/{subscription}/providers/{namespace}",
                params={"api-version": PROVIDERS_API_VERSION},
                headers=headers,
                timeout=30,
            )
        except requests.RequestException as error:
            report.problem(f"Azure Resource Manager could not be reached: {one_line(error)}", "check the network")
            return
        if response.status_code != 200:
            report.problem(
                f"cannot read resource provider {namespace} in subscription {subscription} "
                f"(HTTP {response.status_code}: {one_line(response.text, 150)})",
                "check the subscription id and your role on it (Reader is enough)",
            )
            return
        if response.json().get("registrationState") != "Registered":
            unregistered.append(namespace)
    if unregistered:
        commands = "; ".join(
            f"az provider register --namespace {ns} --subscription {subscription}" for ns in unregistered
        )
        report.problem(
            f"Azure subscription {subscription}: resource providers not registered: {', '.join(unregistered)}", commands
        )
    else:
        report.good(f"Azure resource providers registered: {', '.join(RESOURCE_PROVIDERS)}")
