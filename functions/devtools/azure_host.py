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

import importlib.util
import json
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

root = Path(sys.argv[1]).resolve()
channel, sys.stdout = sys.stdout, sys.stderr
sys.path[:0] = [str(root), str(root / ".python_packages" / "lib" / "site-packages")]

import azure.functions as func  # noqa: E402  (from the package's vendored site-packages)
from azure.functions.decorators.http import HttpTrigger  # noqa: E402

# The worker's register lookup and context, shared with local.py: loaded by file, sys.path stays the package's.
spec = importlib.util.spec_from_file_location("azure_worker", Path(__file__).with_name("azure_worker.py"))
assert spec is not None and spec.loader is not None
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)

try:
    functions = worker.function_register(__import__("function_app")).get_functions()
except LookupError as exc:
    sys.exit(str(exc))
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
        worker.InvocationContext(user_function.__name__, str(root)),
    )
    print(
        json.dumps(
            {"status": reply.status_code, "headers": dict(reply.headers), "body": reply.get_body().decode("latin-1")}
        ),
        file=channel,
        flush=True,
    )
