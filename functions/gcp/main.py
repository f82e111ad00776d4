"""Google Cloud Run functions entry point: the functions-framework HTTP function `serve`.

Translation only: flask.Request -> core Request -> core App -> flask.Response. Streams server-sent events.
Cloud Logging's trace field is derived here, from the X-Cloud-Trace-Context header, and rides in log_fields.
"""

import os

import flask
import functions_framework

from core.api import Request, create_app
from core.schema import MAX_BODY_BYTES

app = create_app()  # cold start: the model is verified and loaded once per instance


def trace_field(header: str | None) -> dict:
    """Cloud Logging's trace field from X-Cloud-Trace-Context (`TRACE_ID/SPAN_ID;o=1`), when present."""
    if not header:
        return {}
    trace_id = header.split("/")[0]
    project = os.environ.get("GOOGLE_CLOUD_PROJECT")
    return {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace_id}" if project else trace_id}


@functions_framework.http
def serve(request: flask.Request) -> flask.Response:
    response = app.handle(
        Request.of(
            request.method,
            request.path,
            request.headers.items(),
            request.stream.read(MAX_BODY_BYTES + 1),  # one byte past the limit is enough to refuse with 413
            request_id=request.headers.get("Function-Execution-Id"),
            log_fields=trace_field(request.headers.get("X-Cloud-Trace-Context")),
        )
    )
    body = response.body if response.chunks is None else response.chunks
    return flask.Response(body, status=response.status, headers=response.headers)
