"""The policy pack, run as `pulumi preview|up --policy-pack infra/policy` runs it (tests/infra/policy_harness.py):
its own gRPC server, configured from the same JSON files CI passes, judging the program's resources."""

from __future__ import annotations

import json

import pytest
import yaml
from policy_harness import MANDATORY, POLICY_DIR, StackResource, from_deployment

from infra.policy.pack import RESOURCE_POLICY, STACK_POLICY
from infra.policy.tinyllm_rules import UNKNOWN_SENTINELS

PRIVATE, PUBLIC, UNCAPPED = (POLICY_DIR / name for name in ("private.json", "public.json", "uncapped.json"))


def test_the_pack_serves_two_mandatory_policies_that_the_config_files_name(pack):
    policies = {policy.name: policy.enforcementLevel for policy in pack.info().policies}
    assert policies == {RESOURCE_POLICY: MANDATORY, STACK_POLICY: MANDATORY}
    for config in (PRIVATE, PUBLIC, UNCAPPED):
        assert set(json.loads(config.read_text())) <= set(policies), config.name
    manifest = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
@pytest.mark.parametrize("prefix", ["tinyllm", "tinyllmpr12"])
def test_pack_passes_each_committed_stack_and_its_pr_stacks(pack, run_stack, stack, prefix):
    resources = from_deployment(run_stack(stack, namePrefix=prefix))
    assert pack.violations(resources, PRIVATE) == []


@pytest.mark.parametrize("stack,refusal", [("gcp", "without public: true"), ("aws", "must use AWS_IAM auth")])
def test_pack_blocks_a_public_stack_unless_allow_public_is_configured(pack, run_stack, stack, refusal):
    resources = from_deployment(run_stack(stack, public=True))
    assert any(refusal in message for message in pack.violations(resources, PRIVATE))
    assert pack.violations(resources, PUBLIC) == []


def test_gcp_configured_invokers_pass(pack, run_stack):
    members = ["user:alice@example.com", "serviceAccount:ci@p.iam.gserviceaccount.com"]
    assert pack.violations(from_deployment(run_stack("gcp", invokers=members)), PRIVATE) == []


def test_a_value_unknown_during_preview_is_reported_as_not_checkable_yet_not_as_passing_or_failing(pack, run_stack):
    unknown = next(iter(UNKNOWN_SENTINELS))
    resources = from_deployment(run_stack("aws"))
    previewed = [
        StackResource(r.type, r.name, {**r.inputs, "policy": unknown}, {**r.outputs, "policy": unknown})
        if r.type == "aws:iam/rolePolicy:RolePolicy"
        else r
        for r in resources
    ]
    verdicts = pack.verdicts(previewed, PRIVATE)
    assert [v for v in verdicts if v.mandatory] == []
    assert any("can't run policy" in v.message for v in verdicts)
