"""`python -m infra.smoke STACK`: call a deployed stack's URL with its cloud's credentials.

STACK is gcp, aws, azure or any stack made from them (such as CI's `pr-<number>-<cloud>`): the cloud is read
from the stack's `cloud` output.

Reads the stack outputs with the Pulumi CLI, then GETs /healthz and /v1/models and POSTs a tiny completion, then
the same completion with `stream: true`, read as server-sent events until `[DONE]` (it prints how many events
came and when the first one did: a streaming URL, such as AWS's RESPONSE_STREAM one, sends it before the last).
Credentials, per cloud (private stacks):
- gcp:   a Google ID token whose audience is the function URL: `TINYLLM_ID_TOKEN` when set (CI mints it with
         google-github-actions/auth `token_format: id_token`, because `gcloud auth print-identity-token` cannot
         with Workload Identity Federation credentials: google-github-actions/auth#291), else
         `gcloud auth print-identity-token` (a user's own login). Sent in `X-Serverless-Authorization` when an API
         key also needs the `Authorization` header (Cloud Run accepts either header for the token).
- aws:   SigV4 for the `lambda` service, signed by botocore with the default credential chain.
- azure: the default function key (from the stack's `key_command`) in `x-functions-key`.
`TINYLLM_API_KEY`, when set, is sent as `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

INFRA = Path(__file__).resolve().parent


class SmokeError(Exception):
    """A smoke run that cannot start or fails, with a message that says what to do (one line, exit status 1)."""


def auth_headers(
    cloud: str,
    outputs: dict,
    method: str,
    url: str,
    body: bytes | None,
    api_key: str | None,
    credential: str | None = None,
    aws_credentials=None,
) -> dict[str, str]:
    """Headers that authenticate one request; `credential` is the ID token (gcp) or function key (azure)."""
    headers = {"Content-Type": "application/json"} if body else {}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if outputs.get("public"):
        return headers
    if cloud in ("gcp", "azure"):
        if not credential:
            raise SmokeError(f"a private {cloud} stack needs a credential (gcp: an ID token; azure: the function key)")
        if cloud == "gcp":
            headers["X-Serverless-Authorization" if api_key else "Authorization"] = f"Bearer {credential}"
        else:
            headers["x-functions-key"] = credential
    elif cloud == "aws":
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        match = re.search(r"\.lambda-url\.([a-z0-9-]+)\.on\.aws", url)
        if match is None:
            raise SmokeError(f"{url}: not a Lambda function URL (https://<id>.lambda-url.<region>.on.aws/)")
        region = match.group(1)
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(aws_credentials, "lambda", region).add_auth(request)
        headers = dict(request.headers.items())
    return headers


def _run(command: list[str] | str, what: str, **kwargs) -> str:
    """stdout of a helper command (pulumi, gcloud, az), or a SmokeError naming the command and its error."""
    try:
        return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout.strip()
    except FileNotFoundError as error:
        raise SmokeError(f"{what}: {error.filename} is not installed or not on PATH") from None
    except subprocess.CalledProcessError as error:
        raise SmokeError(f"{what} failed (exit {error.returncode}): {error.stderr.strip()[-500:]}") from None


def gcp_id_token(environ=os.environ) -> str:
    """An ID token for the function: CI's pre-minted TINYLLM_ID_TOKEN, else the user's gcloud login."""
    token = environ.get("TINYLLM_ID_TOKEN", "").strip()
    if token:
        return token
    return _run(
        ["gcloud", "auth", "print-identity-token"], "gcloud auth print-identity-token (or set TINYLLM_ID_TOKEN)"
    )


def _credential(cloud: str, outputs: dict) -> tuple[str | None, object]:
    if outputs.get("public"):
        return None, None
    if cloud == "gcp":
        return gcp_id_token(), None
    if cloud == "azure":
        return _run(outputs["key_command"], "reading the function key", shell=True), None
    import botocore.session

    return None, botocore.session.Session().get_credentials().get_frozen_credentials()


STREAMED = json.dumps({"prompt": "Hello", "max_tokens": 8, "stream": True}).encode()


def read_events(response, sent: float) -> str:
    """Read a streamed answer's server-sent events to the end: "<n> events, first after <ms> ms, [DONE]", or a
    SmokeError when it is not a stream that ends with [DONE]."""
    events, first = [], None
    for line in response:
        if line.startswith(b"data: "):
            first = time.perf_counter() - sent if first is None else first
            events.append(line[6:].strip())
    if not events or events[-1] != b"[DONE]":
        raise SmokeError(f"the streamed completion did not end with 'data: [DONE]' ({len(events)} events)")
    assert first is not None  # events is not empty
    return f"{len(events) - 1} events, first after {first * 1000:.0f} ms, [DONE]"


def main(stack: str) -> int:
    outputs = json.loads(
        _run(
            ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
            f"pulumi stack output --stack {stack}",
            cwd=INFRA,
        )
    )
    cloud, base = outputs["cloud"], outputs["url"].rstrip("/")
    api_key = os.environ.get("TINYLLM_API_KEY")
    credential, aws_credentials = _credential(cloud, outputs)
    calls = [
        ("GET", "/healthz", None),
        ("GET", "/v1/models", None),
        ("POST", "/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 8}).encode()),
        ("POST", "/v1/completions", STREAMED),
    ]
    for method, path, body in calls:
        url = base + path
        headers = auth_headers(cloud, outputs, method, url, body, api_key, credential, aws_credentials)
        try:
            sent = time.perf_counter()
            with urllib.request.urlopen(
                urllib.request.Request(url, data=body, method=method, headers=headers), timeout=120
            ) as response:
                answer = (
                    read_events(response, sent) if body is STREAMED else response.read(300).decode(errors="replace")
                )
                print(f"{method} {path} -> {response.status} {answer}")
        except urllib.error.HTTPError as error:
            raise SmokeError(f"{method} {path} -> {error.code} {error.read(300).decode(errors='replace')}") from None
        except (urllib.error.URLError, TimeoutError) as error:
            raise SmokeError(f"{method} {url}: {getattr(error, 'reason', error)}") from None
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m infra.smoke STACK   (gcp, aws, azure, pr-<number>-<cloud>, ...)")
    try:
        sys.exit(main(sys.argv[1]))
    except SmokeError as error:
        sys.exit(f"smoke: {error}")
