"""`python -m infra.preflight STACK`: what it reports for each cloud, against real client libraries talking to local
emulations (moto for AWS; loopback HTTP doubles of the documented REST responses for GCP and Azure; small
stand-ins for the `pulumi` and `az` executables). No network beyond 127.0.0.1, no credentials of anyone's."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from http_doubles import serve
from moto import mock_aws

from infra.config import StackConfig
from infra.gcp import REQUIRED_APIS
from infra.preflight import Report
from infra.preflight import aws as aws_check
from infra.preflight import azure as azure_check
from infra.preflight import gcp as gcp_check
from infra.preflight.__main__ import run

REPO = Path(__file__).resolve().parents[2]


def script(directory: Path, name: str, body: str) -> Path:
    """An executable stand-in for a CLI, written in Python so it runs wherever the tests do."""
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(f"#!{sys.executable}\nimport json, sys\nargs = sys.argv[1:]\n{body}\n")
    path.chmod(0o755)
    return directory


def bare_environment(tmp_path: Path, path: str = "/usr/bin:/bin") -> dict[str, str]:
    """An environment with no cloud credentials at all: empty HOME, no config files, no metadata servers."""
    return {
        "PATH": path,
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "PYTHONPATH": str(REPO),
    }


# -- the command --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "stack,reason",
    [
        ("aws", "no AWS credentials found"),
        ("gcp", "no GCP credentials found"),
        ("azure", "the Azure CLI (`az`) is not installed"),
    ],
)
def test_without_credentials_it_exits_1_with_one_line_per_problem_and_no_traceback(tmp_path, stack, reason):
    result = subprocess.run(
        [sys.executable, "-m", "infra.preflight", stack],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=bare_environment(tmp_path),
    )
    assert result.returncode == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert problems == [
        "PROBLEM  the Pulumi CLI is not installed (`pulumi` is not on PATH) -> install it "
        "(https://www.pulumi.com/docs/install/), then run `pulumi login`",
        next(line for line in problems if reason in line),
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"preflight {stack}: 2 problem(s)"


def test_make_preflight_is_the_first_step_of_make_deploy():
    makefile = (REPO / "Makefile").read_text()
    assert "\npreflight: install\n\t$(BIN)/python -m infra.preflight $(STACK)\n" in makefile
    assert "\ndeploy: preflight\n" in makefile


def test_a_pulumi_cli_that_is_not_logged_in_is_reported(tmp_path, monkeypatch):
    bin_dir = script(tmp_path / "bin", "pulumi", "sys.exit(print('error: no credentials', file=sys.stderr) or 1)")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    report = run_without_cloud(monkeypatch, "aws")
    assert any("the Pulumi CLI is not logged in" in what and "pulumi login" in fix for what, fix in report.problems)


def run_without_cloud(monkeypatch, stack: str) -> Report:
    """`run(stack)` with the cloud check replaced by a recorder: only the CLI and config checks are under test."""
    from infra.preflight import __main__ as preflight_main

    seen = []
    monkeypatch.setitem(preflight_main.CLOUD_CHECKS, "aws", lambda config, values, report: seen.append(config))
    monkeypatch.setitem(preflight_main.CLOUD_CHECKS, "gcp", lambda config, values, report: seen.append(config))
    report = run(stack)
    report.seen = seen
    return report


def test_the_stack_config_comes_from_the_cli_when_logged_in_and_is_validated(tmp_path, monkeypatch):
    config = {
        "tinyllm:cloud": {"value": "gcp", "secret": False},
        "gcp:region": {"value": "us-central1"},
        "tinyllm:maxInstances": {"value": "7"},
        "tinyllm:apiKey": {"value": "[secret]", "secret": True},
    }
    bin_dir = script(
        tmp_path / "bin",
        "pulumi",
        f"""
if args[0] == "whoami": print("alice")
elif args[:4] == ["config", "--json", "--stack", "pr-7-gcp"]: print(json.dumps({config!r}))
else: sys.exit(1)""",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    report = run_without_cloud(monkeypatch, "pr-7-gcp")
    assert report.problems == []
    assert "Pulumi CLI logged in as alice" in report.ok
    (seen,) = report.seen
    assert (seen.cloud, seen.region, seen.max_instances) == ("gcp", "us-central1", 7)


def test_an_invalid_stack_config_is_a_problem_naming_the_key(tmp_path, monkeypatch):
    config = {
        "tinyllm:cloud": {"value": "azure"},
        "azure-native:location": {"value": "westeurope"},
        "tinyllm:namePrefix": {"value": "tinyllmpr10000host"},
    }
    bin_dir = script(
        tmp_path / "bin",
        "pulumi",
        f"""
if args[0] == "whoami": print("alice")
else: print(json.dumps({config!r}))""",
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    report = run_without_cloud(monkeypatch, "pr-10000-azure")
    ((what, _fix),) = report.problems
    assert "tinyllm:namePrefix must be 3 to 16 lowercase letters or digits" in what
    assert report.seen == []


# -- AWS, against moto --------------------------------------------------------------------------------------------
def account_settings(limit: int, unreserved: int, calls: list):
    """GetAccountSettings as documented (API_GetAccountSettings.html), which moto does not implement, answered
    through botocore's own before-send hook so botocore still parses it; every other call goes to moto."""

    def handler(request, **kwargs):
        calls.append(request.url)
        body = {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": 0},
        }

        class Raw:
            def stream(self, **_):
                yield json.dumps(body).encode()

        return AWSResponse(request.url, 200, {"Content-Type": "application/json"}, Raw())

    return handler


@pytest.fixture
def aws_session(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "MOTO_ALLOW_NONEXISTENT_REGION": "false",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.Session(region_name="eu-west-1")


def aws_report(session, limit: int, unreserved: int, max_instances: int = 5) -> tuple[Report, list]:
    calls: list = []
    session.events.register_first("before-send.lambda.GetAccountSettings", account_settings(limit, unreserved, calls))
    report = Report()
    aws_check.check(StackConfig(cloud="aws", region="eu-west-1", max_instances=max_instances), {}, report, session)
    return report, calls


def test_aws_reports_the_identity_and_room_for_the_reservation(aws_session):
    report, calls = aws_report(aws_session, limit=1000, unreserved=1000)
    assert report.problems == []
    assert report.ok[0] == "AWS identity arn:aws:sts::123456789012:user/moto (account 123456789012), region eu-west-1"
    assert "room to reserve 5" in report.ok[1]
    assert len(calls) == 1


def test_aws_new_account_with_a_limit_of_10_cannot_reserve_anything(aws_session):
    report, _ = aws_report(aws_session, limit=10, unreserved=10)
    ((what, fix),) = report.problems
    assert what == (
        "AWS Lambda in eu-west-1: reserving 5 would leave 5 of the account's 10 concurrent executions "
        "unreserved, below Lambda's minimum of 10"
    )
    assert "Concurrent executions' quota" in fix and "tinyllm:maxInstances to 0" in fix
    assert "lower tinyllm:maxInstances" not in fix  # no reservation fits at all


def test_aws_the_functions_own_reservation_counts_as_room(aws_session):
    iam = aws_session.client("iam")
    role = iam.create_role(
        RoleName="tinyllm-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}
                ],
            }
        ),
    )["Role"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return {}\n")
    lambda_client = aws_session.client("lambda")
    lambda_client.create_function(
        FunctionName="tinyllm",
        Runtime="python3.12",
        Role=role["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": package.getvalue()},
    )
    lambda_client.put_function_concurrency(FunctionName="tinyllm", ReservedConcurrentExecutions=5)

    fits, _ = aws_report(aws_session, limit=1000, unreserved=100, max_instances=5)
    assert fits.problems == []
    too_many, _ = aws_report(aws_session, limit=1000, unreserved=100, max_instances=6)
    ((what, fix),) = too_many.problems
    assert "reserving 6 would leave 99" in what and "lower tinyllm:maxInstances to 5" in fix


def test_aws_max_instances_zero_needs_no_reservation_so_the_limit_is_not_read(aws_session):
    report, calls = aws_report(aws_session, limit=10, unreserved=10, max_instances=0)
    assert report.problems == [] and calls == []
    assert "no cost cap" in report.ok[1]


@pytest.mark.parametrize(
    "limit,unreserved,current,requested,fits",
    [
        (1000, 1000, 0, 900, True),
        (1000, 1000, 0, 901, False),
        (10, 10, 0, 1, False),
        (50, 50, 0, 1, False),
        (1000, 100, 5, 5, True),
        (1000, 100, 5, 6, False),
    ],
)
def test_aws_reservation_rule(limit, unreserved, current, requested, fits):
    assert (aws_check.reservation_problem(limit, unreserved, current, requested) is None) == fits


# -- GCP, against a local double of the token and Service Usage endpoints ----------------------------------------
def service_account_key(path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "key-project",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "deploy@key-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def gcp_routes(disabled: set[str], status: int = 200):
    def routes(method, path, query, headers, body):
        if method == "POST" and path == "/token":  # the OAuth token endpoint named by the key file
            return 200, {"access_token": "ya29.local-double", "expires_in": 3600, "token_type": "Bearer"}
        if path.endswith("/services:batchGet"):
            if headers.get("authorization") != "Bearer ya29.local-double":
                return 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials."}}
            if status != 200:
                return status, {"error": {"code": status, "message": "Permission denied to get service [x]"}}
            return 200, {
                "services": [
                    {
                        "name": name.replace("projects/my-project", "projects/314159265358"),
                        "config": {},
                        "state": "DISABLED" if name.rsplit("/", 1)[-1] in disabled else "ENABLED",
                    }
                    for name in query["names"]
                ]
            }
        return 404, {"error": {"code": 404, "message": "not found"}}

    return routes


def gcp_report(tmp_path, disabled=frozenset(), status=200, values=None) -> tuple[Report, list]:
    with serve(gcp_routes(set(disabled), status)) as double:
        key = service_account_key(tmp_path / "key.json", f"{double.url}/token")
        report = Report()
        gcp_check.check(
            StackConfig(cloud="gcp", region="europe-west1"),
            {"gcp:project": "my-project"} if values is None else values,
            report,
            service_usage=double.url,
            environ={"GOOGLE_APPLICATION_CREDENTIALS": str(key)},
        )
        return report, double.requests


def test_gcp_reports_the_service_account_and_that_every_api_is_enabled(tmp_path):
    report, requests = gcp_report(tmp_path)
    assert report.problems == []
    assert report.ok[0].startswith("GCP identity: service account deploy@key-project.iam.gserviceaccount.com")
    assert report.ok[1] == f"GCP project my-project: all {len(REQUIRED_APIS)} required APIs enabled"
    ((_, path, query, _),) = [r for r in requests if r[0] == "GET"]
    assert path == "/v1/projects/my-project/services:batchGet"
    assert query["names"] == [f"projects/my-project/services/{api}" for api in REQUIRED_APIS]


def test_gcp_disabled_apis_are_named_with_the_command_that_enables_them(tmp_path):
    report, _ = gcp_report(tmp_path, disabled={"iam.googleapis.com", "cloudresourcemanager.googleapis.com"})
    ((what, fix),) = report.problems
    assert what == "GCP project my-project: APIs not enabled: iam.googleapis.com, cloudresourcemanager.googleapis.com"
    assert fix == ("gcloud services enable iam.googleapis.com cloudresourcemanager.googleapis.com --project my-project")


def test_gcp_a_refused_api_read_is_a_problem_with_the_permission_to_ask_for(tmp_path):
    report, _ = gcp_report(tmp_path, status=403)
    ((what, fix),) = report.problems
    assert "HTTP 403: Permission denied" in what and "serviceusage.services.get" in fix


def test_gcp_project_falls_back_to_the_credentials_project(tmp_path):
    _, requests = gcp_report(tmp_path, values={})
    assert any(path == "/v1/projects/key-project/services:batchGet" for _, path, _, _ in requests)


def test_gcp_user_credentials_send_their_quota_project_with_the_api_read(tmp_path):
    # `gcloud auth application-default login` credentials carry a quota project; Service Usage may refuse a user's
    # call without it, so the read goes through google-auth's AuthorizedSession, which adds x-goog-user-project.
    with serve(gcp_routes(set())) as double:
        user = tmp_path / "adc.json"
        user.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": "c",
                    "client_secret": "s",
                    "refresh_token": "r",
                    "quota_project_id": "billing-project",
                    # google-auth always refreshes user credentials at Google's own token endpoint, so the test
                    # gives them an unexpired token instead of a local token_uri.
                    "token": "ya29.local-double",
                    "expiry": "2999-01-01T00:00:00Z",
                }
            )
        )
        report = Report()
        gcp_check.check(
            StackConfig(cloud="gcp", region="europe-west1"),
            {"gcp:project": "my-project"},
            report,
            service_usage=double.url,
            environ={"GOOGLE_APPLICATION_CREDENTIALS": str(user)},
        )
    assert report.problems == []
    ((_, _, _, headers),) = [r for r in double.requests if r[0] == "GET"]
    assert headers["x-goog-user-project"] == "billing-project"
    assert headers["authorization"] == "Bearer ya29.local-double"


# -- Azure, against a stand-in `az` and a local double of ARM -----------------------------------------------------
def fake_az(tmp_path: Path, logged_in: bool = True) -> Path:
    account = {
        "id": "00000000-0000-0000-0000-0000000000aa",
        "name": "dev",
        "tenantId": "t",
        "user": {"name": "alice@example.com", "type": "user"},
        "isDefault": True,
    }
    return script(
        tmp_path / "bin",
        "az",
        f"""
if not {logged_in}: sys.exit(print("Please run 'az login' to setup account.", file=sys.stderr) or 1)
if args[:2] == ["account", "show"]: print(json.dumps({account!r}))
elif args[:2] == ["account", "get-access-token"]:
    print(json.dumps({{"accessToken": "arm-token", "subscription": args[args.index("--subscription") + 1]}}))
else: sys.exit(2)""",
    )


def azure_report(tmp_path, states: dict[str, str], logged_in=True, values=None) -> tuple[Report, list]:
    def routes(method, path, query, headers, body):
        namespace = path.rsplit("/", 1)[-1]
        assert headers["authorization"] == "Bearer arm-token" and query["api-version"] == ["2021-04-01"]
        return 200, {"id": path, "namespace": namespace, "registrationState": states.get(namespace, "Registered")}

    with serve(routes) as double:
        report = Report()
        azure_check.check(
            StackConfig(cloud="azure", region="westeurope", memory_mb=2048),
            values or {},
            report,
            arm=double.url,
            environ={"PATH": str(fake_az(tmp_path, logged_in))},
        )
        return report, double.requests


def test_azure_reports_the_login_subscription_and_registered_providers(tmp_path):
    report, requests = azure_report(tmp_path, {})
    assert report.problems == []
    assert report.ok[0] == "Azure identity alice@example.com, subscription 00000000-0000-0000-0000-0000000000aa"
    assert [path.rsplit("/", 1)[-1] for _, path, _, _ in requests] == list(azure_check.RESOURCE_PROVIDERS)


def test_azure_unregistered_providers_are_named_with_the_register_command(tmp_path):
    report, requests = azure_report(
        tmp_path, {"Microsoft.Insights": "NotRegistered"}, values={"azure-native:subscriptionId": "sub-from-config"}
    )
    ((what, fix),) = report.problems
    assert what == "Azure subscription sub-from-config: resource providers not registered: Microsoft.Insights"
    assert fix == "az provider register --namespace Microsoft.Insights --subscription sub-from-config"
    assert all(path.startswith("/subscriptions/sub-from-config/providers/") for _, path, _, _ in requests)


def test_azure_without_login_says_az_login(tmp_path):
    report, requests = azure_report(tmp_path, {}, logged_in=False)
    ((what, fix),) = report.problems
    assert "not logged in to Azure" in what and fix == "run `az login`"
    assert requests == []


def test_gcp_credentials_of_an_unexpected_type_are_refused_with_a_reason(tmp_path):
    key = tmp_path / "odd.json"
    key.write_text(json.dumps({"type": "impersonated_service_account"}))
    report = Report()
    gcp_check.check(
        StackConfig(cloud="gcp", region="europe-west1"),
        {"gcp:project": "p"},
        report,
        environ={"GOOGLE_APPLICATION_CREDENTIALS": str(key)},
    )
    ((what, fix),) = report.problems
    assert "credentials of type 'impersonated_service_account' are not supported" in what
    assert "gcloud auth application-default login" in fix
