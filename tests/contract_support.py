"""What the adapter and runtime contract suites share: the reply they compare, and AWS's documented HTTP events
(recorded in tests/adapters/events/) for one request."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from pathlib import Path

EVENTS = Path(__file__).parent / "adapters" / "events"  # recorded from AWS's documentation


@dataclass
class Reply:
    """One HTTP answer as every client of the contract suites returns it."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self):
        return json.loads(self.body)


def aws_event(kind: str, method: str, path: str, headers: dict, body: bytes, base64_body: bool = False) -> dict:
    """A REST API (payload 1.0, kind `aws-rest-v1`) or Function URL (payload 2.0) event carrying one request."""
    if kind == "aws-rest-v1":
        event = copy.deepcopy(json.loads((EVENTS / "aws_rest_api_v1.json").read_text()))
        event.update(
            httpMethod=method,
            path=path,
            resource=path,
            headers=dict(headers),
            multiValueHeaders={k: [v] for k, v in headers.items()},
        )
        event["requestContext"].update(httpMethod=method, path=path)
    else:
        event = copy.deepcopy(json.loads((EVENTS / "aws_function_url_v2.json").read_text()))
        event.update(rawPath=path, headers={k.lower(): v for k, v in headers.items()})
        event["requestContext"]["http"].update(method=method, path=path)
    if base64_body:
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    else:
        event.update(body=body.decode("utf-8") if body else None, isBase64Encoded=False)
    return event
