"""Google Cloud Run functions entry point: the functions-framework HTTP function `serve`.

Translation only: flask.Request -> core Request -> core App -> flask.Response. Streams server-sent events.
"""

import flask
import functions_framework

from core.api import Request, create_app
from core.schema import MAX_BODY_BYTES

app = create_app()  # cold start: the model is verified and loaded once per instance


@functions_framework.http
def serve(request: flask.Request) -> flask.Response:
    response = app.handle(Request.of(
        request.method,
        request.path,
        request.headers.items(),
        request.stream.read(MAX_BODY_BYTES + 1),  # one byte past the limit is enough to refuse with 413
        query=request.args.to_dict(),
        request_id=request.headers.get("Function-Execution-Id"),
    ))
    body = response.body if response.chunks is None else response.chunks
    return flask.Response(body, status=response.status, headers=response.headers)
