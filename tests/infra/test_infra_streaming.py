"""The AWS stack streams: its Function URL invokes with InvokeWithResponseStream, and its function starts through the
package's exec wrapper, the streaming Runtime API client (functions/aws/stream-runtime). Both or neither: a
RESPONSE_STREAM URL in front of the runtime's own buffered client would send each answer in one piece, and the
wrapper behind a BUFFERED URL would send the http-integration-response prelude as the body."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from infra import aws
from infra.bundle import TARGETS


@pytest.mark.parametrize("overrides", [{}, {"public": True}, {"architecture": "x86_64"}])
def test_the_function_url_streams_and_the_function_starts_through_the_packages_wrapper(run_stack, overrides):
    deployment = run_stack("aws", **overrides)
    function = deployment.one("aws:lambda/function:Function").inputs
    url = deployment.one("aws:lambda/functionUrl:FunctionUrl").inputs
    assert url["invokeMode"] == "RESPONSE_STREAM"
    assert url["authorizationType"] == ("NONE" if overrides.get("public") else "AWS_IAM")  # SigV4 stays
    assert function["environment"]["variables"]["AWS_LAMBDA_EXEC_WRAPPER"] == aws.STREAM_WRAPPER
    assert function["handler"] == "handler.handler"  # what the wrapper's client serves (stream_runtime.py)


def test_the_wrapper_path_is_a_file_the_package_puts_at_the_task_root():
    wrapper = PurePosixPath(aws.STREAM_WRAPPER)
    assert wrapper.parent == PurePosixPath("/var/task")  # where Lambda unpacks the .zip (LAMBDA_TASK_ROOT)
    assert wrapper.name in TARGETS["aws"].adapter
