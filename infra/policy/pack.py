"""The pack's policies: thin pulumi-policy wrappers around tinyllm_rules, importable without serving a pack."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

try:  # as a package (tests) or as a script's sibling (pulumi running __main__.py)
    from infra.policy import tinyllm_rules as rules
except ImportError:  # pragma: no cover - exercised by the Pulumi CLI only
    import tinyllm_rules as rules

ALLOW_PUBLIC = PolicyConfigSchema(
    properties={"allowPublic": {"type": "boolean", "default": False},
                "allowUncapped": {"type": "boolean", "default": False}},
)


def _validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    config = args.get_config()
    allow_public, allow_uncapped = bool(config.get("allowPublic", False)), bool(config.get("allowUncapped", False))
    for message in rules.violations(args.resource_type, dict(args.props), allow_public, allow_uncapped):
        report_violation(message, None)


def policies() -> list[ResourceValidationPolicy]:
    return [
        ResourceValidationPolicy(
            name="tinyllm-least-privilege",
            description="Only allow-listed IAM grants, no wildcards or primitive roles, no public access unless "
                        "allowPublic, private storage, HTTPS only and a cost cap on every function.",
            validate=_validate,
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=ALLOW_PUBLIC,
        )
    ]
