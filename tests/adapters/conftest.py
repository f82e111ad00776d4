"""Drive each cloud adapter with its platform's native request type and read back a neutral reply.

- gcp: the real functions-framework app (`create_app(...).test_client()`) on functions/gcp/main.py;
- aws-*: the Lambda handler with events recorded from AWS's documentation (tests/adapters/events/), as a
  Function URL / HTTP API payload 2.0 (plain and base64 body) and as a REST API payload 1.0; aws-url-stream:
  `stream_response`, what the package's streaming runtime sends a RESPONSE_STREAM Function URL (the
  http-integration-response prelude, then the body's chunks);
- azure: the v2-model function with a real `azure.functions.HttpRequest`.
"""

from __future__ import annotations

import base64
import json
import sys

import pytest
from contract_support import Reply, aws_event

from functions.devtools.local import ADAPTERS, LambdaContext, azure_context, azure_user_function, load_adapter

KINDS = ["gcp", "aws-url-v2", "aws-url-v2-base64", "aws-url-stream", "aws-rest-v1", "azure"]


class AdapterClient:
    """One adapter, called with its native request type."""

    def __init__(self, kind: str):
        self.kind = kind
        if kind == "gcp":
            import functions_framework

            self.flask_client = functions_framework.create_app(
                target="serve", source=str(ADAPTERS["gcp"])
            ).test_client()
            self.module = sys.modules["main"]  # where functions-framework registers the source module
        elif kind.startswith("aws"):
            self.module = load_adapter("aws")
        else:
            self.module = load_adapter("azure")
            self.azure_function = azure_user_function(self.module)

    @property
    def app(self):
        """The core App the adapter built at import (its composition root; Azure's `app` is the FunctionApp)."""
        return self.module.core_app if self.kind == "azure" else self.module.app

    def request(self, method: str, path: str, headers: dict | None = None, body: bytes = b"") -> Reply:
        headers = dict(headers or {})
        if self.kind == "gcp":
            r = self.flask_client.open(path, method=method, headers=headers, data=body)
            return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_data())
        if self.kind == "aws-url-stream":
            event = aws_event(self.kind, method, path, headers, body, base64_body=True)
            prelude, chunks = self.module.stream_response(event, LambdaContext())
            assert set(prelude) == {"statusCode", "headers", "cookies"}
            data = b"".join(chunks)
            return Reply(prelude["statusCode"], {k.lower(): v for k, v in prelude["headers"].items()}, data)
        if self.kind.startswith("aws"):
            event = aws_event(self.kind, method, path, headers, body, base64_body=self.kind == "aws-url-v2-base64")
            result = self.module.handler(event, LambdaContext())
            raw = result["body"]
            data = base64.b64decode(raw) if result["isBase64Encoded"] else raw.encode("utf-8")
            return Reply(result["statusCode"], {k.lower(): v for k, v in result["headers"].items()}, data)
        import azure.functions as func

        req = func.HttpRequest(method, f"https://tinyllm.azurewebsites.net{path}", headers=headers, body=body)
        r = self.azure_function(req, azure_context())
        return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.get_body())

    def post_json(self, path: str, obj, headers: dict | None = None) -> Reply:
        return self.request(
            "POST", path, {"Content-Type": "application/json", **(headers or {})}, json.dumps(obj).encode("utf-8")
        )


_clients: dict[str, AdapterClient] = {}


@pytest.fixture(params=KINDS)
def client(request, model_dir) -> AdapterClient:
    if request.param not in _clients:
        _clients[request.param] = AdapterClient(request.param)
    return _clients[request.param]
