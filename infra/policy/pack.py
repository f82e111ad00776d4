"""The pack's policies: thin pulumi-policy wrappers around tinyllm_rules, importable without serving a pack.

- `tinyllm-least-privilege` (ResourceValidationPolicy): each resource's own rules, on its inputs, before the
  engine creates or updates it, so a bad grant never reaches the cloud. Config: `allowPublic`, `allowUncapped`.
- `tinyllm-own-resources` (StackValidationPolicy): every grant is on this stack's own resource and to this
  stack's own identity. The engine runs stack policies on the final outputs of every resource ("Unlike Analyze,
  AnalyzeStack is called on the final outputs of each resource": pulumi/pulumi pkg/resource/deploy/
  step_generator.go), so on `pulumi up` a violation fails the update after the resources are registered.

A value not known during a preview makes the policy report that it cannot run yet (pulumi-policy's
UnknownValueError, an advisory diagnostic); `pulumi up` then checks it with the real values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

try:  # as a package (tests) or as a script's sibling (pulumi running __main__.py)
    from infra.policy import tinyllm_rules as rules
except ImportError:  # pragma: no cover - exercised by the Pulumi CLI only
    import tinyllm_rules as rules

RESOURCE_POLICY = "tinyllm-least-privilege"
STACK_POLICY = "tinyllm-own-resources"
SWITCHES = PolicyConfigSchema(
    properties={
        "allowPublic": {"type": "boolean", "default": False},
        "allowUncapped": {"type": "boolean", "default": False},
    },
)


def plain(value: Any) -> Any:
    """pulumi-policy's unknown-checking proxies as plain dicts and lists; unknowns stay as their sentinels."""
    if isinstance(value, Mapping):
        return plain_dict(value)
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        target = value if isinstance(value, list) else proxied(value)
        return [plain(item) for item in target]
    return value


def plain_dict(value: Mapping[str, Any]) -> dict[str, Any]:
    target = value if isinstance(value, dict) else proxied(value)
    return {key: plain(item) for key, item in target.items()}


def proxied(proxy: Any) -> Any:
    """The list or dict a proxy wraps: pulumi_policy/proxy.py's _ListProxy and _DictProxy answer the key "__target"
    with it (their item access only checks other keys for unknowns), outside the Sequence/Mapping protocols."""
    return proxy["__target"]


def _report(messages: list[str], report_violation: ReportViolation) -> None:
    for message in messages:
        report_violation(message, None)


def _validate_resource(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    allow_public, allow_uncapped = bool(config.get("allowPublic", False)), bool(config.get("allowUncapped", False))
    try:
        _report(
            rules.violations(args.resource_type, plain_dict(args.props), allow_public, allow_uncapped), report_violation
        )
    except rules.UnknownValue as unknown:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, [str(unknown)]) from None


def _validate_stack(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    resources = [rules.Resource(r.resource_type, r.name, plain_dict(r.props)) for r in args.resources]
    try:
        _report(rules.ownership_violations(resources), report_violation)
    except rules.UnknownValue as unknown:
        raise UnknownValueError(UNKNOWN_STRING_VALUE, [str(unknown)]) from None


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name=RESOURCE_POLICY,
            description="Only allow-listed IAM grants (every policy-bearing resource parsed, no NotAction/"
            "NotResource, no managed policies, no wildcards or primitive roles), public principals only "
            "to invoke the function and only with allowPublic, private storage, HTTPS only and a cost "
            "cap on every function.",
            validate=_validate_resource,
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=SWITCHES,
        ),
        StackValidationPolicy(
            name=STACK_POLICY,
            description="Every grant is on this stack's own log group, function, bucket, repository, Cloud Run "
            "service or storage account, and to this stack's own identity; every S3 bucket is private and "
            "encrypted, and the only source of a function's code.",
            validate=_validate_stack,
            enforcement_level=EnforcementLevel.MANDATORY,
        ),
    ]
