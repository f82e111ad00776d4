"""Lambda's view: awslambdaric (3.12, outside the package) runs handler.handler from the x86_64 task root against
the Runtime API double. What the runtime posts back is what Lambda would see: a response, an invocation error
(/invocation/{id}/error) when the handler raises, an initialization error (/init/error) when the import fails."""

from __future__ import annotations

import json
import shutil
import subprocess

from functions.devtools import runtimes
from functions.devtools.local import stop_group


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
    api = runtimes.LambdaRuntimeAPI()
    with open(tmp_path / "lambda.log", "w") as log:
        process = runtimes.start_lambda(lambda_venv, broken, api, log)
    try:
        error, headers = api.init_errors.get(timeout=runtimes.START_TIMEOUT_S)
        assert process.wait(timeout=30) != 0
    finally:
        stop_group(process)
        api.close()
    assert error["errorType"] == "ArtifactError"  # core's own error, with the message that says what to do
    assert "no model found" in error["errorMessage"] and "python -m train" in error["errorMessage"]
    assert headers["lambda-runtime-function-error-type"]
