"""The names docs/ci.md limits the CI identities to: a PR stack's resources all start with its `tinyllmpr<number>`
prefix, and the production stack's AWS names are exactly those its deploying role's policy lists."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_every_resource_of_a_pr_stack_is_named_after_its_prefix(run_stack, stack):
    # Pulumi auto-names a resource from its logical name, so a logical name with the prefix gives a cloud name
    # with it too (the AWS role, the GCP bucket, the Azure resource group).
    deployment = run_stack(stack, namePrefix="tinyllmpr7")
    assert [r.name for r in deployment.resources if not r.name.startswith("tinyllmpr7")] == []


def test_the_production_aws_names_are_the_ones_the_deploy_policy_allows(run_stack):
    deployment = run_stack("aws")
    assert deployment.one("aws:lambda/function:Function").inputs["name"] == "tinyllm"
    assert deployment.one("aws:cloudwatch/logGroup:LogGroup").inputs["name"] == "/aws/lambda/tinyllm"
    assert deployment.one("aws:iam/role:Role").name == "tinyllm-role"  # auto-named tinyllm-role-<suffix>
