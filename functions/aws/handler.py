"""AWS Lambda entry point: Function URL / HTTP API (payload 2.0) and REST API (1.0) events, answered two ways.

Translation only: event -> core Request -> core App -> what the invoker reads.
- `handler(event, context)`: the Lambda proxy result, run by the python3.12 runtime's own client (awslambdaric)
  for a BUFFERED Function URL or a REST API. Bodies arrive base64-encoded when `isBase64Encoded` is true; a
  response body that is not UTF-8 text goes back base64-encoded; `stream: true` arrives as all its server-sent
  events in one body.
- `stream_response(event, context)`: the HTTP prelude and the body's chunks, which stream_runtime.py (started by
  the `stream-runtime` exec wrapper) writes to a RESPONSE_STREAM Function URL as each chunk is decoded.
"""

import base64
from collections.abc import Iterator

from core.api import Request, create_app

app = create_app()  # cold start: the model is verified and loaded once per execution environment


def request_body(event: dict) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def to_request(event: dict, context) -> Request:
    request_id = getattr(context, "aws_request_id", None)
    if event.get("version") == "2.0":  # Function URL and HTTP API: comma-joined headers, cookies apart
        headers = dict(event.get("headers") or {})
        if event.get("cookies"):
            headers["cookie"] = "; ".join(event["cookies"])
        method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    else:  # REST API: multi-value headers win over single-value ones when present
        multi = event.get("multiValueHeaders") or {}
        headers = {**(event.get("headers") or {}), **{k: ", ".join(v) for k, v in multi.items()}}
        method, path = event["httpMethod"], event["path"]
    return Request.of(
        method,
        path,
        headers,
        request_body(event),
        request_id=request_id,
        log_fields={"aws_request_id": request_id} if request_id else {},
    )


def to_result(body: bytes, status: int, headers: dict) -> dict:
    try:
        return {"statusCode": status, "headers": headers, "body": body.decode("utf-8"), "isBase64Encoded": False}
    except UnicodeDecodeError:
        return {
            "statusCode": status,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }


def handler(event: dict, context) -> dict:
    response = app.handle(to_request(event, context))
    return to_result(response.read(), response.status, response.headers)


def stream_response(event: dict, context) -> tuple[dict, Iterator[bytes]]:
    """(prelude, chunks) for a response-streaming invocation: the prelude is the status, headers and cookies of
    the `application/vnd.awslambda.http-integration-response` format (github.com/aws/aws-lambda-nodejs-runtime-
    interface-client src/HttpResponseStream.js; awslabs/aws-lambda-rust-runtime lambda-runtime/src/streaming.rs
    MetadataPrelude {statusCode, headers, cookies}); a body that is not a stream is one chunk."""
    response = app.handle(to_request(event, context))
    prelude = {"statusCode": response.status, "headers": response.headers, "cookies": []}
    return prelude, iter((response.body,)) if response.chunks is None else response.chunks
