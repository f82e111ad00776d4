"""Stack configuration for the tinyllm Pulumi program: one frozen dataclass, read once, validated early.

Every key lives in the `tinyllm:` namespace except the region, which is read from the cloud provider's own
key (`gcp:region`, `aws:region`, `azure-native:location`) so the provider and the program never disagree.
The defaults are the dataclass's own (`StackConfig`), written once; the committed Pulumi.<stack>.yaml files
repeat the important ones. `from_values` parses raw config strings, so the program (through `load`) and
`python -m infra.preflight` (from `pulumi config --json` or the stack file) apply the same rules. The instance
memory's default follows the model the stack deploys (`tinyllm:modelDir`, else artifacts/model/; infra.memory),
and a configured `tinyllm:memoryMb` too small for that model is refused, before any resource.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import pulumi

from infra.memory import AZURE_INSTANCE_MEMORY_MB, GCP_MEMORY_VCPU, LAMBDA_MEMORY_MB, default_memory_mb, memory_problem
from infra.model_info import DEFAULT_MODEL_DIR, MANIFEST, REPO_ROOT, ModelDirError, ModelInfo, read_model
from infra.naming import NAME_PREFIX_RULE, STORAGE_ACCOUNT_NAME_MAX, valid_name_prefix

CLOUDS = ("gcp", "aws", "azure")
REGION_KEYS = {"gcp": ("gcp", "region"), "aws": ("aws", "region"), "azure": ("azure-native", "location")}
AWS_ARCHITECTURES = ("arm64", "x86_64")
# A Log Analytics workspace keeps data 30 to 730 days (a shorter workspace retention is only for the legacy free tier).
# Source: learn.microsoft.com/azure/azure-monitor/logs/data-retention-configure ("By default, all tables in a Log
# Analytics workspace retain data for 30 days"; "up to two years").
AZURE_LOG_RETENTION_DAYS = (30, 730)
# A user-managed service account id is 6 to 30 lowercase letters, digits and hyphens, starting with a letter and not
# ending with a hyphen; its email is <id>@<project-id>.iam.gserviceaccount.com (so no Google-managed or default
# compute account fits). Source: cloud.google.com/iam/docs/service-accounts-create ("The ID must be between 6 and 30
# characters, and can contain lowercase alphanumeric characters and dashes").
SERVICE_ACCOUNT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
SERVICE_ACCOUNT = re.compile(rf"{SERVICE_ACCOUNT_ID}(@[a-z][a-z0-9-]{{4,28}}[a-z0-9]\.iam\.gserviceaccount\.com)?")
# Resource group names: 1 to 90 letters, digits, underscores, hyphens, periods and parentheses, not ending in a period.
# Source: learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules (Microsoft.Resources).
RESOURCE_GROUP_NAME = re.compile(r"[\w\-.()]{0,89}[\w\-()]", re.ASCII)
# A customer managed policy's ARN (docs.aws.amazon.com/IAM/latest/UserGuide/reference-arns.html: arn:partition:iam::
# account:policy/path/name; names are letters, digits and +=,.@_-).
POLICY_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::[0-9]{12}:policy/([\w+=,.@-]+/)*[\w+=,.@-]+", re.ASCII)


class Package(Protocol):
    """What a cloud component needs from infra.bundle.Bundle: the zip, its content hash, the model it bakes and
    whether it is too large to upload directly (read-only, as the frozen Bundle has them)."""

    @property
    def zip_path(self) -> Path: ...

    @property
    def sha256(self) -> str: ...

    @property
    def model(self) -> ModelInfo: ...

    @property
    def upload_through_storage(self) -> bool: ...


class ConfigError(ValueError):
    """A stack configuration that would deploy something broken or unsafe; raised before any resource."""


T = TypeVar("T")


def provided(value: T | None, what: str) -> T:
    """`value` from a provider's outputs, which the SDKs type as optional; a clear error if the provider left it
    out, instead of an AttributeError on None somewhere inside an apply()."""
    if value is None:
        raise ValueError(f"{what} is missing from the provider's outputs")
    return value


@dataclass(frozen=True)
class StackConfig:
    cloud: str
    region: str
    name_prefix: str = "tinyllm"
    memory_mb: int = 0  # 0: chosen from the model (fit_to_model); set, it must be enough for the model
    model_dir: str = ""  # the model directory to deploy, relative to the repository; empty: artifacts/model
    timeout_seconds: int = 60
    # The cost cap. AWS only: 0 means no reserved concurrency and so no cap (the policy pack refuses it unless
    # its `allowUncapped` is set); GCP and Azure need at least 1.
    max_instances: int = 3
    public: bool = False
    invokers: tuple[str, ...] = ()
    log_retention_days: int = 14
    architecture: str = "arm64"
    # GCP: how long the function waits after its build grants are created or changed (IAM propagation: "typically
    # 2 minutes", cloud.google.com/iam/docs/access-change-propagation; infra/deploy.py covers the longer tail).
    iam_wait_seconds: int = 120
    cors_origins: tuple[str, ...] = ()  # exact browser origins the function answers CORS for (core.api)
    # GCP: pre-created runtime and build service accounts (account id in gcp:project, or an email); both or neither.
    # Set, the program creates no service account and grants the build account only roles on this stack's own
    # resources, so the deployer needs roles/iam.serviceAccountUser on these two accounts only (docs/ci.md).
    runtime_service_account: str = ""
    build_service_account: str = ""
    # Azure: an existing resource group to deploy into (looked up, never created or deleted); empty: the program
    # creates its own. Lets the deploying identity's roles be scoped to that group (docs/ci.md).
    resource_group_name: str = ""
    # AWS: the permissions boundary set on the function's role (a policy ARN). CI's deploying roles may only create
    # roles that carry it (the `iam:PermissionsBoundary` condition, docs/ci.md), so a PR cannot create a role with
    # more than the boundary allows. Empty: no boundary.
    permissions_boundary: str = ""
    api_key: pulumi.Output[str] | None = field(default=None, compare=False)

    def api_key_sha256(self) -> pulumi.Output[str] | None:
        """The only form of the API key that leaves the program: its hex sha256, still marked secret."""
        if self.api_key is None:
            return None
        return pulumi.Output.secret(self.api_key).apply(lambda key: hashlib.sha256(key.encode()).hexdigest())


# `tinyllm:<key>` for each configurable field; every other field is set by the program itself.
CONFIG_KEYS = {
    "name_prefix": "namePrefix",
    "memory_mb": "memoryMb",
    "model_dir": "modelDir",
    "timeout_seconds": "timeoutSeconds",
    "max_instances": "maxInstances",
    "public": "public",
    "invokers": "invokers",
    "log_retention_days": "logRetentionDays",
    "architecture": "architecture",
    "iam_wait_seconds": "iamWaitSeconds",
    "cors_origins": "corsOrigins",
    "runtime_service_account": "runtimeServiceAccount",
    "build_service_account": "buildServiceAccount",
    "resource_group_name": "resourceGroupName",
    "permissions_boundary": "permissionsBoundary",
}
DEFAULTS = {f.name: f.default for f in dataclasses.fields(StackConfig) if f.name in CONFIG_KEYS}


def _parse(key: str, raw: str, default):
    """One raw config string as the type of its default; a clear error naming the key otherwise."""
    name = f"tinyllm:{key}"
    if isinstance(default, bool):
        if raw.lower() not in ("true", "false"):
            raise ConfigError(f"{name} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if isinstance(default, tuple):
        try:
            items = json.loads(raw)
        except json.JSONDecodeError:
            items = None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise ConfigError(f"{name} must be a list of strings, got {raw!r}")
        return tuple(items)
    return raw


def from_values(get: Callable[[str], str | None], *, api_key: pulumi.Output[str] | None = None) -> StackConfig:
    """Build and validate a StackConfig from raw config strings; `get("tinyllm:cloud")` returns the value or None."""
    cloud = get("tinyllm:cloud")
    if cloud not in CLOUDS:
        raise ConfigError(f"tinyllm:cloud must be one of {CLOUDS}, got {cloud!r}")
    region_key = ":".join(REGION_KEYS[cloud])
    region = get(region_key)
    if not region:
        raise ConfigError(f"{region_key} is required: pulumi config set {region_key} <region>")
    values = {}
    for attribute, key in CONFIG_KEYS.items():
        raw = get(f"tinyllm:{key}")  # None: the default (an explicit 0 or false is a value, not a default)
        if raw is not None:
            values[attribute] = _parse(key, raw, DEFAULTS[attribute])
    stack = StackConfig(cloud=cloud, region=region, api_key=api_key, **values)
    validate(stack)
    model = stack_model(stack)
    return stack if model is None else fit_to_model(stack, model)


def model_path(stack: StackConfig) -> Path | None:
    """The configured model directory (relative paths from the repository root), or None for the default."""
    return REPO_ROOT / stack.model_dir if stack.model_dir else None


def stack_model(stack: StackConfig) -> ModelInfo | None:
    """The model the stack deploys, as far as its files tell (sizes, not sha256s: the bundle verifies those); None
    when it is the default model and that is not trained yet (`pulumi up` trains it, then fits the memory)."""
    path = model_path(stack)
    if path is None and not (DEFAULT_MODEL_DIR / MANIFEST).is_file():
        return None
    try:
        return read_model(path or DEFAULT_MODEL_DIR, verify=False)
    except ModelDirError as exc:
        key = "tinyllm:modelDir" if path else "the default model (artifacts/model)"
        raise ConfigError(f"{key}: {exc}") from None


def fit_to_model(stack: StackConfig, model: ModelInfo) -> StackConfig:
    """The stack with its memory chosen for the model (tinyllm:memoryMb unset), or checked against it (set)."""
    memory_mb = stack.memory_mb or default_memory_mb(stack.cloud, model) or 0
    problem = memory_problem(stack.cloud, memory_mb, model)
    if problem:
        raise ConfigError(problem)
    return dataclasses.replace(stack, memory_mb=memory_mb)


def load() -> StackConfig:
    """Read and validate the current stack's configuration."""

    def get(full_key: str) -> str | None:
        namespace, key = full_key.split(":", 1)
        return pulumi.Config(namespace).get(key)

    return from_values(get, api_key=pulumi.Config("tinyllm").get_secret("apiKey"))


def validate(stack: StackConfig) -> None:
    """Refuse configurations that cannot work or that silently weaken security."""
    if not valid_name_prefix(stack.name_prefix):
        raise ConfigError(
            f"tinyllm:namePrefix must be {NAME_PREFIX_RULE}, got {stack.name_prefix!r} (Azure storage account "
            f"names are lowercase letters and digits, at most {STORAGE_ACCOUNT_NAME_MAX} with the 8-character hash)"
        )
    if stack.max_instances < 0 or (stack.max_instances == 0 and stack.cloud != "aws"):
        raise ConfigError(
            "tinyllm:maxInstances is the cost cap and must be at least 1"
            + (" (0, no reservation, exists on AWS only)" if stack.cloud != "aws" else "")
        )
    if stack.public and stack.invokers:
        raise ConfigError("tinyllm:invokers is meaningless with tinyllm:public=true (everyone may invoke)")
    if any(origin == "*" or "," in origin for origin in stack.cors_origins):
        raise ConfigError("tinyllm:corsOrigins lists exact origins (https://app.example), not '*' or a comma list")
    if any(member in ("allUsers", "allAuthenticatedUsers", "*") for member in stack.invokers):
        raise ConfigError("a public invoker in tinyllm:invokers is not allowed: set tinyllm:public=true instead")
    if len(set(stack.invokers)) != len(stack.invokers):
        raise ConfigError("tinyllm:invokers lists a principal twice")
    if (stack.runtime_service_account or stack.build_service_account) and stack.cloud != "gcp":
        raise ConfigError("tinyllm:runtimeServiceAccount and tinyllm:buildServiceAccount exist on GCP only")
    if stack.resource_group_name and stack.cloud != "azure":
        raise ConfigError("tinyllm:resourceGroupName exists on Azure only")
    if stack.permissions_boundary and stack.cloud != "aws":
        raise ConfigError("tinyllm:permissionsBoundary exists on AWS only")
    if stack.permissions_boundary and not POLICY_ARN.fullmatch(stack.permissions_boundary):
        raise ConfigError(
            "tinyllm:permissionsBoundary must be a managed policy ARN (arn:aws:iam::<account>:policy/<name>), "
            f"got {stack.permissions_boundary!r}"
        )
    if stack.cloud == "gcp":
        validate_service_accounts(stack)
    if stack.resource_group_name and not RESOURCE_GROUP_NAME.fullmatch(stack.resource_group_name):
        raise ConfigError(
            f"tinyllm:resourceGroupName must be an Azure resource group name (1-90 letters, digits, "
            f"'_-.()', not ending in '.'), got {stack.resource_group_name!r}"
        )
    if stack.iam_wait_seconds < 0:
        raise ConfigError("tinyllm:iamWaitSeconds must be 0 (no wait) or more")
    validate_memory(stack)
    if stack.cloud == "aws":
        if stack.architecture not in AWS_ARCHITECTURES:
            raise ConfigError(f"tinyllm:architecture must be one of {AWS_ARCHITECTURES}")
        if stack.api_key is not None and not stack.public:
            # With AWS_IAM auth the Authorization header carries the SigV4 signature, so a client cannot
            # also send `Authorization: Bearer <key>`: the function would be unreachable.
            raise ConfigError("tinyllm:apiKey needs tinyllm:public=true on AWS (IAM auth already guards it)")
    if stack.cloud == "azure":
        low, high = AZURE_LOG_RETENTION_DAYS
        if not low <= stack.log_retention_days <= high:
            raise ConfigError(f"tinyllm:logRetentionDays on Azure (Log Analytics) must be {low} to {high} days")


def validate_memory(stack: StackConfig) -> None:
    """A configured memory size must be one the cloud offers (0, the default, is chosen from the model)."""
    if stack.memory_mb == 0:
        return
    low, high = LAMBDA_MEMORY_MB
    if stack.cloud == "aws" and not low <= stack.memory_mb <= high:
        raise ConfigError(f"tinyllm:memoryMb on Lambda must be {low} to {high} (MB)")
    if stack.cloud == "gcp" and not 0 < stack.memory_mb <= max(GCP_MEMORY_VCPU):
        raise ConfigError(f"tinyllm:memoryMb on Cloud Run functions must be 1 to {max(GCP_MEMORY_VCPU)} (MiB)")
    if stack.cloud == "azure" and stack.memory_mb not in AZURE_INSTANCE_MEMORY_MB:
        raise ConfigError(f"tinyllm:memoryMb on Azure Flex Consumption must be one of {AZURE_INSTANCE_MEMORY_MB}")


def validate_service_accounts(stack: StackConfig) -> None:
    """Pre-created GCP accounts: both or neither, each a user-managed account, and two different accounts (the
    runtime account holds no roles, the build account does)."""
    accounts = {
        "runtimeServiceAccount": stack.runtime_service_account,
        "buildServiceAccount": stack.build_service_account,
    }
    if not any(accounts.values()):
        return
    for key, value in accounts.items():
        if not value:
            raise ConfigError(
                f"tinyllm:{key} is required when the other pre-created service account is set (both or neither)"
            )
        if not SERVICE_ACCOUNT.fullmatch(value):
            raise ConfigError(
                f"tinyllm:{key} must be a user-managed service account: an account id (6-30 lowercase "
                f"letters, digits, hyphens) or <id>@<project>.iam.gserviceaccount.com, got {value!r}"
            )
    # By account id: `tinyllm-sa` and `tinyllm-sa@<project>.iam.gserviceaccount.com` may name the same account.
    account_ids = {account.split("@")[0] for account in (stack.runtime_service_account, stack.build_service_account)}
    if stack.runtime_service_account and len(account_ids) == 1:
        raise ConfigError(
            "tinyllm:runtimeServiceAccount and tinyllm:buildServiceAccount must be two different "
            "accounts (the runtime account holds no roles)"
        )


def function_environment(stack: StackConfig) -> dict[str, pulumi.Input[str]]:
    """Environment variables every cloud gives the function; the API key only ever as its sha256."""
    env: dict[str, pulumi.Input[str]] = {}
    digest = stack.api_key_sha256()
    if digest is not None:
        env["TINYLLM_API_KEY_SHA256"] = digest
    if stack.cors_origins:
        env["TINYLLM_CORS_ORIGINS"] = ",".join(stack.cors_origins)
    if stack.cloud == "azure":
        env["TINYLLM_AZURE_AUTH_LEVEL"] = "ANONYMOUS" if stack.public else "FUNCTION"
    return env
