"""The HTTP benchmark: the local functions-framework server (`python -m functions.devtools serve`) under bounded load.

A fixed number of 16-token greedy completions (POST /v1/completions) is sent by a fixed pool of client
threads, each holding one keep-alive connection to 127.0.0.1. Each client first sends one untimed request
(connects, and lets the server load its model), then all start together. Reported: requests/s, p50/p99
latency, errors (a failed request, a status other than 200, or a body without choices), and the server's
peak RSS: the sum of VmHWM over the server process and its children (gunicorn forks a worker; pages they
share are counted in each, so the sum is an upper bound).
A second row times prompt scoring: 16-prompt requests with echo + logprobs and max_tokens 0 (lm-eval's
loglikelihood requests), one at a time, reported as prompt tokens per second.
The server runs with an API key (core then checks `Authorization: Bearer`, as a deployment would) and is
always stopped, with its whole process group, before `run` returns.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import PROMPT
from bench.report import Target, environment_notes, fmt, load_average, markdown_table, percentile, verdict
from functions.devtools.local import background_server, server_environment
from train.config import DEFAULT_CORPUS, read_corpus_lines

HOST = "127.0.0.1"  # loopback only
MAX_TOKENS = 16
STARTUP_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Settings:
    requests: int  # timed requests in all
    clients: int  # concurrent connections
    scoring_requests: int = 20  # timed 16-prompt echo requests, one after the other


FULL = Settings(requests=2000, clients=8, scoring_requests=40)
QUICK = Settings(requests=200, clients=8, scoring_requests=5)
SCORING_PROMPTS = 16  # core.schema.MAX_PROMPTS: the largest batch one request may carry


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # of successful requests, in seconds
    completion_tokens: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def post_completion(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> dict:
    """One POST /v1/completions; its JSON answer, or ValueError on another status or an answer without choices."""
    conn.request("POST", "/v1/completions", body=body, headers=headers)
    response = conn.getresponse()
    payload = response.read()
    if response.status != 200:
        raise ValueError(f"HTTP {response.status}: {payload[:200]!r}")
    answer = json.loads(payload)
    if not answer.get("choices"):
        raise ValueError(f"no choices in {payload[:200]!r}")
    return answer


def complete(conn: http.client.HTTPConnection, body: bytes, headers: dict) -> int:
    """One completion; returns its completion token count, raises ValueError on any unexpected answer."""
    return post_completion(conn, body, headers).get("usage", {}).get("completion_tokens", -1)


def generate_load(port: int, settings: Settings, api_key: str | None = None) -> LoadResult:
    """Send settings.requests completions from settings.clients threads; count every failure as an error."""
    body = json.dumps({"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0}).encode()
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    result, lock = LoadResult(), threading.Lock()
    remaining = iter(range(settings.requests))  # next() on a shared iterator is atomic under the GIL
    start = threading.Barrier(settings.clients + 1)

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
        try:
            complete(conn, body, headers)  # warm-up, untimed; a failure here shows up in the timed ones
        except (OSError, ValueError, http.client.HTTPException):
            conn.close()
        start.wait()
        for _ in remaining:
            began = time.perf_counter()
            try:
                tokens = complete(conn, body, headers)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                conn.close()  # http.client reconnects on the next request
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                result.latencies.append(time.perf_counter() - began)
                result.completion_tokens.append(tokens)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(settings.clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - began
    return result


@dataclass
class ScoringResult:
    seconds: list[float] = field(default_factory=list)  # per request
    prompt_tokens: int = 0  # per request
    errors: list[str] = field(default_factory=list)


def scoring_body(lines: list[str]) -> bytes:
    """What lm-eval's loglikelihood sends: a batch of prompts, echo + logprobs, nothing new to generate."""
    return json.dumps({"prompt": lines[:SCORING_PROMPTS], "max_tokens": 0, "echo": True, "logprobs": 1}).encode()


def score_prompts(port: int, requests: int, lines: list[str], api_key: str | None = None) -> ScoringResult:
    """Send `requests` 16-prompt echo requests on one keep-alive connection; time each."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    body, result = scoring_body(lines), ScoringResult()
    conn = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
    try:
        for i in range(requests + 1):  # the first one is an untimed warm-up
            began = time.perf_counter()
            try:
                answer = post_completion(conn, body, headers)
                if len(answer["choices"]) != SCORING_PROMPTS:
                    raise ValueError(f"{len(answer['choices'])} choices for {SCORING_PROMPTS} prompts")
            except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
                conn.close()
                result.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if i:
                result.seconds.append(time.perf_counter() - began)
                result.prompt_tokens = answer["usage"]["prompt_tokens"]
    finally:
        conn.close()
    return result


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants, from the parent pids in /proc/*/stat."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the process ended while we looked
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += parents.get(tree[-1], [])
    return tree


def peak_rss_kb(pid: int) -> int:
    """Sum of VmHWM (peak resident set, kB) over the process tree rooted at pid."""
    total = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return total


def serve_and_load(model_dir: Path, settings: Settings) -> tuple[LoadResult, ScoringResult, int]:
    """Start `python -m functions.devtools serve` on a free loopback port, load it, score batches of prompts;
    return both results and the server's RSS (kB)."""
    api_key = secrets.token_urlsafe(24)
    env = dict(
        os.environ,
        TINYLLM_MODEL_DIR=str(model_dir),
        TINYLLM_API_KEY_SHA256=hashlib.sha256(api_key.encode()).hexdigest(),
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        background_server(env, Path(tmp) / "server.log", HOST, STARTUP_TIMEOUT_S) as (server, port),
    ):
        result = generate_load(port, settings, api_key)
        scoring = score_prompts(port, settings.scoring_requests, corpus_lines(), api_key)
        return result, scoring, peak_rss_kb(server.pid)


def corpus_lines() -> list[str]:
    """The first 16 lines of the training corpus: the prompts of the scoring row."""
    return read_corpus_lines(DEFAULT_CORPUS)[:SCORING_PROMPTS]


def scoring_row(scoring: ScoringResult) -> list[str]:
    if not scoring.seconds:
        return ["prompt scoring (16-prompt echo request)", "no successful request", "—", "**no**"]
    p50 = percentile(scoring.seconds, 50)
    return [
        "prompt scoring (16-prompt echo + logprobs request)",
        f"{fmt(scoring.prompt_tokens / p50)} tokens/s ({fmt(1000 * p50)} ms per request, p50)",
        "—",
        "—",
    ]


def run(model_dir: Path, settings: Settings) -> str:
    """Benchmark the local server and return the markdown table with its notes."""
    notes = environment_notes()
    result, scoring, rss_kb = serve_and_load(model_dir, settings)
    ok = result.latencies
    rate = len(ok) / result.seconds
    p50, p99 = (1000 * percentile(ok, q) if ok else float("nan") for q in (50, 99))
    targets = {"rate": Target(">=", 200, " req/s"), "p99": Target("<=", 100, " ms"), "errors": Target("==", 0)}
    rows = [
        ["throughput", f"{fmt(rate)} req/s", str(targets["rate"]), verdict(targets["rate"].met(rate))],
        ["latency p50", f"{fmt(p50)} ms", "—", "—"],
        ["latency p99", f"{fmt(p99)} ms", str(targets["p99"]), verdict(targets["p99"].met(p99))],
        [
            "errors",
            f"{len(result.errors)} of {settings.requests}",
            str(targets["errors"]),
            verdict(targets["errors"].met(len(result.errors))),
        ],
        ["server peak RSS (VmHWM, all processes)", f"{fmt(rss_kb * 1024 / 1e6)} MB", "—", "—"],
        scoring_row(scoring),
    ]
    tokens = sorted(set(result.completion_tokens))
    server_env = server_environment(dict(os.environ))
    notes += [
        f"{settings.requests} POST /v1/completions ({MAX_TOKENS} tokens max, temperature 0, prompt {PROMPT!r}) "
        f"from {settings.clients} keep-alive clients on {HOST}, in {fmt(result.seconds)} s; "
        f"completion tokens per response: {', '.join(map(str, tokens)) or 'none'}.",
        # `tinyllm serve` passes these to functions-framework's gunicorn (functions.devtools.local.server_environment).
        f"Server: functions-framework on gunicorn, WORKERS={server_env['WORKERS']}, THREADS={server_env['THREADS']}.",
        f"Load average when the run ended {load_average()}; the load generator shares the machine's CPUs.",
    ]
    notes.append(
        f"Prompt scoring: {settings.scoring_requests} POST /v1/completions, one at a time on one connection, each "
        f"with {SCORING_PROMPTS} corpus lines as prompts ({scoring.prompt_tokens} prompt tokens), max_tokens 0, "
        "echo and logprobs 1, as lm-eval's loglikelihood sends them; tokens/s = prompt tokens / median latency; "
        f"errors: {len(scoring.errors)}."
    )
    if result.errors:
        notes.append(f"First error: {result.errors[0]}")
    if scoring.errors:
        notes.append(f"First scoring error: {scoring.errors[0]}")
    table = markdown_table(["metric", "value", "target", "met?"], rows)
    return table + "\n\n" + "\n".join(f"- {note}" for note in notes)
