"""Run a built package the way its cloud runs it, under CPython 3.12: the harness of the runtime tests and of
`make bench`'s cold starts.

- GCP: a fresh 3.12 virtualenv gets the package's requirements.txt (what Cloud Run functions' Python buildpack
  installs), then functions-framework serves the unpacked source on loopback (`start_functions_framework`);
- AWS: `python -m awslambdaric handler.handler` from the unpacked task root, awslambdaric installed in a 3.12
  virtualenv as the runtime provides it (never in the package), against a double of the Lambda Runtime API
  (`LambdaRuntimeAPI`, `start_lambda`); with `streaming=True`, started through the package's exec wrapper
  `stream-runtime` as Lambda starts it when AWS_LAMBDA_EXEC_WRAPPER names it, answering in the Runtime API's
  streaming mode, which the double takes chunk by chunk (`StreamedResponse`);
- Azure: the worker's indexing of the unpacked package, then requests through the indexed function, in a 3.12
  process whose path is what the host gives it (`start_azure_host`, which runs azure_host.py).

Which 3.12: TINYLLM_PY312 > `python3.12` on PATH > pyenv's versions/3.12.* (`find_python312`).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from functions.devtools.local import lambda_event, stop_group

PY312_ENV = "TINYLLM_PY312"
# The runtime interface client Lambda's Python runtimes are built on (github.com/aws/aws-lambda-python-runtime-
# interface-client); pinned like every dependency. It goes into the runtime's virtualenv, never into the package.
LAMBDA_RIC = "awslambdaric==4.2.2"
AZURE_HOST = Path(__file__).with_name("azure_host.py")
START_TIMEOUT_S = 120


class RuntimeUnavailable(Exception):
    """No CPython 3.12 to run the packages with (the message lists what was tried)."""


def is_python312(python: str | os.PathLike) -> bool:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(sys.implementation.name, sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == "cpython (3, 12)"


def pyenv_root() -> Path:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return Path.home() / ".pyenv"


def find_python312() -> Path:
    """TINYLLM_PY312 (must be a CPython 3.12 when set) > `python3.12` on PATH > pyenv's versions/3.12.*."""
    if os.environ.get(PY312_ENV):
        chosen = Path(os.environ[PY312_ENV])
        if not is_python312(chosen):
            raise RuntimeUnavailable(f"{PY312_ENV}={chosen} is not a CPython 3.12 interpreter")
        return chosen
    candidates = [shutil.which("python3.12")]  # a pyenv shim is on PATH but fails unless 3.12 is selected
    versions = pyenv_root() / "versions"
    candidates += sorted(versions.glob("3.12.*/bin/python3.12"), reverse=True)
    for candidate in filter(None, candidates):
        if is_python312(candidate):
            return Path(candidate)
    raise RuntimeUnavailable(
        f"no CPython 3.12 found: set {PY312_ENV}, put python3.12 on PATH or install it with "
        f"`pyenv install 3.12` (tried: {', '.join(map(str, filter(None, candidates))) or 'none'}; "
        f"looked in {versions})"
    )


def make_venv(python: Path, path: Path, *pip_args: str) -> Path:
    """A fresh virtualenv of `python` at `path` with `pip install *pip_args`; returns its interpreter."""
    subprocess.run([str(python), "-m", "venv", str(path)], check=True, capture_output=True)
    venv_python = path / "bin" / "python"
    if pip_args:
        pip = subprocess.run(
            [str(venv_python), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", *pip_args],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(pip_args)} into {path} failed:\n{pip.stderr[-3000:]}")
    return venv_python


def unpack(zip_path: Path, into: Path) -> Path:
    """Extract a package's zip (what the cloud receives) into the new directory `into`, with each entry's Unix
    mode, as the clouds extract it (zipfile's extractall drops the mode: an exec wrapper would not run)."""
    into.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, into))
            if mode := (info.external_attr >> 16) & 0o777:
                path.chmod(mode)
    return into


def clean_environment(**extra: str) -> dict[str, str]:
    """A cloud's environment holds none of this machine's TINYLLM_* or PYTHON* settings: start from PATH alone."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **extra}


# ---- GCP ----------------------------------------------------------------------------------------------------


def start_functions_framework(venv_python: Path, source: Path, port: int, log) -> subprocess.Popen:
    """functions-framework serving source/main.py's `serve` on 127.0.0.1:port, as the buildpack's entry point does
    (`functions-framework --target=<entry point>`, source main.py in the working directory)."""
    # Source: github.com/GoogleCloudPlatform/functions-framework-python README ("--target ... FUNCTION_TARGET",
    # "--source ... FUNCTION_SOURCE ... default main.py", "--port ... PORT"); the buildpack sets FUNCTION_TARGET.
    command = [str(venv_python.parent / "functions-framework"), "--host", "127.0.0.1", "--port", str(port)]
    env = clean_environment(FUNCTION_TARGET="serve", FUNCTION_SIGNATURE_TYPE="http", PORT=str(port))
    return subprocess.Popen(command, cwd=source, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


# ---- AWS ----------------------------------------------------------------------------------------------------


class QuietServer(ThreadingHTTPServer):
    """Says nothing when a runtime that was stopped drops its keep-alive connection; reports any other error."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class StreamedResponse:
    """A response the runtime posts in streaming mode, as the double receives it: each HTTP chunk with the
    `time.perf_counter()` of its arrival, then the trailers. Iterating yields the chunks' bytes as they come."""

    def __init__(self, headers: dict[str, str]):
        self.headers = headers  # the POST's headers, lower-case names
        self.arrivals: list[tuple[float, bytes]] = []
        self.trailers: dict[str, str] = {}
        self._parts: queue.Queue = queue.Queue()  # chunks as they arrive, then None

    def __iter__(self):
        while (part := self._parts.get(timeout=START_TIMEOUT_S)) is not None:
            yield part

    def read(self) -> bytes:
        return b"".join(self)


class LambdaRuntimeAPI:
    """A double of the Lambda Runtime API, version 2018-06-01, on a free loopback port.

    Source: docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html — "Next invocation" GET
    /runtime/invocation/next, its response headers Lambda-Runtime-Aws-Request-Id, -Deadline-Ms,
    -Invoked-Function-Arn, -Trace-Id, -Client-Context, -Cognito-Identity; "Invocation response" POST
    /runtime/invocation/AwsRequestId/response; "Initialization error" POST /runtime/init/error and "Invocation
    error" POST /runtime/invocation/AwsRequestId/error, both with Lambda-Runtime-Function-Error-Type; the
    OpenAPI document (runtime-api.zip) answers 202 Accepted to every POST. All six headers are sent: the
    awslambdaric native client crashed here when the last three were missing.
    Streaming mode (runtimes-custom.html#runtimes-custom-response-streaming): a response POST with
    `Lambda-Runtime-Function-Response-Mode: streaming` and `Transfer-Encoding: chunked` is handed to the invoker
    as a `StreamedResponse` while its chunks still arrive; trailers are kept only when the `Trailer` header
    declared them (the double answers 400 to an undeclared one); the answer, 202, comes after the last chunk.
    `invoke(event)` queues an event and waits for what the runtime posts back.
    """

    PREFIX = "/2018-06-01/runtime"
    FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:tinyllm"

    def __init__(self):
        self.events: queue.Queue = queue.Queue()  # (request id, event bytes) waiting for GET /next
        self.outcomes: dict[str, queue.Queue] = {}  # request id -> ("response" | "error", body, headers)
        self.init_errors: queue.Queue = queue.Queue()  # (body, headers)
        self.server = QuietServer(("127.0.0.1", 0), self.handler_class())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:  # what AWS_LAMBDA_RUNTIME_API holds: host:port
        return f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event: dict, timeout: float = 60) -> tuple[str, dict | StreamedResponse, dict]:
        """(kind, body, headers) that the runtime posted for this event: kind "response" or "error" with the JSON
        body, or "stream" with a `StreamedResponse` whose chunks may still be arriving."""
        request_id = str(uuid.uuid4())
        self.outcomes[request_id] = outcome = queue.Queue(maxsize=1)
        self.events.put((request_id, json.dumps(event).encode()))
        try:
            kind, body, headers = outcome.get(timeout=timeout)
        finally:
            del self.outcomes[request_id]
        return kind, body if kind == "stream" else json.loads(body), headers

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handler_class(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path != f"{api.PREFIX}/invocation/next":
                    return self.reply(404, {"errorMessage": f"no route {self.path}"})
                request_id, event = api.events.get()  # blocks, like Lambda, until there is an invocation
                self.reply(
                    200,
                    event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 60_000),
                        "Lambda-Runtime-Invoked-Function-Arn": api.FUNCTION_ARN,
                        "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                        "Lambda-Runtime-Client-Context": "",
                        "Lambda-Runtime-Cognito-Identity": "",
                    },
                )

            def do_POST(self):
                headers = {k.lower(): v for k, v in self.headers.items()}
                chunked = headers.get("transfer-encoding", "").lower() == "chunked"
                match = re.fullmatch(rf"{api.PREFIX}/invocation/([^/]+)/(response|error)", self.path)
                streaming = headers.get("lambda-runtime-function-response-mode") == "streaming"
                if match and match[1] in api.outcomes and match[2] == "response" and chunked and streaming:
                    return self.receive_stream(api.outcomes[match[1]], headers)
                body = (
                    b"".join(self.read_chunks()) if chunked else self.rfile.read(int(headers.get("content-length", 0)))
                )
                if self.path == f"{api.PREFIX}/init/error":
                    api.init_errors.put((json.loads(body), headers))
                    return self.reply(202, {"status": "OK"})
                if not match or match[1] not in api.outcomes:
                    return self.reply(404 if not match else 400, {"errorMessage": f"unknown {self.path}"})
                api.outcomes[match[1]].put((match[2], body, headers))
                self.reply(202, {"status": "OK"})

            def read_chunks(self, trailers: dict[str, str] | None = None):
                """The chunked body's chunks as they arrive (RFC 9112 section 7.1), then its trailer fields."""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    yield self.rfile.read(size)
                    self.rfile.readline()  # the CRLF after the chunk's data
                while line := self.rfile.readline().strip():
                    name, _, value = line.decode("latin-1").partition(":")
                    if trailers is not None:
                        trailers[name.strip().lower()] = value.strip()

            def receive_stream(self, outcome: queue.Queue, headers: dict[str, str]):
                streamed = StreamedResponse(headers)
                outcome.put(("stream", streamed, headers))  # the invoker reads while the chunks arrive
                trailers: dict[str, str] = {}
                try:
                    for chunk in self.read_chunks(trailers):
                        streamed.arrivals.append((time.perf_counter(), chunk))
                        streamed._parts.put(chunk)
                finally:
                    declared = {n.strip().lower() for n in headers.get("trailer", "").split(",") if n.strip()}
                    streamed.trailers = {k: v for k, v in trailers.items() if k in declared}
                    streamed._parts.put(None)
                undeclared = set(trailers) - set(streamed.trailers)
                if undeclared:
                    return self.reply(400, {"errorMessage": f"trailers not declared in Trailer: {sorted(undeclared)}"})
                self.reply(202, {"status": "OK"})

            def reply(self, status: int, body, headers: dict | None = None):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # no access log: the runtime's own output is what the tests read

        return Handler


STREAM_WRAPPER = "stream-runtime"  # the package's exec wrapper (functions/aws/stream-runtime)
# Between the http-integration-response prelude and the body (aws-lambda-nodejs-runtime-interface-client
# src/HttpResponseStream.js: "Write 8 null bytes after the JSON prelude").
STREAM_PRELUDE_DELIMITER = b"\0" * 8


def start_lambda(
    venv_python: Path,
    task_root: Path,
    api: LambdaRuntimeAPI,
    log,
    *,
    streaming: bool = False,
    handler: str = "handler.handler",
) -> subprocess.Popen:
    """`python -m awslambdaric <handler>` in the task root, as Lambda's python3.12 runtime starts it for the
    function's configured handler; with `streaming`, that command handed to the package's exec wrapper, as Lambda
    does when the function's AWS_LAMBDA_EXEC_WRAPPER names it."""
    # Source: docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html (AWS_LAMBDA_RUNTIME_API,
    # LAMBDA_TASK_ROOT, AWS_LAMBDA_FUNCTION_NAME, _HANDLER ...) and python-package.html ("the function's root
    # directory is first on the search path": PYTHONPATH holds the task root); runtimes-modify.html#runtime-wrapper
    # ("Lambda sends to your script the path to the interpreter and all of the original arguments").
    command = [str(venv_python), "-m", "awslambdaric", handler]
    wrapper = {"AWS_LAMBDA_EXEC_WRAPPER": str(task_root / STREAM_WRAPPER)} if streaming else {}
    env = clean_environment(
        AWS_LAMBDA_RUNTIME_API=api.address,
        LAMBDA_TASK_ROOT=str(task_root),
        PYTHONPATH=str(task_root),
        _HANDLER=handler,
        AWS_LAMBDA_FUNCTION_NAME="tinyllm",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024",
        AWS_REGION="eu-west-1",
        TZ=":UTC",
        **wrapper,
    )
    return subprocess.Popen(
        [*wrapper.values(), *command],
        cwd=task_root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@contextlib.contextmanager
def running_lambda(
    venv_python: Path, task_root: Path, log_path: Path, **options
) -> Iterator[tuple[LambdaRuntimeAPI, subprocess.Popen]]:
    """A Runtime API double and the runtime process `start_lambda(**options)` starts against it, its output in
    `log_path`; on exit the process group is stopped and the double closed."""
    api = LambdaRuntimeAPI()
    try:
        with open(log_path, "w") as log:
            process = start_lambda(venv_python, task_root, api, log, **options)
        try:
            yield api, process
        finally:
            stop_group(process)
    finally:
        api.close()


# ---- Azure --------------------------------------------------------------------------------------------------


class AzureHost:
    """azure_host.py under 3.12 on an unpacked package: the indexing metadata, then one reply per request."""

    def __init__(self, python: Path, root: Path, app_settings: dict[str, str], stderr):
        self.process = subprocess.Popen(
            [str(python), "-I", "-S", str(AZURE_HOST), str(root)],
            cwd=root,
            env=clean_environment(**app_settings),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # both are PIPE
        self.stdin, self.stdout = stdin, stdout
        first = self.stdout.readline()
        if not first:
            self.process.wait(timeout=30)
            raise RuntimeError(f"the Azure host view of {root} exited with {self.process.returncode} while indexing")
        self.functions = json.loads(first)["functions"]  # the RpcFunctionMetadata the worker would send

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict:
        """{"status", "headers", "body" (bytes)} from the indexed function."""
        self.stdin.write(
            json.dumps({"method": method, "url": url, "headers": headers, "body": body.decode("latin-1")}) + "\n"
        )
        self.stdin.flush()
        reply = json.loads(self.stdout.readline())
        return {**reply, "body": reply["body"].encode("latin-1")}

    def close(self) -> None:
        self.stdin.close()
        stop_group(self.process)


# ---- HTTP in front of the runtimes ---------------------------------------------------------------------------

Answer = tuple[int, dict[str, str], Iterator[bytes]]  # status, headers, the body's chunks as they come


def function_url_answer(api: LambdaRuntimeAPI) -> Callable[[str, str, dict[str, str], bytes], Answer]:
    """What a RESPONSE_STREAM Function URL does with one HTTP request: a payload 2.0 event for the Runtime API
    double, then the streamed response split into its http-integration-response prelude (status, headers,
    cookies; up to the 8 NUL bytes) and the body, passed on chunk by chunk."""

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        event = lambda_event(method, path, "", headers)  # the body goes base64-encoded: any bytes arrive intact
        event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
        kind, streamed, _ = api.invoke(event, timeout=START_TIMEOUT_S)
        if not isinstance(streamed, StreamedResponse):
            raise RuntimeError(f"the runtime posted a {kind} instead of a streamed response: {streamed}")
        chunks = iter(streamed)
        head = b""
        while STREAM_PRELUDE_DELIMITER not in head:
            head += next(chunks)
        prelude, _, rest = head.partition(STREAM_PRELUDE_DELIMITER)
        meta = json.loads(prelude)
        cookies = {"set-cookie": ", ".join(meta["cookies"])} if meta.get("cookies") else {}
        return meta["statusCode"], {**meta.get("headers", {}), **cookies}, itertools.chain([rest], chunks)

    return answer


def azure_answer(host: AzureHost) -> Callable[[str, str, dict[str, str], bytes], Answer]:
    """What the Functions host does with one HTTP request: the indexed function's whole reply (it buffers)."""
    lock = threading.Lock()  # one request at a time on the host view's stdin/stdout

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        with lock:
            reply = host.request(method, f"https://tinyllm.azurewebsites.net{path}", headers, body)
        return reply["status"], reply["headers"], iter((reply["body"],))

    return answer


class HttpFront:
    """A loopback HTTP server that hands each request to `answer` and writes the body's chunks as they come
    (HTTP/1.1 chunked, flushed per chunk): real HTTP clients (`openai`, an SSE reader) in front of a runtime
    that is not an HTTP server itself. `url` is its base URL."""

    def __init__(self, answer: Callable[[str, str, dict[str, str], bytes], Answer]):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers, chunks = answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for chunk in chunks:
                    if chunk:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
