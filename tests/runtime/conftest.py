"""Each cloud's built package (the bytes `pulumi up` uploads; x86_64 for AWS), run the way its cloud runs it under
CPython 3.12, once per session (see functions.devtools.runtimes), and a `client` that speaks HTTP to each:

- gcp: functions-framework from a fresh 3.12 virtualenv holding the package's requirements.txt, over loopback HTTP;
- aws-url-v2 / aws-rest-v1: awslambdaric on the unpacked task root, invoked through the Runtime API double with a
  Function URL (payload 2.0) or REST API (payload 1.0) event recorded from AWS's documentation: the buffered path;
- aws-url-stream: the same task root started through its exec wrapper (stream-runtime), as infra deploys it behind
  a RESPONSE_STREAM Function URL, read through `runtimes.function_url_answer` as that URL reads it;
- azure: the worker's indexed function, called with an azure.functions.HttpRequest in a 3.12 process.

Without a CPython 3.12 these tests skip, saying why; in CI (CI=true) they fail instead, since CI's image has one.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import time
from pathlib import Path

import pytest
from contract_support import Reply, aws_event

from functions.devtools import runtimes
from functions.devtools.local import free_port, stop_group

KINDS = ["gcp", "aws-url-v2", "aws-url-stream", "aws-rest-v1", "azure"]


@pytest.fixture(scope="session")
def python312() -> Path:
    try:
        return runtimes.find_python312()
    except runtimes.RuntimeUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the runtime tests under CPython 3.12: {exc}", pytrace=False)
        pytest.skip(f"runtime tests need CPython 3.12: {exc}")


@pytest.fixture(scope="session")
def runtime_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtimes")


def wait_for_http(port: int, process, log: Path, timeout_s: float = runtimes.START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"functions-framework did not answer on port {port}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def gcp_runtime(python312, build_package, runtime_dir):
    """(port, source dir, venv python): the GCP package served by functions-framework under 3.12."""
    source = runtimes.unpack(build_package("gcp").zip_path, runtime_dir / "gcp-source")
    venv_python = runtimes.make_venv(python312, runtime_dir / "gcp-venv", "-r", str(source / "requirements.txt"))
    port, log = free_port(), runtime_dir / "gcp.log"
    with open(log, "w") as out:
        process = runtimes.start_functions_framework(venv_python, source, port, out)
    try:
        wait_for_http(port, process, log)
        yield port, source, venv_python
    finally:
        stop_group(process)


@pytest.fixture(scope="session")
def lambda_venv(python312, runtime_dir) -> Path:
    """A 3.12 virtualenv with awslambdaric alone, as Lambda's python3.12 runtime provides it."""
    return runtimes.make_venv(python312, runtime_dir / "lambda-venv", runtimes.LAMBDA_RIC)


@pytest.fixture(scope="session")
def aws_task_root(build_package, runtime_dir) -> Path:
    return runtimes.unpack(build_package("aws", "x86_64").zip_path, runtime_dir / "aws-task-root")


@pytest.fixture(scope="session")
def lambda_runtime(lambda_venv, aws_task_root, runtime_dir):
    """(Runtime API double, process): awslambdaric serving the x86_64 package's handler.handler."""
    with runtimes.running_lambda(lambda_venv, aws_task_root, runtime_dir / "lambda.log") as running:
        yield running


@pytest.fixture(scope="session")
def lambda_stream_runtime(lambda_venv, aws_task_root, runtime_dir):
    """(Runtime API double, process): the x86_64 package's stream-runtime wrapper, as AWS_LAMBDA_EXEC_WRAPPER."""
    with runtimes.running_lambda(
        lambda_venv, aws_task_root, runtime_dir / "lambda-stream.log", streaming=True
    ) as running:
        yield running


@pytest.fixture(scope="session")
def azure_root(build_package, runtime_dir) -> Path:
    return runtimes.unpack(build_package("azure").zip_path, runtime_dir / "azure-app")


@pytest.fixture(scope="session")
def azure_host(python312, azure_root, runtime_dir):
    with open(runtime_dir / "azure.log", "w") as err:
        host = runtimes.AzureHost(python312, azure_root, {}, err)
    try:
        yield host
    finally:
        host.close()


class RuntimeClient:
    """HTTP-shaped requests to one runtime, with the same `request` / `post_json` as the adapter tests' client."""

    def __init__(self, kind: str, target):
        self.kind, self.target = kind, target

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> Reply:
        headers = dict(headers or {})
        if self.kind == "gcp":
            conn = http.client.HTTPConnection("127.0.0.1", self.target, timeout=60)
            try:
                conn.request(method, path, body=body or None, headers=headers)
                r = conn.getresponse()
                return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
            finally:
                conn.close()
        if self.kind == "aws-url-stream":
            api, _ = self.target
            status, answer_headers, chunks = runtimes.function_url_answer(api)(method, path, headers, body)
            return Reply(status, {k.lower(): v for k, v in answer_headers.items()}, b"".join(chunks))
        if self.kind.startswith("aws"):
            api, _ = self.target
            event = aws_event(self.kind, method, path, headers, body, base64_body=True)  # bytes arrive intact
            kind, result, _ = api.invoke(event)
            assert kind == "response", result
            raw = result["body"]
            data = base64.b64decode(raw) if result["isBase64Encoded"] else raw.encode("utf-8")
            return Reply(result["statusCode"], {k.lower(): v for k, v in result["headers"].items()}, data)
        r = self.target.request(method, f"https://tinyllm.azurewebsites.net{path}", headers, body)
        return Reply(r["status"], {k.lower(): v for k, v in r["headers"].items()}, r["body"])

    def post_json(self, path: str, obj, headers: dict | None = None) -> Reply:
        return self.request(
            "POST", path, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode("utf-8")
        )


@pytest.fixture(params=KINDS)
def client(request) -> RuntimeClient:
    kind = request.param
    fixture = {"gcp": "gcp_runtime", "azure": "azure_host", "aws-url-stream": "lambda_stream_runtime"}.get(
        kind, "lambda_runtime"
    )
    target = request.getfixturevalue(fixture)
    return RuntimeClient(kind, target[0] if kind == "gcp" else target)
