"""A Lambda Runtime API client that streams: what the `stream-runtime` exec wrapper starts instead of awslambdaric.

Lambda's managed Python runtime answers each invocation with one buffered body (awslambdaric 4.2.2, the current
release, posts a whole result: lambda_runtime_client.py post_invocation_result). A RESPONSE_STREAM Function URL
sends the client what the runtime writes as it writes it, when the runtime follows the Runtime API's streaming
protocol (docs.aws.amazon.com/lambda/latest/dg/runtimes-custom.html#runtimes-custom-response-streaming):
POST /runtime/invocation/{id}/response with `Lambda-Runtime-Function-Response-Mode: streaming` and
`Transfer-Encoding: chunked`, the body in HTTP/1.1 chunks, the connection closed once written; an error before
the first byte goes to /invocation/{id}/error, an error after it as the trailers `Lambda-Runtime-Function-Error-
Type` and `Lambda-Runtime-Function-Error-Body` (base64), which the `Trailer` header declares up front.
For a Function URL the body is the `application/vnd.awslambda.http-integration-response` format: the JSON
prelude, 8 NUL bytes, then the HTTP body (github.com/aws/aws-lambda-nodejs-runtime-interface-client
src/HttpResponseStream.js, DELIMITER_LEN = 8; src/ResponseStream.js for the headers and trailers).

The loop is the documented one (runtimes-api.html): import the handler module once (a failure goes to
/runtime/init/error and the process exits), then GET /runtime/invocation/next, call `handler.stream_response`,
post the answer, forever. Standard library only: it runs from the package on the runtime's own interpreter.
"""

from __future__ import annotations

import base64
import http.client
import importlib
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Iterable

API_PREFIX = "/2018-06-01/runtime"
SERVED_HANDLER = "handler.handler"  # the function's configured handler; this loop serves that module's streams
PRELUDE_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_DELIMITER = b"\0" * 8
ERROR_TYPE_TRAILER, ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Type", "Lambda-Runtime-Function-Error-Body"


class LambdaContext:
    """The context attributes a handler may read, from the /next response's headers and the environment
    (docs.aws.amazon.com/lambda/latest/dg/python-context.html)."""

    def __init__(self, headers: http.client.HTTPMessage):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn", "")
        self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms", "0"))
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))


def error_body(exc: BaseException) -> dict:
    """The Runtime API's error document (runtimes-api.html: errorMessage, errorType, stackTrace)."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def connect(address: str) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(address)
    connection.connect()
    assert connection.sock is not None  # connect() just made it
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a token's event goes out now
    return connection


def post_error(address: str, path: str, exc: BaseException) -> None:
    connection = connect(address)
    try:
        body = json.dumps(error_body(exc)).encode()
        headers = {"Content-Type": "application/json", ERROR_TYPE_TRAILER: f"Runtime.{type(exc).__name__}"}
        connection.request("POST", f"{API_PREFIX}/{path}", body, headers)
        connection.getresponse().read()
    finally:
        connection.close()


def post_stream(address: str, request_id: str, prelude: dict, chunks: Iterable[bytes]) -> None:
    """Write prelude + 8 NULs + chunks as one chunked response, each chunk sent as soon as it exists; an error
    raised by `chunks` after that becomes the error trailers. Empty chunks are skipped: a zero-size chunk is
    the chunked encoding's end marker."""
    connection = connect(address)
    try:
        connection.putrequest("POST", f"{API_PREFIX}/invocation/{request_id}/response", skip_accept_encoding=True)
        for name, value in (
            ("Content-Type", PRELUDE_CONTENT_TYPE),
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", f"{ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}"),
        ):
            connection.putheader(name, value)
        connection.endheaders()

        def send(data: bytes) -> None:
            if data:
                connection.send(b"%x\r\n%s\r\n" % (len(data), data))

        send(json.dumps(prelude).encode() + PRELUDE_DELIMITER)
        trailers = b""
        try:
            for chunk in chunks:
                send(chunk)
        except Exception as exc:  # the status already left with the prelude: report it the documented way
            encoded = base64.b64encode(json.dumps(error_body(exc)).encode()).decode()
            trailers = f"{ERROR_TYPE_TRAILER}: Runtime.{type(exc).__name__}\r\n{ERROR_BODY_TRAILER}: {encoded}\r\n"
            trailers = trailers.encode()
            print(f"stream_runtime: the response stream failed: {exc!r}", file=sys.stderr, flush=True)
        connection.send(b"0\r\n" + trailers + b"\r\n")
        connection.getresponse().read()
    finally:
        connection.close()  # "Close the underlying connection after it has successfully written the response."


def main() -> None:
    address = os.environ["AWS_LAMBDA_RUNTIME_API"]
    try:
        configured = os.environ.get("_HANDLER", SERVED_HANDLER)
        if configured != SERVED_HANDLER:
            raise ValueError(f"stream-runtime serves {SERVED_HANDLER}, but the function's handler is {configured}")
        handler = importlib.import_module("handler")  # cold start: the adapter loads and verifies the model
    except Exception as exc:
        post_error(address, "init/error", exc)
        sys.exit(1)
    next_connection = http.client.HTTPConnection(address)  # kept alive between invocations; /next has no timeout
    while True:
        next_connection.request("GET", f"{API_PREFIX}/invocation/next")
        reply = next_connection.getresponse()
        event = json.loads(reply.read())
        context = LambdaContext(reply.headers)
        try:
            prelude, chunks = handler.stream_response(event, context)
        except Exception as exc:  # nothing was written yet: the error route still takes it
            post_error(address, f"invocation/{context.aws_request_id}/error", exc)
            continue
        post_stream(address, context.aws_request_id, prelude, chunks)


if __name__ == "__main__":
    main()
