"""What a first `pulumi up` needs that mocks alone would accept without it (issue #9), asserted on the program's
resources under mocks: each test names the provider fact it encodes (sources cited beside the code in infra/)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from infra_mocks import GCP_PROJECT_NUMBER, SUBSCRIPTION

from infra import naming
from infra.azure import (
    PUSH_DEADLINE_SECONDS,
    PUSH_DELAY_SECONDS,
    PUSH_TIMEOUT_SECONDS,
    PUSH_TRIES,
    PUSH_TRY_SECONDS,
    push_command,
)
from infra.config import DEFAULTS, ConfigError, StackConfig, from_values
from infra.gcp import GCF_SOURCES_ROLE, REQUIRED_APIS
from infra.policy.tinyllm_rules import violations

REPO = Path(__file__).resolve().parents[2]
PERMISSION = "aws:lambda/permission:Permission"
INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"


# -- GCP ----------------------------------------------------------------------------------------------------------
def test_gcp_build_account_may_read_only_this_projects_managed_source_bucket(run_stack):
    deployment = run_stack("gcp")
    build_email = next(
        a.inputs["accountId"]
        for a in deployment.of_type("gcp:serviceaccount/account:Account")
        if a.inputs["accountId"].endswith("-build")
    )
    project_grants = deployment.of_type("gcp:projects/iAMMember:IAMMember")
    (source_read,) = [g.inputs for g in project_grants if g.inputs["role"] == GCF_SOURCES_ROLE]
    assert source_read["member"].startswith(f"serviceAccount:{build_email}@")
    bucket = f"projects/_/buckets/gcf-v2-sources-{GCP_PROJECT_NUMBER}-europe-west1"
    assert source_read["condition"]["expression"] == (
        f'resource.name == "{bucket}" || resource.name.startsWith("{bucket}/objects/")'
    )
    # Every other project-level grant is unconditioned logWriter: no project-wide storage access anywhere.
    assert [g.inputs["role"] for g in project_grants if "condition" not in g.inputs] == ["roles/logging.logWriter"]


def test_gcp_a_condition_for_another_bucket_is_not_the_allow_listed_scope():
    props = {
        "role": GCF_SOURCES_ROLE,
        "member": "serviceAccount:b@p.iam.gserviceaccount.com",
        "condition": {"expression": 'resource.name.startsWith("projects/_/buckets/")'},
    }
    assert any("allow-list" in v for v in violations("gcp:projects/iAMMember:IAMMember", props))


def test_gcp_function_waits_for_every_build_grant_through_a_sleep_triggered_by_their_ids(run_stack):
    deployment = run_stack("gcp")
    sleep = deployment.one("time:index/sleep:Sleep")
    grants = [
        r
        for r in deployment.resources
        if r.name.startswith("tinyllm-build-") and r.type != "gcp:serviceaccount/account:Account"
    ]
    assert len(grants) == 4
    # Google: policy changes propagate in "typically 2 minutes" (cloud.google.com/iam/docs/access-change-propagation).
    assert sleep.inputs["createDuration"] == "120s"
    # Triggers are the grants' ids: the wait runs again only when a grant is replaced, not on every update.
    assert sorted(sleep.inputs["triggers"].values()) == sorted(f"{g.name}-id" for g in grants)
    function_at = deployment.index("tinyllm-function")
    assert all(deployment.index(g.name) < deployment.index(sleep.name) < function_at for g in grants)


@pytest.mark.parametrize("seconds,expected", [(0, None), (90, "90s")])
def test_gcp_iam_wait_is_configurable_and_zero_removes_it(run_stack, seconds, expected):
    deployment = run_stack("gcp", iamWaitSeconds=seconds)
    sleeps = deployment.of_type("time:index/sleep:Sleep")
    assert [s.inputs["createDuration"] for s in sleeps] == ([expected] if expected else [])
    assert deployment.index("tinyllm-function") > deployment.index("tinyllm-build-gcf-sources")


def test_gcp_exports_the_cloud_run_uri_not_the_cloudfunctions_net_url(run_stack):
    deployment = run_stack("gcp")
    assert deployment.outputs["url"] == "https://tinyllm-abc123xyz-ew.a.run.app"


def test_gcp_required_apis_are_listed_in_the_deploy_and_ci_guides():
    assert {"cloudresourcemanager.googleapis.com", "iam.googleapis.com"} <= set(REQUIRED_APIS)
    for document in ("docs/deploying.md", "docs/ci.md"):
        text = (REPO / document).read_text()
        assert [api for api in REQUIRED_APIS if api not in text] == [], document


# -- names by principal (GCP bindings, AWS permissions) -----------------------------------------------------------
@pytest.mark.parametrize(
    "stack,resource_type,members",
    [
        ("gcp", INVOKER, ["user:alice@example.com", "serviceAccount:ci@p.iam.gserviceaccount.com"]),
        ("aws", PERMISSION, ["111111111111", "arn:aws:iam::222222222222:role/caller"]),
    ],
)
def test_removing_one_principal_leaves_the_others_grants_untouched(run_stack, stack, resource_type, members):
    def grants_of(deployment):
        return {(r.name, r.inputs.get("statementId")) for r in deployment.of_type(resource_type)}

    both, second_only = run_stack(stack, invokers=members), run_stack(stack, invokers=members[1:])
    assert grants_of(second_only) < grants_of(both)
    assert len(grants_of(both)) == 2 * len(grants_of(second_only))


def test_aws_statement_ids_are_valid_and_distinct():
    members = ["111111111111", "arn:aws:iam::111111111111:root", "arn:aws:iam::111111111111:role/" + "x" * 80]
    slugs = [naming.principal_slug(m) for m in members]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,80}", f"InvokeFunctionUrl-{slug}") for slug in slugs)


# -- AWS ----------------------------------------------------------------------------------------------------------
def test_aws_public_function_leaves_its_two_statements_to_the_provider_and_never_reuses_their_ids(run_stack):
    # The provider adds FunctionURLAllowPublicAccess and FunctionURLAllowInvokeAction when it creates a NONE URL;
    # whether it tolerates an existing FunctionURLAllowInvokeAction is unverified, so the program creates no statement
    # under either id (a first public deploy cannot fail with "statement id ... already exists").
    deployment = run_stack("aws", public=True)
    assert deployment.one("aws:lambda/functionUrl:FunctionUrl").inputs["authorizationType"] == "NONE"
    assert deployment.of_type(PERMISSION) == []
    with_invokers = run_stack("aws", invokers=["111111111111"])
    statement_ids = {p.inputs["statementId"] for p in with_invokers.of_type(PERMISSION)}
    assert len(statement_ids) == 2
    assert not statement_ids & {"FunctionURLAllowPublicAccess", "FunctionURLAllowInvokeAction"}


def test_aws_url_is_replaced_when_its_auth_type_changes_so_the_provider_adds_the_public_statements(run_stack):
    # The provider adds them on create only; a private stack turned public must re-create its URL (one per function,
    # so the old one goes first).
    options = run_stack("aws", public=True).options["tinyllm-url"]
    assert options.replace_on_changes == ["authorizationType"]
    assert options.delete_before_replace is True


def test_aws_max_instances_zero_means_no_reservation_and_the_rules_refuse_it_unless_allowed(run_stack):
    deployment = run_stack("aws", maxInstances=0)
    function = deployment.one("aws:lambda/function:Function")
    assert function.inputs["reservedConcurrentExecutions"] == -1
    assert any("allowUncapped" in v for v in violations(function.type, function.inputs))
    assert violations(function.type, function.inputs, allow_uncapped=True) == []
    # The pack's switch for it: `--policy-pack-config policy/uncapped.json`.
    config = json.loads((REPO / "infra" / "policy" / "uncapped.json").read_text())
    assert config == {"tinyllm-least-privilege": {"allowUncapped": True}}


@pytest.mark.parametrize("stack", ["gcp", "azure"])
def test_max_instances_zero_is_refused_where_it_is_not_a_documented_value(run_stack, stack):
    with pytest.raises(ConfigError, match="at least 1"):
        run_stack(stack, maxInstances=0)


# -- Azure --------------------------------------------------------------------------------------------------------
def test_azure_storage_account_name_is_explicit_valid_and_stable_for_the_longest_allowed_prefix(run_stack):
    prefix = "p" * 16
    first = run_stack("azure", namePrefix=prefix).one("azure-native:storage:StorageAccount").inputs["accountName"]
    again = run_stack("azure", namePrefix=prefix).one("azure-native:storage:StorageAccount").inputs["accountName"]
    assert first == again == naming.storage_account_name(prefix, SUBSCRIPTION, "azure")
    assert re.fullmatch(r"[a-z0-9]{24}", first) and first.startswith(prefix)


@given(st.from_regex(naming.NAME_PREFIX_PATTERN, fullmatch=True), st.text(max_size=40), st.text(max_size=20))
def test_every_allowed_prefix_gives_a_valid_storage_account_name(prefix, subscription, stack):
    name = naming.storage_account_name(prefix, subscription, stack)
    assert re.fullmatch(r"[a-z0-9]{3,24}", name) and name.startswith(prefix)


@pytest.mark.parametrize("prefix", ["tinyllmpr10000host", "Tinyllm", "tiny-llm", "ab", "1tinyllm"])
def test_an_impossible_prefix_is_refused_with_the_limit_named(run_stack, prefix):
    with pytest.raises(ConfigError, match=r"namePrefix must be 3 to 16 lowercase letters or digits.*24"):
        run_stack("azure", namePrefix=prefix)


def test_azure_logs_go_to_a_workspace_based_insights_with_identity_ingestion_only(run_stack):
    deployment = run_stack("azure", logRetentionDays=90)
    workspace = deployment.one("azure-native:operationalinsights:Workspace")
    insights = deployment.one("azure-native:applicationinsights:Component").inputs
    assert workspace.inputs["retentionInDays"] == 90
    assert insights["workspaceResourceId"].endswith(f"/workspaces/{workspace.name}")
    assert (insights["ingestionMode"], insights["disableLocalAuth"]) == ("LogAnalytics", True)
    app = deployment.one("azure-native:web:WebApp").inputs
    settings = {s["name"]: s["value"] for s in app["siteConfig"]["appSettings"]}
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"].startswith("InstrumentationKey=")
    assert "<request-id>" in deployment.outputs["log_query"]


def test_azure_log_retention_outside_log_analytics_range_is_refused(run_stack):
    with pytest.raises(ConfigError, match="30 to 730"):
        run_stack("azure", logRetentionDays=14)


def test_azure_push_names_the_subscription_turns_remote_build_off_and_is_bounded(run_stack):
    command = run_stack("azure").one("command:local:Command").inputs["create"]
    assert f"--subscription {SUBSCRIPTION}" in command
    assert "--build-remote false" in command
    assert f"--timeout {PUSH_TIMEOUT_SECONDS}" in command
    assert f"-ge {PUSH_TRIES}" in command and f"sleep {PUSH_DELAY_SECONDS}" in command
    assert f"+ {PUSH_DEADLINE_SECONDS} ))" in command and f"limit={PUSH_TRY_SECONDS};" in command
    assert (PUSH_TRIES, PUSH_DELAY_SECONDS) == (10, 30)
    # One try outlasts az's own wait for the deployment (its --timeout) plus the 60 s it sleeps before its health
    # check; the whole push ends well before the CI job's timeout, leaving the rest of `pulumi up` its time.
    assert PUSH_TRY_SECONDS > PUSH_TIMEOUT_SECONDS + 60
    job_minutes = yaml.safe_load((REPO / ".github/workflows/pulumi-stack.yml").read_text())["jobs"]["pulumi"][
        "timeout-minutes"
    ]
    assert job_minutes * 60 - 5 * 60 >= PUSH_DEADLINE_SECONDS + PUSH_TRY_SECONDS


def fake_az(tmp_path: Path, failures: int) -> Path:
    """An `az` that fails `failures` times (as Flex does while the role assignment propagates), then succeeds."""
    script = tmp_path / "bin" / "az"
    script.parent.mkdir()
    script.write_text(f"""#!/bin/sh
echo "$@" >> "{tmp_path}/calls"
count=$(wc -l < "{tmp_path}/calls")
[ "$count" -gt {failures} ] || {{ echo "403 This request is not authorized" >&2; exit 3; }}
""")
    script.chmod(0o755)
    return script.parent


def run_push(command: str, bin_dir: Path) -> subprocess.CompletedProcess:
    """Run the push in a process group of its own; when it returns, nothing it started (a try, a watchdog, a
    watchdog's sleep) may still be running in that group."""
    push = subprocess.Popen(
        ["/bin/sh", "-c", command],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, numbered by its pid
    )
    stdout, stderr = push.communicate(timeout=30)  # a try that is never stopped would raise TimeoutExpired here
    groups = subprocess.run(["ps", "-eo", "pgid=,args="], capture_output=True, text=True).stdout.splitlines()
    left = [line for line in groups if line.split(maxsplit=1)[0] == str(push.pid)]
    assert left == [], f"processes outlived the push: {left}"
    return subprocess.CompletedProcess(push.args, push.returncode, stdout, stderr)


@pytest.mark.parametrize("failures,tries,exit_code,calls", [(0, 10, 0, 1), (2, 10, 0, 3), (99, 4, 3, 4)])
def test_the_push_retries_until_success_and_stops_after_the_last_try(tmp_path, failures, tries, exit_code, calls):
    bin_dir = fake_az(tmp_path, failures)
    command = push_command("rg", "app", "dist/azure.zip", "sub-1", tries=tries, delay=0, try_seconds=787)
    result = run_push(command, bin_dir)
    assert result.returncode == exit_code
    lines = (tmp_path / "calls").read_text().splitlines()
    assert len(lines) == calls
    assert lines[0] == (
        "functionapp deployment source config-zip --resource-group rg --name app --src "
        f"dist/azure.zip --subscription sub-1 --build-remote false --timeout {PUSH_TIMEOUT_SECONDS}"
    )
    if exit_code:
        assert f"package push to app failed {tries} times" in result.stderr
        assert "Storage Blob Data Owner" in result.stderr and "az functionapp log deployment show" in result.stderr


def test_a_try_that_hangs_is_stopped_and_the_whole_push_ends_at_its_deadline(tmp_path):
    # An az that never returns, as when the host never answers /admin/host/status: each try is killed after
    # try_seconds, and no try starts once the deadline is near.
    script = tmp_path / "bin" / "az"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/calls"\nexec sleep 600\n')
    script.chmod(0o755)
    command = push_command("rg", "app", "dist/azure.zip", "sub-1", delay=0, try_seconds=1, deadline_seconds=3)
    result = run_push(command, script.parent)
    assert result.returncode != 0
    # Ten tries are allowed, but the deadline (3 s, tries of 1 s) leaves room for four at most.
    assert 1 <= len((tmp_path / "calls").read_text().splitlines()) <= 4
    assert "within 3s" in result.stderr and "Then run pulumi up again." in result.stderr


# -- config -------------------------------------------------------------------------------------------------------
def test_config_defaults_are_the_dataclass_defaults():
    stack = from_values({"tinyllm:cloud": "gcp", "gcp:region": "europe-west1"}.get)
    # memoryMb's default (0) is chosen from the default model once it is trained (infra.memory)
    assert dataclasses.replace(stack, memory_mb=0) == StackConfig(cloud="gcp", region="europe-west1")
    assert DEFAULTS["max_instances"] == StackConfig.__dataclass_fields__["max_instances"].default


@pytest.mark.parametrize(
    "key,raw,message",
    [
        ("memoryMb", "lots", "tinyllm:memoryMb must be an integer"),
        ("public", "yes", "tinyllm:public must be true or false"),
        ("invokers", "user:a@example.com", "tinyllm:invokers must be a list of strings"),
    ],
)
def test_malformed_config_values_name_the_key(key, raw, message):
    values = {"tinyllm:cloud": "gcp", "gcp:region": "europe-west1", f"tinyllm:{key}": raw}
    with pytest.raises(ConfigError, match=message):
        from_values(values.get)
