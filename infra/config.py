"""Stack configuration for the tinyllm Pulumi program: one frozen dataclass, read once, validated early.

Every key lives in the `tinyllm:` namespace except the region, which is read from the cloud provider's own
key (`gcp:region`, `aws:region`, `azure-native:location`) so the provider and the program never disagree.
Defaults here are the documented defaults; the committed Pulumi.<stack>.yaml files repeat the important ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import pulumi

CLOUDS = ("gcp", "aws", "azure")
REGION_KEYS = {"gcp": ("gcp", "region"), "aws": ("aws", "region"), "azure": ("azure-native", "location")}
AWS_ARCHITECTURES = ("arm64", "x86_64")
# Flex Consumption only offers these instance sizes (MB).
AZURE_INSTANCE_MEMORY_MB = (512, 2048, 4096)


class Package(Protocol):
    """What a cloud component needs from infra.bundle.Bundle: the zip and its content hash."""

    zip_path: Path
    sha256: str


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
    memory_mb: int = 1024
    timeout_seconds: int = 60
    max_instances: int = 3
    public: bool = False
    invokers: tuple[str, ...] = ()
    log_retention_days: int = 14
    architecture: str = "arm64"
    api_key: pulumi.Output[str] | None = field(default=None, compare=False)

    def api_key_sha256(self) -> pulumi.Output[str] | None:
        """The only form of the API key that leaves the program: its hex sha256, still marked secret."""
        if self.api_key is None:
            return None
        return pulumi.Output.secret(self.api_key).apply(lambda key: hashlib.sha256(key.encode()).hexdigest())


def load() -> StackConfig:
    """Read and validate the current stack's configuration."""
    cfg = pulumi.Config("tinyllm")
    cloud = cfg.require("cloud")
    if cloud not in CLOUDS:
        raise ConfigError(f"tinyllm:cloud must be one of {CLOUDS}, got {cloud!r}")
    namespace, key = REGION_KEYS[cloud]
    def value(getter, key, default):
        found = getter(key)  # `x or default` would turn an explicit 0 or false into the default
        return default if found is None else found

    stack = StackConfig(
        cloud=cloud,
        region=pulumi.Config(namespace).require(key),
        name_prefix=value(cfg.get, "namePrefix", "tinyllm"),
        memory_mb=value(cfg.get_int, "memoryMb", 1024),
        timeout_seconds=value(cfg.get_int, "timeoutSeconds", 60),
        max_instances=value(cfg.get_int, "maxInstances", 3),
        public=value(cfg.get_bool, "public", False),
        invokers=tuple(value(cfg.get_object, "invokers", ())),
        log_retention_days=value(cfg.get_int, "logRetentionDays", 14),
        architecture=value(cfg.get, "architecture", "arm64"),
        api_key=cfg.get_secret("apiKey"),
    )
    validate(stack)
    return stack


def validate(stack: StackConfig) -> None:
    """Refuse configurations that cannot work or that silently weaken security."""
    if stack.max_instances < 1:
        raise ConfigError("tinyllm:maxInstances is the cost cap and must be at least 1")
    if stack.public and stack.invokers:
        raise ConfigError("tinyllm:invokers is meaningless with tinyllm:public=true (everyone may invoke)")
    if any(member in ("allUsers", "allAuthenticatedUsers", "*") for member in stack.invokers):
        raise ConfigError("a public invoker in tinyllm:invokers is not allowed: set tinyllm:public=true instead")
    if stack.cloud == "aws":
        if stack.architecture not in AWS_ARCHITECTURES:
            raise ConfigError(f"tinyllm:architecture must be one of {AWS_ARCHITECTURES}")
        if stack.api_key is not None and not stack.public:
            # With AWS_IAM auth the Authorization header carries the SigV4 signature, so a client cannot
            # also send `Authorization: Bearer <key>`: the function would be unreachable.
            raise ConfigError("tinyllm:apiKey needs tinyllm:public=true on AWS (IAM auth already guards it)")
    if stack.cloud == "azure" and stack.memory_mb not in AZURE_INSTANCE_MEMORY_MB:
        raise ConfigError(f"tinyllm:memoryMb on Azure Flex Consumption must be one of {AZURE_INSTANCE_MEMORY_MB}")


def function_environment(stack: StackConfig) -> dict[str, pulumi.Input[str]]:
    """Environment variables every cloud gives the function; the API key only ever as its sha256."""
    env: dict[str, pulumi.Input[str]] = {}
    digest = stack.api_key_sha256()
    if digest is not None:
        env["TINYLLM_API_KEY_SHA256"] = digest
    if stack.cloud == "azure":
        env["TINYLLM_AZURE_AUTH_LEVEL"] = "ANONYMOUS" if stack.public else "FUNCTION"
    return env
