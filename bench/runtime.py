"""The runtime benchmark: each package's cold start, measured the way its cloud starts it, under CPython 3.12,
and the package's size.

Cold start is the wall time from spawning the runtime's process to the first 16-token completion it answers:
- gcp: functions-framework (from a 3.12 virtualenv holding the package's requirements.txt) on the unpacked
  source; the completion is POSTed over loopback until the server accepts it;
- aws: `python -m awslambdaric handler.handler` on the unpacked x86_64 task root; the completion is a Function URL
  event waiting at the Runtime API double, and the time ends when the runtime posts its response;
- azure: the worker's view of the unpacked package (indexing, then the indexed function called with an
  HttpRequest); the time ends when the function's reply arrives.
Each sample is a new process; the virtualenvs are made once, before any timing. The packages are built by
infra.bundle from artifacts/model/, as `pulumi up` builds them, into a temporary directory.
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import PROMPT
from bench.report import environment_notes, fmt, load_average, markdown_table
from functions.devtools import runtimes
from functions.devtools.local import free_port, stop_group

CLOUDS = ("gcp", "aws", "azure")
COMPLETION = {"prompt": PROMPT, "max_tokens": 16, "temperature": 0}
MIB = 1024 * 1024


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
        process = runtimes.start_lambda(venv_python, task_root, api, log)
    try:
        kind, result, _ = api.invoke(event, timeout=runtimes.START_TIMEOUT_S)
        elapsed = time.perf_counter() - began
    finally:
        stop_group(process)
        api.close()
    if kind != "response" or result.get("statusCode") != 200:
        raise RuntimeError(f"aws answered {kind}: {str(result)[:300]}")
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
    """Build the three packages, measure their cold starts under 3.12, return the markdown table with notes."""
    from infra import bundle

    if model_dir.resolve() != bundle.MODEL_DIR.resolve():
        raise ValueError(
            f"the runtime benchmark measures the packages infra.bundle builds from {bundle.MODEL_DIR}; "
            f"it cannot use --model-dir {model_dir}"
        )
    python312 = runtimes.find_python312()
    notes = environment_notes()
    with tempfile.TemporaryDirectory(prefix="tinyllm-bench-runtime-") as tmp:
        work = Path(tmp)
        packages = {cloud: bundle.build(cloud, arch="x86_64", dist=work / f"dist-{cloud}") for cloud in CLOUDS}
        prepared = prepare(python312, packages, work)
        samples: dict[str, list[float]] = {cloud: [] for cloud in CLOUDS}
        for _ in range(settings.samples):  # clouds alternate, so background load hits all alike
            for cloud, (measure, args) in prepared.items():
                samples[cloud].append(measure(*args, work))
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
        "(gcp: functions-framework over loopback; aws: awslambdaric via the Runtime API double; azure: the "
        "indexed function). The cloud's own provisioning (container, download, unzip) is not in these numbers.",
        f"Sizes as infra.bundle reports them (MiB = 2^20 bytes). Load average when the run ended {load_average()}.",
    ]
    return table(samples, packages) + "\n\n" + "\n".join(f"- {note}" for note in notes)
