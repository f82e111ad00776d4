"""The policy pack's validators, run the way the Pulumi engine runs them, on the program's mocked resources."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml
from pulumi_policy import EnforcementLevel, PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from infra.policy.pack import policies

POLICY_DIR = Path(__file__).resolve().parents[2] / "infra" / "policy"


def report_violation(messages: list[str], resource_name: str, message: str, urn: str | None = None) -> None:
    messages.append(f"{resource_name}: {message}")


def run_pack(deployment, allow_public: bool) -> list[str]:
    messages: list[str] = []
    for policy in policies():
        for resource in deployment.resources:
            args = ResourceValidationArgs(
                resource_type=resource.type, props=resource.inputs, urn=f"urn:{resource.name}", name=resource.name,
                opts=PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), []),
                provider=None, config={"allowPublic": allow_public},
            )
            report = functools.partial(report_violation, messages, resource.name)  # bound now, not at call time
            # None: the validators ran now (an async one would return an awaitable and report later).
            assert policy.validate(args, report) is None
    return messages


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_pack_passes_each_committed_stack(run_stack, stack):
    assert run_pack(run_stack(stack), allow_public=False) == []


@pytest.mark.parametrize("stack", ["gcp", "aws"])
def test_pack_blocks_a_public_stack_unless_allow_public_is_configured(run_stack, stack):
    deployment = run_stack(stack, public=True)
    assert run_pack(deployment, allow_public=False)
    assert run_pack(deployment, allow_public=True) == []


def test_pack_is_mandatory_and_loadable_by_the_cli():
    (policy,) = policies()
    assert policy.enforcement_level == EnforcementLevel.MANDATORY
    manifest = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert "pulumi-policy" in (POLICY_DIR / "requirements.txt").read_text()
    assert "PolicyPack(" in (POLICY_DIR / "__main__.py").read_text()
