"""Run under `python -I -S` (no site-packages, no PYTHON* variables): send one request to an unpacked package.

    python -I -S drive_package.py CLOUD PACKAGE_ROOT RESULT_JSON REQUEST_JSON [EXTRA_PATH ...]

sys.path gets only what the platform would put there: the package root, plus the cloud's dependency directory
(Azure's .python_packages/lib/site-packages; for GCP, EXTRA_PATH: the requirements.txt installed apart, as
Cloud Run functions' build does). The real entry point is driven with its platform's native request type.
The result file records the reply, which model directory was loaded, whether torch could be imported, and
every loaded module that came from outside the standard library and those directories (there should be none).
"""

import importlib.util
import json
import sys
import sysconfig
import uuid
from pathlib import Path

# Not imported as a module (sys.modules does not list it): only its functions run on the package's azure.functions.
AZURE_WORKER = Path(__file__).resolve().parents[2] / "functions" / "devtools" / "azure_worker.py"

cloud, root, result_path, request_json, *extra = sys.argv[1:]
request = json.loads(request_json)
body = json.dumps(request["json"]).encode("utf-8")
headers = {"Content-Type": "application/json"}
allowed = [root, *extra]
if cloud == "azure":
    allowed.append(str(Path(root, ".python_packages", "lib", "site-packages")))
sys.path[:0] = allowed


def call_gcp():
    import functions_framework

    client = functions_framework.create_app(target="serve", source=str(Path(root, "main.py"))).test_client()
    reply = client.post(request["path"], data=body, headers=headers)
    return reply.status_code, reply.get_data()


def call_aws():
    import handler  # Lambda's `handler.handler`, imported from the package root

    class LambdaContext:
        aws_request_id = str(uuid.uuid4())

    event = {  # a Lambda function URL event, payload format 2.0 (the fields the AWS documentation lists)
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request["path"],
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "http": {
                "method": "POST",
                "path": request["path"],
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bundle-smoke",
            }
        },
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
    }
    result = handler.handler(event, LambdaContext())
    return result["statusCode"], result["body"].encode("utf-8")


def call_azure():
    import azure.functions as func
    import function_app

    # the developer tools' one model of the worker (register lookup, context), loaded by file: sys.path stays
    # the package's
    spec = importlib.util.spec_from_file_location("azure_worker", AZURE_WORKER)
    assert spec is not None and spec.loader is not None
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    (function,) = worker.function_register(function_app).get_functions()
    req = func.HttpRequest("POST", f"https://tinyllm.azurewebsites.net{request['path']}", headers=headers, body=body)
    reply = function.get_user_function()(req, worker.InvocationContext("serve", root))
    return reply.status_code, reply.get_body()


status, reply = {"gcp": call_gcp, "aws": call_aws, "azure": call_azure}[cloud]()

try:
    import torch  # noqa: F401

    torch_importable = True
except ImportError:
    torch_importable = False

import core.artifacts  # noqa: E402  (already loaded by the entry point: this only reads where the model came from)

package_dirs = tuple(str(Path(p).resolve()) for p in allowed)
stdlib_dirs = tuple(str(Path(sysconfig.get_paths()[key]).resolve()) for key in ("stdlib", "platstdlib"))


def foreign(path: str) -> bool:
    path = str(Path(path).resolve())
    if path.startswith(package_dirs):
        return False
    return not path.startswith(stdlib_dirs) or "site-packages" in path  # the interpreter's own packages count


foreign_modules = sorted(
    name
    for name, module in list(sys.modules.items())
    if name != "__main__" and getattr(module, "__file__", None) and foreign(module.__file__)
)
Path(result_path).write_text(
    json.dumps(
        {
            "status": status,
            "body": reply.decode("utf-8"),
            "model_dir": str(core.artifacts.resolve_model_dir().resolve()),
            "torch_importable": torch_importable,
            "foreign_modules": foreign_modules,
            "sys_path": sys.path,
        }
    )
)
