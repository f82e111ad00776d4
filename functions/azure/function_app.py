"""Azure Functions entry point (Python v2 programming model): one catch-all HTTP route.

Translation only: func.HttpRequest -> core Request -> core App -> func.HttpResponse. The auth level comes from
the app setting TINYLLM_AZURE_AUTH_LEVEL (FUNCTION by default: callers need a function key; ANONYMOUS for
a public endpoint). host.json sets routePrefix to "" so the routes are /v1/..., as on the other clouds.
The response is buffered, so `stream: true` arrives as all its server-sent events in one body: streaming would
take the HTTP streams extension (azurefunctions-extensions-http-fastapi), whose cost docs/deploying.md weighs.
"""

import os
from urllib.parse import urlsplit

import azure.functions as func

from core.api import Request, create_app

AUTH_LEVEL_SETTING = os.environ.get("TINYLLM_AZURE_AUTH_LEVEL", "FUNCTION").upper()
if AUTH_LEVEL_SETTING not in func.AuthLevel.__members__:  # a hand-edited setting: say which, not KeyError
    raise ValueError(
        f"TINYLLM_AZURE_AUTH_LEVEL must be one of {', '.join(func.AuthLevel.__members__)}, got {AUTH_LEVEL_SETTING!r}"
    )
AUTH_LEVEL = func.AuthLevel[AUTH_LEVEL_SETTING]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]  # core answers 405 where it must

# `app`, as in Microsoft's samples; the host finds the FunctionApp by its type, whatever its name
# (Azure/azure-functions-python-worker, loader.py index_function_app: "if isinstance(getattr(imported_module, i,
# None), FunctionRegister)").
app = func.FunctionApp(http_auth_level=AUTH_LEVEL)
core_app = create_app()  # cold start: the model is verified and loaded once per instance


@app.route(route="{*path}", methods=METHODS)
def serve(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    response = core_app.handle(
        Request.of(
            req.method,
            urlsplit(req.url).path,
            req.headers.items(),
            req.get_body(),
            request_id=context.invocation_id,
            log_fields={"invocation_id": context.invocation_id},
        )
    )
    return func.HttpResponse(body=response.read(), status_code=response.status, headers=response.headers)
