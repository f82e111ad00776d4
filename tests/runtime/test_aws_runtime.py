"""Lambda's view: awslambdaric (3.12, outside the package) runs handler.handler from the x86_64 task root against
the Runtime API double. What the runtime posts back is what Lambda would see: a response, an invocation error
(/invocation/{id}/error) when the handler raises, an initialization error (/init/error) when the import fails.
The package's stream-runtime wrapper (its own streaming Runtime API client) is held to the same, and to the
streaming protocol's error trailers."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import pytest

from functions.devtools import runtimes
from functions.devtools.local import REPO_ROOT


def test_the_runtime_interface_client_brings_no_numpy_the_package_must(lambda_venv):
    listed = subprocess.run(
        [str(lambda_venv), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True
    ).stdout
    installed = {package["name"].lower() for package in json.loads(listed)}
    assert "awslambdaric" in installed
    assert not installed & {"numpy", "tokenizers"}  # so the handler's imports come from the task root alone


def test_every_invocation_gets_the_request_id_lambda_sent(lambda_runtime):
    api, _ = lambda_runtime
    kind, result, _ = api.invoke(
        {"version": "2.0", "rawPath": "/healthz", "headers": {}, "requestContext": {"http": {"method": "GET"}}}
    )
    assert kind == "response" and result["statusCode"] == 200
    assert json.loads(result["body"])["engine"] == "numpy"


def test_a_handler_exception_is_posted_to_the_invocation_error_route(lambda_runtime):
    api, process = lambda_runtime
    kind, error, _ = api.invoke({"unexpected": "an event from a trigger the handler does not know"})
    assert kind == "error"
    assert error["errorType"] == "KeyError" and "httpMethod" in error["errorMessage"]
    assert any("handler.py" in frame for frame in error["stackTrace"])
    assert process.poll() is None  # the execution environment lives on for the next event
    kind, result, _ = api.invoke(
        {"version": "2.0", "rawPath": "/v1/models", "headers": {}, "requestContext": {"http": {"method": "GET"}}}
    )
    assert kind == "response" and result["statusCode"] == 200


def test_an_import_error_is_posted_to_init_error_and_the_runtime_exits(lambda_venv, aws_task_root, tmp_path):
    broken = tmp_path / "task-root"
    shutil.copytree(aws_task_root, broken)
    shutil.rmtree(broken / "model")  # the handler's import loads and verifies the model: make that fail
    with runtimes.running_lambda(lambda_venv, broken, tmp_path / "lambda.log") as (api, process):
        error, headers = api.init_errors.get(timeout=runtimes.START_TIMEOUT_S)
        assert process.wait(timeout=30) != 0
    assert error["errorType"] == "ArtifactError"  # core's own error, with the message that says what to do
    assert "no model found" in error["errorMessage"] and "python -m train" in error["errorMessage"]
    assert headers["lambda-runtime-function-error-type"]


FAILING_STREAM_HANDLER = """
def stream_response(event, context):
    if event.get("fail") == "before":
        raise ValueError("no answer at all")

    def chunks():
        yield b"data: first\\n\\n"
        raise RuntimeError("decoding broke mid-stream")

    return {"statusCode": 200, "headers": {"content-type": "text/event-stream"}, "cookies": []}, chunks()
"""


@pytest.fixture
def failing_stream_runtime(lambda_venv, tmp_path):
    """The package's stream-runtime and stream_runtime.py beside a handler whose stream fails, as Lambda runs them."""
    root = tmp_path / "task-root"
    root.mkdir()
    for name in ("stream-runtime", "stream_runtime.py"):
        shutil.copy(REPO_ROOT / "functions" / "aws" / name, root / name)
    (root / "handler.py").write_text(FAILING_STREAM_HANDLER)
    with runtimes.running_lambda(lambda_venv, root, tmp_path / "lambda.log", streaming=True) as running:
        yield running


def test_a_stream_that_fails_after_its_first_byte_ends_with_the_declared_error_trailers(failing_stream_runtime):
    api, process = failing_stream_runtime
    kind, streamed, headers = api.invoke({"fail": "after"})
    assert kind == "stream" and isinstance(streamed, runtimes.StreamedResponse)
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    prelude, _, body = streamed.read().partition(runtimes.STREAM_PRELUDE_DELIMITER)
    assert json.loads(prelude)["statusCode"] == 200 and body == b"data: first\n\n"
    assert streamed.trailers["lambda-runtime-function-error-type"] == "Runtime.RuntimeError"
    error = json.loads(base64.b64decode(streamed.trailers["lambda-runtime-function-error-body"]))
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "decoding broke mid-stream"
    assert process.poll() is None  # the execution environment lives on for the next event


def test_a_failure_before_the_first_byte_goes_to_the_invocation_error_route(failing_stream_runtime):
    api, _ = failing_stream_runtime
    kind, error, headers = api.invoke({"fail": "before"})
    assert kind == "error" and error["errorType"] == "ValueError" and error["errorMessage"] == "no answer at all"
    assert headers["lambda-runtime-function-error-type"] == "Runtime.ValueError"
    assert api.invoke({"fail": "after"})[0] == "stream"  # and the next invocation is served


def test_a_handler_setting_the_wrapper_does_not_serve_is_an_init_error_naming_both(
    lambda_venv, aws_task_root, tmp_path
):
    log = tmp_path / "lambda.log"
    with runtimes.running_lambda(lambda_venv, aws_task_root, log, streaming=True, handler="other.handler") as (
        api,
        process,
    ):
        error, _ = api.init_errors.get(timeout=runtimes.START_TIMEOUT_S)
        assert process.wait(timeout=30) != 0
    assert error["errorMessage"] == "stream-runtime serves handler.handler, but the function's handler is other.handler"
