"""The Azure Functions Python worker's view of an unpacked package, run as `python3.12 -I -S azure_host.py ROOT`.

It does what the worker does with a v2-model app (github.com/Azure/azure-functions-python-worker,
azure_functions_worker/loader.py `index_function_app`): import `function_app` by its file name, find the one
top-level FunctionRegister, `get_functions()`, and report each function's raw bindings (the indexing metadata
the host receives). sys.path is what the host gives a Flex Consumption app: the app root and its
.python_packages/lib/site-packages (github.com/Azure/azure-functions-python-worker/wiki/Python-Packages-
Loading-Order-and-Sys-Path); nothing of this machine's site-packages (-I -S).
Then each stdin line {"method", "url", "headers", "body"} becomes an azure.functions.HttpRequest for the indexed
function's user function, and its HttpResponse a stdout line {"status", "headers", "body"} (bodies as latin-1).
App settings arrive as environment variables, as on the host. The app's own output (its JSON log lines) goes to
stderr, so that stdout carries only this protocol.
"""

import json
import sys
import uuid
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlsplit

root = Path(sys.argv[1]).resolve()
channel, sys.stdout = sys.stdout, sys.stderr
sys.path[:0] = [str(root), str(root / ".python_packages" / "lib" / "site-packages")]

import azure.functions as func  # noqa: E402  (from the package's vendored site-packages)
from azure.functions.decorators.http import HttpTrigger  # noqa: E402

module = __import__("function_app")
registers = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
if len(registers) != 1:
    sys.exit(f"function_app.py defines {len(registers)} top-level function apps; the worker needs exactly one")
functions = registers[0].get_functions()
print(
    json.dumps(
        {
            "functions": [
                {
                    "name": f.get_function_name(),
                    "http": f.is_http_function(),
                    "bindings": [json.loads(b) for b in f.get_raw_bindings()],
                }
                for f in functions
            ]
        }
    ),
    file=channel,
    flush=True,
)
by_route = {
    trigger.route: f.get_user_function() for f in functions if isinstance(trigger := f.get_trigger(), HttpTrigger)
}  # only an HTTP trigger has a route


class InvocationContext(func.Context):
    """What the worker passes as `context`: read-only properties with a fresh invocation id per call. The host's
    trace, retry and thread-local contexts are not modelled here: reading one is an AttributeError naming it."""

    def __init__(self, function_name: str):
        self._invocation_id, self._function_name = str(uuid.uuid4()), function_name

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return str(root)

    @property
    def trace_context(self) -> NoReturn:
        raise AttributeError("trace_context: this host view has none")

    @property
    def retry_context(self) -> NoReturn:
        raise AttributeError("retry_context: this host view has none")

    @property
    def thread_local_storage(self) -> NoReturn:
        raise AttributeError("thread_local_storage: this host view has none")


for line in sys.stdin:
    request = json.loads(line)
    ((route, user_function),) = by_route.items()  # one catch-all route: every path reaches it
    url = urlsplit(request["url"])
    reply = user_function(
        func.HttpRequest(
            request["method"],
            request["url"],
            headers=request["headers"],
            params=dict(parse_qsl(url.query)),
            route_params={"path": url.path[1:]},
            body=request["body"].encode("latin-1"),
        ),
        InvocationContext(user_function.__name__),
    )
    print(
        json.dumps(
            {"status": reply.status_code, "headers": dict(reply.headers), "body": reply.get_body().decode("latin-1")}
        ),
        file=channel,
        flush=True,
    )
