"""docs/ci.md's set-up commands as a specification: the AWS policies its shell functions write (run here with
bash), the gcloud and az commands that must not stop a script, the Azure preview's roles, and the local policy-pack
command runnable from the repository root."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys

import pytest
from workflow_files import DOCS, ROOT

from infra.naming import Names

sys.path.insert(0, str(ROOT / "tests" / "infra"))
from parliament_compat import analyze_policy_string

TEXT = DOCS.read_text(encoding="utf-8")
ACCOUNT, REGION = "123456789012", "eu-west-1"
KEY, PR_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/production", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/pr-stacks"


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", markdown, re.S)


def commands(block: str) -> list[str]:
    """The block's commands, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        line.split(" #", 1)[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


# -- AWS: the documents the documented functions write ------------------------------------------------------------


@pytest.fixture(scope="module")
def aws_policies(tmp_path_factory) -> dict[str, dict]:
    """Run the AWS section's policy functions and the lines that call them (not the `aws` calls) in bash."""
    script = TEXT[TEXT.index("boundary_policy() {") : TEXT.index("aws iam put-role-policy --role-name tinyllm-deploy")]
    script = "\n".join(line for line in script.splitlines() if not line.startswith("aws "))
    directory = tmp_path_factory.mktemp("aws-policies")
    env = {"ACCOUNT": ACCOUNT, "REGION": REGION, "KEY": KEY, "PR_KEY": PR_KEY, "PATH": "/usr/bin:/bin"}
    subprocess.run(["bash", "-e", "-c", script], cwd=directory, env=env, check=True, capture_output=True, text=True)
    return {path.stem: json.loads(path.read_text()) for path in directory.glob("*.json")}


def statements(policy: dict, action: str) -> list[dict]:
    return [
        s for s in policy["Statement"] if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]


def test_the_documented_aws_policies_are_the_five_expected(aws_policies):
    assert set(aws_policies) == {
        "boundary-production",
        "boundary-pr-stacks",
        "deploy-production",
        "deploy-pr-stacks",
        "preview",
    }


@pytest.mark.parametrize("role,function", [("deploy-production", "tinyllm"), ("deploy-pr-stacks", "tinyllmpr*")])
def test_a_deploying_role_calls_its_own_url_with_both_actions_lambda_requires(aws_policies, role, function):
    # Since October 2025: lambda:InvokeFunctionUrl and lambda:InvokeFunction (docs.aws.amazon.com/lambda/latest/dg/
    # urls-auth.html), the latter only through the URL.
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function}"
    (url,) = statements(aws_policies[role], "lambda:InvokeFunctionUrl")
    (invoke,) = statements(aws_policies[role], "lambda:InvokeFunction")
    assert url["Resource"] == invoke["Resource"] == arn
    assert invoke["Condition"] == {"Bool": {"lambda:InvokedViaFunctionUrl": "true"}}


@pytest.mark.parametrize(
    "role,boundary", [("deploy-production", "tinyllm-boundary"), ("deploy-pr-stacks", "tinyllmpr-boundary")]
)
def test_a_deploying_role_creates_roles_only_with_its_permissions_boundary(aws_policies, role, boundary):
    policy = aws_policies[role]
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy"):
        (statement,) = statements(policy, action)
        assert statement["Condition"] == {
            "ArnEquals": {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/{boundary}"}
        }
    granted = {
        a
        for s in policy["Statement"]
        if s["Effect"] == "Allow"
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert not granted & {"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy"}


@pytest.mark.parametrize("boundary,group", [("boundary-production", "tinyllm"), ("boundary-pr-stacks", "tinyllmpr*")])
def test_the_boundary_allows_at_most_writing_the_functions_own_logs(aws_policies, boundary, group):
    (statement,) = aws_policies[boundary]["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{group}:*"


def test_each_environment_has_its_own_state_and_key_and_preview_only_reads(aws_policies):
    def writes(policy):  # to the state bucket (the code buckets are the next test's)
        return {
            s["Resource"]
            for s in statements(policy, "s3:PutObject")
            if s["Effect"] == "Allow" and "my-tinyllm-state" in s["Resource"]
        }

    production, pr_stacks, preview = (aws_policies[n] for n in ("deploy-production", "deploy-pr-stacks", "preview"))
    assert writes(pr_stacks) == {"arn:aws:s3:::my-tinyllm-state/pr-stacks/*"}
    (deny,) = [s for s in production["Statement"] if s["Effect"] == "Deny"]
    assert deny["Resource"] == "arn:aws:s3:::my-tinyllm-state/pr-stacks/*" and "s3:PutObject" in deny["Action"]
    assert writes(preview) == set() and not statements(preview, "s3:DeleteObject")
    assert {s["Resource"] for s in statements(production, "kms:Decrypt")} == {KEY}
    assert {s["Resource"] for s in statements(pr_stacks, "kms:Decrypt")} == {PR_KEY}
    ((secrets,),) = [[s for s in preview["Statement"] if s["Sid"] == "Secrets"]]
    assert (secrets["Action"], secrets["Resource"]) == (["kms:Decrypt"], KEY)


@pytest.mark.parametrize(
    "role,prefix,other", [("deploy-production", "tinyllm", "tinyllmpr7"), ("deploy-pr-stacks", "tinyllmpr7", "tinyllm")]
)
def test_a_deploying_role_writes_only_its_own_stacks_code_buckets(aws_policies, role, prefix, other):
    # The program auto-names the bucket from Names.child("code"); Pulumi appends "-" and a random suffix.
    def granted(resource: str) -> set[str]:
        return {
            a
            for s in aws_policies[role]["Statement"]
            if s["Effect"] == "Allow"
            and s["Resource"].startswith("arn:aws:s3:::")
            and "state" not in s["Resource"]
            and fnmatch.fnmatchcase(resource, s["Resource"])
            for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }

    own, others = (
        f"arn:aws:s3:::{Names(prefix).child('code')}-1a2b3c4",
        f"arn:aws:s3:::{Names(other).child('code')}-1a2b3c4",
    )
    assert {"s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration"} <= granted(own)
    assert {"s3:PutObject", "s3:GetObject"} <= granted(own + "/" + "0" * 64 + ".zip")
    assert granted(others) == set() and granted(others + "/x.zip") == set()


def test_parliament_finds_nothing_but_the_condition_key_newer_than_its_data(aws_policies):
    # parliament 1.6.4's IAM data predates lambda:InvokedViaFunctionUrl (October 2025); everything else must be clean.
    for name, policy in aws_policies.items():
        findings = analyze_policy_string(json.dumps(policy)).findings
        left = [f for f in findings if "lambda:InvokedViaFunctionUrl" not in str(f.detail)]
        assert left == [], (name, [(f.issue, f.detail) for f in left])


# -- gcloud and az commands that would stop a script ----------------------------------------------------------------


def test_every_project_binding_says_its_condition_so_gcloud_never_prompts():
    bindings = [
        c for b in shell_blocks(TEXT) for c in commands(b) if c.startswith("gcloud projects add-iam-policy-binding")
    ]
    assert len(bindings) >= 4
    assert [c for c in bindings if "--condition" not in c] == []


def test_azure_data_plane_commands_after_role_assignments_are_retried():
    block = next(b for b in shell_blocks(TEXT) if "az storage container create" in b)
    for command in commands(block):
        if command.startswith(("az storage container create", "az keyvault key create")):
            assert command.startswith("retry "), command
    assert [c for c in commands(block) if re.match(r"az (storage container|keyvault key) create", c)] == []


def test_the_retry_helper_retries_until_success_and_gives_up(tmp_path):
    block = next(b for b in shell_blocks(TEXT) if "retry() {" in b)
    helper = block[block.index("retry() {") : block.index("\n}\n", block.index("retry() {")) + 3]
    counter = tmp_path / "n"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); echo $((n + 1)) > {counter}; [ "$n" -ge 2 ]'
    script = f"{helper}\nsleep() {{ :; }}\nflaky() {{ {flaky}; }}\nretry flaky"
    assert subprocess.run(["bash", "-c", script], capture_output=True).returncode == 0
    assert counter.read_text().strip() == "3"
    assert (
        subprocess.run(["bash", "-c", f"{helper}\nsleep() {{ :; }}\nretry false"], capture_output=True).returncode == 1
    )


# -- copy-pasteable from where the page says to run them ------------------------------------------------------------
# (every block's working directory, make targets and paths: tests/workflows/test_docs_commands.py, for all docs)


def test_the_policy_pack_command_names_paths_that_exist_from_the_root():
    (command,) = [c for b in shell_blocks(TEXT) for c in commands(b) if "--policy-pack" in c]
    assert command.startswith(".venv/bin/python -m infra.deploy ")
    for path in re.findall(r'"\$PWD/([^"]+)"', command):
        assert (ROOT / path).exists(), path


# -- Azure preview: the one look-up a preview makes ------------------------------------------------------------------


def test_the_azure_preview_app_reads_the_production_group_only():
    # infra/azure.py looks the existing group up (get_resource_group), and Pulumi runs invokes during a preview.
    preview_roles = [
        c
        for b in shell_blocks(TEXT)
        for c in commands(b)
        if c.startswith('az role assignment create --assignee "$PREVIEW_APP"')
    ]
    scopes = dict(re.fullmatch(r".* --role (.+?) +--scope (.+)", c).groups() for c in preview_roles)
    assert scopes == {
        "Reader": '"/subscriptions/$SUBSCRIPTION/resourceGroups/tinyllm"',
        '"Storage Blob Data Reader"': '"$STATE_ACCOUNT/blobServices/default/containers/state"',
        '"Key Vault Crypto User"': '"$VAULT/keys/pulumi"',
    }


def test_azure_login_needs_no_allow_no_subscriptions(by_name):
    # With a role on a group the app sees its subscription; allow-no-subscriptions is for tenants without one
    # (Azure/login action.yml), and would hide a wrong subscription id.
    (login,) = [
        s for s in by_name["pulumi-stack.yml"].jobs["pulumi"]["steps"] if s.get("uses", "").startswith("azure/login@")
    ]
    assert login["with"]["subscription-id"] == "${{ vars.AZURE_SUBSCRIPTION_ID }}"
    assert "allow-no-subscriptions" not in login["with"]
