"""Local runs of the cloud entry points, for `tinyllm serve` and `tinyllm invoke`.

`serve` starts the real functions-framework server on the GCP adapter (as Cloud Run functions would).
`invoke aws|azure` builds the platform's native event or request, calls the real handler once and returns
the native response, like `sam local invoke`. Adapters are loaded from their files (functions/<cloud>/), the
way each platform loads them; nothing on the serving path imports this module.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from core.artifacts import ArtifactError, resolve_model_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = {
    "gcp": REPO_ROOT / "functions" / "gcp" / "main.py",
    "aws": REPO_ROOT / "functions" / "aws" / "handler.py",
    "azure": REPO_ROOT / "functions" / "azure" / "function_app.py",
}


def load_adapter(cloud: str) -> ModuleType:
    """Import functions/<cloud>/<entry>.py from its file, once per process."""
    path = ADAPTERS[cloud]
    name = f"tinyllm_adapter_{cloud}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{path}: not loadable as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def served_model_name() -> str:
    """The id clients pass as `model`: the manifest's name of the model the server will load (a converted model is
    named after its checkpoint, not `tinyllm`)."""
    try:
        manifest = json.loads((resolve_model_dir() / "manifest.json").read_text(encoding="utf-8"))
    except (ArtifactError, OSError, ValueError):
        return "tinyllm"  # no model yet: the server's own start says what is missing
    return str(manifest.get("name") or "tinyllm")


def banner(host: str, port: int) -> str:
    url = f"http://{host}:{port}"
    return f"""tinyllm: functions-framework serving functions/gcp/main.py (target `serve`) on {url}
  curl {url}/v1/completions -H 'Content-Type: application/json' \\
       -d '{{"prompt": "Hello world,", "max_tokens": 32, "temperature": 0}}'
  python -c "from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key='unused'); \\
print(c.completions.create(model='{served_model_name()}', prompt='Hello world,', temperature=0).choices[0].text)"
"""


def server_environment(env: dict[str, str]) -> dict[str, str]:
    """`env` with defaults for functions-framework's gunicorn: one worker process per CPU, two threads each.

    Its own defaults (1 worker, 4 threads per CPU) put every request thread of the machine in one process,
    where they queue on the GIL: measured with bench/http.py, 1 worker x 8 threads gave 134 req/s and
    2 workers x 2 threads 367 req/s on 2 CPUs. WORKERS and THREADS set by the user win.
    """
    return {"WORKERS": str(os.cpu_count() or 1), "THREADS": "2", **env}


def serve(host: str, port: int) -> None:
    """Replace this process with the functions-framework server (its own CLI, as in production)."""
    print(banner(host, port), flush=True)
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--source",
        str(ADAPTERS["gcp"]),
        "--target",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
    ]
    os.execve(sys.executable, argv, server_environment(dict(os.environ)))


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def answers_health(host: str, port: int) -> bool:
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (gunicorn and its workers), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def background_server(
    env: dict[str, str], log_path: Path, host: str = "127.0.0.1", start_timeout_s: float = 60
) -> Iterator[tuple[subprocess.Popen, int]]:
    """`tinyllm serve` on a free loopback port, in a process group of its own, for tests and benchmarks.

    Yields (process, port) once GET /healthz answers 200; stops the whole group on exit, whatever happens.
    """
    port = free_port(host)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.devtools", "serve", "--host", host, "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not answers_health(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {process.returncode}" if process.poll() is not None else "did not answer"
                raise RuntimeError(
                    f"tinyllm serve {state} on {host}:{port} within {start_timeout_s} s:\n"
                    f"{Path(log_path).read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield process, port
    finally:
        stop_group(process)


class LambdaContext:
    """The attributes of the Lambda context object that a handler may read."""

    function_name = "tinyllm-local"
    memory_limit_in_mb = 512

    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def lambda_event(method: str, path: str, body: str, headers: dict[str, str]) -> dict:
    """A Function URL event (payload format 2.0), as documented for Lambda function URLs."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {k.lower(): v for k, v in headers.items()},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "tinyllm-invoke",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def invoke_aws(method: str, path: str, body: str, headers: dict[str, str]) -> dict:
    return load_adapter("aws").handler(lambda_event(method, path, body, headers), LambdaContext())


def azure_context():
    """An azure.functions.Context as the Functions host passes it, with a fresh invocation id."""
    from functions.devtools.azure_worker import InvocationContext

    return InvocationContext("serve", str(ADAPTERS["azure"].parent))


def invoke_azure(method: str, path: str, body: str, headers: dict[str, str]) -> dict:
    import azure.functions as func

    serve_fn = azure_user_function(load_adapter("azure"))
    request = func.HttpRequest(method, f"http://localhost:7071{path}", headers=headers, body=body.encode("utf-8"))
    response = serve_fn(request, azure_context())
    return {
        "status_code": response.status_code,
        "headers": dict(response.headers),
        "body": response.get_body().decode("utf-8", "replace"),
    }


@functools.cache
def azure_user_function(adapter: ModuleType):
    """The Python function behind the app's one route (as the Functions host finds it: by the FunctionApp's type),
    once per adapter module."""
    from functions.devtools.azure_worker import function_register

    (function,) = function_register(adapter).get_functions()
    return function.get_user_function()


def invoke(cloud: str, body: str, method: str, path: str) -> str:
    headers = {"Content-Type": "application/json"} if body else {}
    run = {"aws": invoke_aws, "azure": invoke_azure}[cloud]
    return json.dumps(run(method, path, body, headers), indent=2, ensure_ascii=False)
