"""A package over Lambda's 50 MiB direct-upload limit goes through S3: an object in a private, encrypted bucket the
stack owns, which the function reads by bucket and key. Checked on the program's resources under Pulumi mocks,
with the pack's rules (tinyllm_rules) and with the policy pack itself (tests/infra/policy_harness.py)."""

from __future__ import annotations

import pytest
from policy_harness import POLICY_DIR, StackResource, from_deployment
from test_infra_least_privilege import all_grants, all_violations

from infra.aws import lambda_code_hash
from infra.policy.tinyllm_rules import Resource, ownership_violations, private_grants, violations

S3 = "aws:s3/"
BUCKET = "aws:s3/bucket:Bucket"
PRIVATE = POLICY_DIR / "private.json"


def test_a_package_lambda_takes_directly_creates_no_bucket(run_stack):
    deployment = run_stack("aws")
    assert not [r for r in deployment.resources if r.type.startswith(S3)]
    function = deployment.one("aws:lambda/function:Function").inputs
    assert "code" in function and "s3Bucket" not in function and "s3Key" not in function


def test_a_larger_package_is_read_from_a_private_encrypted_content_named_object(run_stack, tmp_path):
    deployment = run_stack("aws", upload_through_storage=True)
    bucket = deployment.one(BUCKET)
    bucket_name = f"{bucket.name}-4f2a9c1"  # the mocks' auto-name (tests/infra/infra_mocks.py)
    assert bucket.name == "tinyllm-code" and bucket.inputs["forceDestroy"] is True
    private = deployment.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert private == {
        "bucket": bucket_name,
        "blockPublicAcls": True,
        "blockPublicPolicy": True,
        "ignorePublicAcls": True,
        "restrictPublicBuckets": True,
    }
    owner = deployment.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert owner == {"bucket": bucket_name, "rule": {"objectOwnership": "BucketOwnerEnforced"}}
    encryption = deployment.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert encryption["rules"] == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    obj = deployment.one("aws:s3/bucketObjectv2:BucketObjectv2")
    function = deployment.one("aws:lambda/function:Function")
    sha256 = deployment.outputs["package_sha256"]
    assert obj.inputs["key"] == f"{sha256}.zip" and obj.inputs["serverSideEncryption"] == "AES256"
    assert obj.inputs["source"].path == str(tmp_path / "aws.zip") and "acl" not in obj.inputs
    assert (function.inputs["s3Bucket"], function.inputs["s3Key"]) == (bucket_name, f"{sha256}.zip")
    assert "code" not in function.inputs and function.inputs["sourceCodeHash"] == lambda_code_hash(sha256)
    # The object is written only once the bucket is private and encrypted; the function created only from it.
    for setting in ("code-private", "code-owner", "code-encrypted"):
        assert deployment.index(f"tinyllm-{setting}") < deployment.index(obj.name) < deployment.index(function.name)


def test_the_s3_path_grants_nothing_new_and_passes_every_rule(run_stack):
    # Lambda reads the object with the deploying identity's permissions, never the function role's.
    deployment = run_stack("aws", upload_through_storage=True)
    assert {(g.permission, g.scope_kind) for g in all_grants(deployment)} == private_grants("aws")
    assert not [g for g in all_grants(deployment) if g.permission.startswith("s3:")]
    assert all_violations(deployment, allow_public=False) == []
    stack = [Resource(r.type, r.name, r.outputs) for r in from_deployment(deployment)]
    assert ownership_violations(stack) == []


def test_the_policy_pack_passes_the_s3_path_and_refuses_a_bucket_left_open(pack, run_stack):
    resources = from_deployment(run_stack("aws", upload_through_storage=True))
    assert pack.violations(resources, PRIVATE) == []
    opened = [
        StackResource(
            r.type, r.name, {**r.inputs, "blockPublicPolicy": False}, {**r.outputs, "blockPublicPolicy": False}
        )
        if r.type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
        else r
        for r in resources
    ]
    found = pack.violations(opened, PRIVATE)
    assert any("all four on" in v for v in found) and any("lacks a public access block" in v for v in found)


@pytest.mark.parametrize(
    "missing, complaint",
    [
        ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "lacks a public access block with all four on"),
        ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "lacks ACLs disabled (BucketOwnerEnforced)"),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "lacks default encryption",
        ),
    ],
)
def test_a_bucket_without_one_of_its_settings_is_refused(run_stack, missing, complaint):
    resources = [
        Resource(r.type, r.name, r.outputs)
        for r in from_deployment(run_stack("aws", upload_through_storage=True))
        if r.type != missing
    ]
    assert [v for v in ownership_violations(resources) if "lacks" in v] == [
        f"S3 bucket tinyllm-code-4f2a9c1 {complaint}"
    ]


def test_code_from_a_bucket_the_stack_does_not_own_is_refused(run_stack):
    resources = [
        Resource(r.type, r.name, {**r.outputs, "s3Bucket": "someone-elses-bucket"})
        if r.type == "aws:lambda/function:Function"
        else Resource(r.type, r.name, r.outputs)
        for r in from_deployment(run_stack("aws", upload_through_storage=True))
    ]
    assert any("someone-elses-bucket, which is not this stack's own" in v for v in ownership_violations(resources))


@pytest.mark.parametrize(
    "resource_type, props, expected",
    [
        ("aws:s3/bucket:Bucket", {"acl": "public-read"}, "canned ACL"),
        ("aws:s3/bucket:Bucket", {"website": {"indexDocument": "index.html"}}, "website"),
        ("aws:s3/bucketObjectv2:BucketObjectv2", {"acl": "public-read", "bucket": "b", "key": "k"}, "canned ACL"),
        ("aws:s3/bucketAclV2:BucketAclV2", {"bucket": "b", "acl": "private"}, "ACLs stay disabled"),
        ("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "b", "policy": "{}"}, "uninspected policy-bearing"),
        (
            "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
            {"bucket": "b", "rule": {"objectOwnership": "ObjectWriter"}},
            "BucketOwnerEnforced",
        ),
        (
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            {"bucket": "b", "rules": []},
            "encrypt objects by default",
        ),
    ],
)
def test_s3_rules_reject_common_mistakes(resource_type, props, expected):
    assert any(expected in v for v in violations(resource_type, props, allow_public=True))
