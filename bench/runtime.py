"""The runtime benchmark: each package's cold start, measured the way its cloud starts it, under CPython 3.12,
the package's size, and the time to first token of a streamed answer.

Cold start is the wall time from spawning the runtime's process to the first 16-token completion it answers:
- gcp: functions-framework (from a 3.12 virtualenv holding the package's requirements.txt) on the unpacked
  source; the completion is POSTed over loopback until the server accepts it;
- aws: the unpacked x86_64 task root started through its exec wrapper `stream-runtime` (as infra deploys it, behind
  a RESPONSE_STREAM Function URL); the completion is a Function URL event waiting at the Runtime API double, and
  the time ends when the runtime has posted its whole streamed response;
- azure: the worker's view of the unpacked package (indexing, then the indexed function called with an
  HttpRequest); the time ends when the function's reply arrives.
Each sample is a new process; the virtualenvs are made once, before any timing. The packages are built by
infra.bundle from artifacts/model/, as `pulumi up` builds them, into a temporary directory.

Time to first token, on each package once warm, over HTTP as a client reads it (gcp: functions-framework itself;
aws: `runtimes.function_url_answer`, the RESPONSE_STREAM Function URL's part; azure: `runtimes.azure_answer`, the
host's): a 128-token streamed completion (end-of-text banned by logit_bias, so all 128 are decoded), the arrival
of its first and of its last event after the request was sent, next to the same completion asked without
`stream`. Target: where the package streams, the first event comes within 10 % of the whole answer's time.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench import PROMPT
from bench.report import environment_notes, fmt, load_average, markdown_table
from functions.devtools import runtimes
from functions.devtools.local import answers_health, free_port, stop_group

CLOUDS = ("gcp", "aws", "azure")
COMPLETION = {"prompt": PROMPT, "max_tokens": 16, "temperature": 0}
MIB = 1024 * 1024
STREAMED_TOKENS = 128
STREAMS = {"gcp": True, "aws": True, "azure": False}  # Azure buffers: see docs/deploying.md "Streaming"
FIRST_EVENT_TARGET = 0.10  # of the whole answer's time, where the package streams


@dataclass(frozen=True)
class Settings:
    samples: int  # cold starts per package


FULL = Settings(samples=5)
QUICK = Settings(samples=1)


def cold_start_gcp(venv_python: Path, source: Path, log_dir: Path) -> float:
    port = free_port()
    body = json.dumps(COMPLETION).encode()
    with open(log_dir / "gcp.log", "a") as log:
        began = time.perf_counter()
        process = runtimes.start_functions_framework(venv_python, source, port, log)
    try:
        while time.perf_counter() - began < runtimes.START_TIMEOUT_S:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                conn.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
                reply = conn.getresponse()
                payload = reply.read()
                if reply.status != 200:
                    raise RuntimeError(f"gcp answered {reply.status}: {payload[:300]!r}")
                return time.perf_counter() - began
            except ConnectionError:
                if process.poll() is not None:
                    raise RuntimeError(f"functions-framework exited with {process.returncode}") from None
                time.sleep(0.005)
            finally:
                conn.close()
        raise RuntimeError(f"functions-framework did not answer within {runtimes.START_TIMEOUT_S} s")
    finally:
        stop_group(process)


def cold_start_aws(venv_python: Path, task_root: Path, log_dir: Path) -> float:
    event = {
        "version": "2.0",
        "rawPath": "/v1/completions",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/v1/completions"}},
        "body": json.dumps(COMPLETION),
        "isBase64Encoded": False,
    }
    api = runtimes.LambdaRuntimeAPI()
    with open(log_dir / "aws.log", "a") as log:
        began = time.perf_counter()
        process = runtimes.start_lambda(venv_python, task_root, api, log, streaming=True)
    try:
        kind, result, _ = api.invoke(event, timeout=runtimes.START_TIMEOUT_S)
        body = result.read() if isinstance(result, runtimes.StreamedResponse) else b""
        elapsed = time.perf_counter() - began
    finally:
        stop_group(process)
        api.close()
    if kind != "stream" or not body.startswith(b'{"statusCode": 200'):
        raise RuntimeError(f"aws answered {kind}: {str(result)[:300]} {body[:300]!r}")
    return elapsed


def cold_start_azure(python312: Path, root: Path, log_dir: Path) -> float:
    with open(log_dir / "azure.log", "a") as log:
        began = time.perf_counter()
        host = runtimes.AzureHost(python312, root, {}, log)
        try:
            reply = host.request(
                "POST",
                "https://tinyllm.azurewebsites.net/v1/completions",
                {"Content-Type": "application/json"},
                json.dumps(COMPLETION).encode(),
            )
            elapsed = time.perf_counter() - began
        finally:
            host.close()
    if reply["status"] != 200:
        raise RuntimeError(f"azure answered {reply['status']}: {reply['body'][:300]!r}")
    return elapsed


def streamed_completion(eos_token_id: int, stream: bool = True) -> dict:
    """The 128-token completion of the time-to-first-token measure: end-of-text banned, so none stops early."""
    return {
        "prompt": PROMPT,
        "max_tokens": STREAMED_TOKENS,
        "temperature": 0,
        "logit_bias": {str(eos_token_id): -100},
        "stream": stream,
    }


@contextlib.contextmanager
def posted_completion(base_url: str, body: dict) -> Iterator[tuple[http.client.HTTPResponse, float]]:
    """POST /v1/completions to `base_url`; yield (its 200 reply, the perf_counter when the request was sent)."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=runtimes.START_TIMEOUT_S)
    try:
        sent = time.perf_counter()
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        if reply.status != 200:
            raise RuntimeError(f"{base_url} answered {reply.status}: {reply.read()[:300]!r}")
        yield reply, sent
    finally:
        conn.close()


def timed_events(base_url: str, body: dict) -> list[tuple[float, dict]]:
    """POST /v1/completions and read its server-sent events as they arrive: (seconds after the request was sent,
    the event's JSON), `[DONE]` left out."""
    with posted_completion(base_url, body) as (reply, sent):
        events = []
        while line := reply.readline():
            if line.startswith(b"data: ") and line.strip() != b"data: [DONE]":
                events.append((time.perf_counter() - sent, json.loads(line[6:])))
        return events


def blocking_time(base_url: str, body: dict) -> float:
    with posted_completion(base_url, body) as (reply, sent):
        answer = json.loads(reply.read())
        elapsed = time.perf_counter() - sent
    if answer["usage"]["completion_tokens"] != STREAMED_TOKENS:
        raise RuntimeError(f"{base_url} decoded {answer['usage']['completion_tokens']} tokens, not {STREAMED_TOKENS}")
    return elapsed


@contextlib.contextmanager
def warm_fronts(python312: Path, paths: dict, work: Path) -> Iterator[dict[str, str]]:
    """{cloud: base URL} of each package started as its cloud starts it, behind its cloud's HTTP front."""
    with contextlib.ExitStack() as stack:
        gcp_venv, gcp_source = paths["gcp"]
        port = free_port()
        gcp_log = stack.enter_context(open(work / "gcp-warm.log", "w"))
        gcp = runtimes.start_functions_framework(gcp_venv, gcp_source, port, gcp_log)
        stack.callback(stop_group, gcp)
        lambda_venv, task_root = paths["aws"]
        api = runtimes.LambdaRuntimeAPI()
        stack.callback(api.close)
        aws_log = stack.enter_context(open(work / "aws-warm.log", "w"))
        stack.callback(stop_group, runtimes.start_lambda(lambda_venv, task_root, api, aws_log, streaming=True))
        azure_log = stack.enter_context(open(work / "azure-warm.log", "w"))
        host = runtimes.AzureHost(python312, paths["azure"][1], {}, azure_log)
        stack.callback(host.close)
        fronts = {
            "aws": runtimes.HttpFront(runtimes.function_url_answer(api)),
            "azure": runtimes.HttpFront(runtimes.azure_answer(host)),
        }
        for front in fronts.values():
            stack.callback(front.close)
        urls = {"gcp": f"http://127.0.0.1:{port}", **{cloud: front.url for cloud, front in fronts.items()}}
        deadline = time.monotonic() + runtimes.START_TIMEOUT_S
        while not answers_health("127.0.0.1", port):
            if gcp.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"functions-framework did not start: {(work / 'gcp-warm.log').read_text()[-2000:]}")
            time.sleep(0.05)
        yield urls


def first_token_samples(urls: dict[str, str], eos_token_id: int, samples: int) -> dict[str, list[tuple]]:
    """Per cloud, `samples` (first event s, last event s, blocking request s), clouds alternating, after one
    warm-up of each kind of request."""
    streamed, blocking = streamed_completion(eos_token_id), streamed_completion(eos_token_id, stream=False)
    for url in urls.values():
        timed_events(url, streamed)
        blocking_time(url, blocking)
    measured: dict[str, list[tuple]] = {cloud: [] for cloud in CLOUDS}
    for _ in range(samples):
        for cloud in CLOUDS:
            events = timed_events(urls[cloud], streamed)
            # All STREAMED_TOKENS decoded: the answer ended by its length (a token may carry no text of its own, the
            # rest of a character coming with the next one, so events with text can be fewer than tokens).
            finish = events[-1][1]["choices"][0]["finish_reason"]
            if finish != "length":
                raise RuntimeError(f"{cloud} stopped early ({finish!r}) instead of decoding {STREAMED_TOKENS} tokens")
            measured[cloud].append((events[0][0], events[-1][0], blocking_time(urls[cloud], blocking)))
    return measured


def first_token_table(measured: dict[str, list[tuple]]) -> str:
    rows = []
    for cloud in CLOUDS:
        first, last, whole = (statistics.median(sample[i] for sample in measured[cloud]) for i in range(3))
        share = first / last
        verdict = ("meets" if share < FIRST_EVENT_TARGET else "misses") + f" < {FIRST_EVENT_TARGET:.0%}"
        rows.append(
            [
                f"`{cloud}.zip`",
                "yes" if STREAMS[cloud] else "no (buffered)",
                f"{fmt(first * 1000)} ms",
                f"{fmt(last * 1000)} ms",
                f"{share:.0%} ({verdict if STREAMS[cloud] else 'buffered: no target'})",
                f"{fmt(whole * 1000)} ms",
            ]
        )
    n = len(measured[CLOUDS[0]])
    headers = ["package", "streams", f"first event, median of {n}", "last event", "first / last", "blocking request"]
    return markdown_table(headers, rows)


# Azure's way to stream a Python app's HTTP responses (learn.microsoft.com/azure/azure-functions/
# functions-reference-python#http-streams; pypi.org/project/azurefunctions-extensions-http-fastapi): what it would
# add to the package and to the worker's indexing, which imports it (its web.py imports fastapi, pydantic, uvicorn).
# Pinned with its whole dependency closure (as pip resolved it for CPython 3.12 on manylinux x86_64), the way
# infra.bundle pins what it vendors, minus what the package already holds (azure-functions, werkzeug, markupsafe).
AZURE_HTTP_STREAMS = "azurefunctions-extensions-http-fastapi==1.0.1"
AZURE_HTTP_STREAMS_CLOSURE = (
    AZURE_HTTP_STREAMS,
    "azurefunctions-extensions-base==1.2.0",
    "fastapi==0.165.0",
    "starlette==1.10.0",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "uvicorn==0.54.0",
    "anyio==4.16.0",
    "h11==0.16.0",
    "click==8.5.1",
    "idna==3.20",
    "typing-extensions==4.16.0",
    "typing-inspection==0.4.5",
    "annotated-types==0.8.0",
    "annotated-doc==0.0.7",
    "opentelemetry-api==1.45.2",
)
AZURE_IMPORTS = {
    "buffered": "azure.functions",
    "HTTP streams": "azure.functions, azurefunctions.extensions.http.fastapi",
}


def azure_streams_cost(python312: Path, work: Path, samples: int) -> dict[str, tuple[int, int, float]]:
    """{variant: (zipped bytes, unzipped bytes, median import seconds)} of the Azure package's vendored
    dependencies without and with the HTTP streams extension (and everything it pulls in). Imports run under
    `python3.12 -I -B -S` with no bytecode cache, as from the package (it ships none), variants alternating."""
    from infra import bundle
    from infra.bundle_deps import install

    pins = bundle.TARGETS["azure"].requirements
    target = bundle.target_runtime("azure", "x86_64")
    dirs = {"buffered": work / "azure-deps-buffered", "HTTP streams": work / "azure-deps-streams"}
    install(pins, target, dirs["buffered"])
    install((*pins, *AZURE_HTTP_STREAMS_CLOSURE), target, dirs["HTTP streams"])
    sizes = {}
    for variant, folder in dirs.items():
        zip_path = folder.with_suffix(".zip")
        _, unzipped = bundle.write_zip(folder, zip_path)
        sizes[variant] = (zip_path.stat().st_size, unzipped)
    times: dict[str, list[float]] = {variant: [] for variant in dirs}
    for _ in range(samples):
        for variant, folder in dirs.items():
            code = (
                f"import sys, time; sys.path[:0] = [{str(folder)!r}]; began = time.perf_counter(); "
                f"import {AZURE_IMPORTS[variant]}; print(time.perf_counter() - began)"
            )
            out = subprocess.run([str(python312), "-I", "-B", "-S", "-c", code], capture_output=True, text=True)
            if out.returncode != 0:
                raise RuntimeError(f"importing {AZURE_IMPORTS[variant]} failed: {out.stderr[-1000:]}")
            times[variant].append(float(out.stdout))
    return {variant: (*sizes[variant], statistics.median(times[variant])) for variant in dirs}


def azure_streams_table(cost: dict[str, tuple[int, int, float]], samples: int) -> str:
    rows = [
        [variant, f"{zipped / MIB:.1f} MiB", f"{unzipped / MIB:.1f} MiB", f"{fmt(seconds * 1000)} ms"]
        for variant, (zipped, unzipped, seconds) in cost.items()
    ]
    (bz, bu, bt), (sz, su, st) = cost["buffered"], cost["HTTP streams"]
    rows.append(["added", f"+{(sz - bz) / MIB:.1f} MiB", f"+{(su - bu) / MIB:.1f} MiB", f"+{fmt((st - bt) * 1000)} ms"])
    headers = ["Azure package's dependencies", "zipped", "unzipped", f"import at indexing, median of {samples}"]
    return markdown_table(headers, rows)


def prepare(python312: Path, packages: dict, work: Path) -> dict:
    """Per cloud: (cold-start function, its arguments), with the virtualenvs made and packages unpacked."""
    gcp = runtimes.unpack(packages["gcp"].zip_path, work / "gcp")
    aws = runtimes.unpack(packages["aws"].zip_path, work / "aws")
    azure = runtimes.unpack(packages["azure"].zip_path, work / "azure")
    gcp_venv = runtimes.make_venv(python312, work / "gcp-venv", "-r", str(gcp / "requirements.txt"))
    lambda_venv = runtimes.make_venv(python312, work / "lambda-venv", runtimes.LAMBDA_RIC)
    return {
        "gcp": (cold_start_gcp, (gcp_venv, gcp)),
        "aws": (cold_start_aws, (lambda_venv, aws)),
        "azure": (cold_start_azure, (python312, azure)),
    }


def eos_token_id(model_dir: Path) -> int:
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["eos_token_id"]


def table(samples: dict[str, list[float]], packages: dict) -> str:
    rows = []
    for cloud in CLOUDS:
        times, package = samples[cloud], packages[cloud]
        name = f"`{cloud}.zip`" + (" (x86_64)" if cloud == "aws" else "")
        rows.append(
            [
                name,
                f"{fmt(statistics.median(times))} s",
                f"{fmt(min(times))} – {fmt(max(times))} s",
                f"{package.zipped_bytes / MIB:.1f} MiB",
                f"{package.unzipped_bytes / MIB:.1f} MiB",
            ]
        )
    n = len(samples["gcp"])
    return markdown_table(["package", f"cold start, median of {n}", "min – max", "zipped", "unzipped"], rows)


def run(model_dir: Path, settings: Settings) -> str:
    """Build the three packages around `model_dir`, measure their cold starts and time to first token under 3.12,
    return the markdown tables with notes."""
    from infra import bundle

    # The default model is trained if stale, as `pulumi up` would; another model directory is baked as it is.
    chosen = None if model_dir.resolve() == bundle.MODEL_DIR.resolve() else model_dir
    python312 = runtimes.find_python312()
    notes = environment_notes()
    with tempfile.TemporaryDirectory(prefix="tinyllm-bench-runtime-") as tmp:
        work = Path(tmp)
        packages = {
            cloud: bundle.build(cloud, arch="x86_64", dist=work / f"dist-{cloud}", model_dir=chosen) for cloud in CLOUDS
        }
        prepared = prepare(python312, packages, work)
        samples: dict[str, list[float]] = {cloud: [] for cloud in CLOUDS}
        for _ in range(settings.samples):  # clouds alternate, so background load hits all alike
            for cloud, (measure, args) in prepared.items():
                samples[cloud].append(measure(*args, work))
        with warm_fronts(python312, {cloud: args for cloud, (_, args) in prepared.items()}, work) as urls:
            first_tokens = first_token_samples(urls, eos_token_id(model_dir), settings.samples)
        azure_streams = azure_streams_cost(python312, work, settings.samples)
    version = subprocess.run(
        [str(python312), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    notes += [
        f"Runtimes: CPython {version} ({python312}); awslambdaric {runtimes.LAMBDA_RIC.split('==')[1]}; "
        "functions-framework and the dependencies as each package pins them.",
        "Cold start: spawn of the runtime's process → its answer to the first 16-token greedy completion "
        "(gcp: functions-framework over loopback; aws: the package's stream-runtime exec wrapper via the Runtime "
        "API double; azure: the indexed function). The cloud's own provisioning (container, download, unzip) is "
        "not in these numbers.",
        f"Sizes as infra.bundle reports them (MiB = 2^20 bytes). Load average when the run ended {load_average()}.",
    ]
    stream_notes = [
        f"Time to first token: a {STREAMED_TOKENS}-token greedy streamed completion (end-of-text banned) on each warm "
        "package over loopback HTTP; first / last event = arrival after the request was sent; blocking request = "
        "the same completion without `stream`. The cloud's network and front end are not in these numbers.",
    ]
    return (
        table(samples, packages)
        + "\n\n"
        + "\n".join(f"- {note}" for note in notes)
        + "\n\n"
        + first_token_table(first_tokens)
        + "\n\n"
        + "\n".join(f"- {note}" for note in stream_notes)
        + "\n\n"
        + azure_streams_table(azure_streams, settings.samples)
        + f"\n\n- What {AZURE_HTTP_STREAMS} (with what it pulls in) would add to `azure.zip`'s vendored "
        "dependencies and to the import of the app at indexing, under CPython 3.12 with no bytecode cache."
    )
