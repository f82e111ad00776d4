"""`python -m infra.smoke STACK`: call a deployed stack's URL with its cloud's credentials.

STACK is gcp, aws, azure or any stack made from them (such as CI's `pr-<number>-<cloud>`): the cloud is read
from the stack's `cloud` output.

Reads the stack outputs with the Pulumi CLI, then GETs /healthz and /v1/models and POSTs a tiny completion.
Credentials, per cloud (private stacks):
- gcp:   a Google ID token from `gcloud auth print-identity-token`, sent in `X-Serverless-Authorization` when an
         API key also needs the `Authorization` header (Cloud Run accepts either header for the token).
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
import urllib.request
from pathlib import Path

INFRA = Path(__file__).resolve().parent


class SmokeError(ValueError):
    """What the smoke test cannot call the stack with; printed as one line, exit status 1."""


def auth_headers(cloud: str, outputs: dict, method: str, url: str, body: bytes | None,
                 api_key: str | None, credential: str | None = None, aws_credentials=None) -> dict[str, str]:
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


def _credential(cloud: str, outputs: dict) -> tuple[str | None, object]:
    if outputs.get("public"):
        return None, None
    if cloud == "gcp":
        token = subprocess.run(["gcloud", "auth", "print-identity-token"], check=True, capture_output=True, text=True)
        return token.stdout.strip(), None
    if cloud == "azure":
        key = subprocess.run(outputs["key_command"], shell=True, check=True, capture_output=True, text=True)
        return key.stdout.strip(), None
    import botocore.session

    return None, botocore.session.Session().get_credentials().get_frozen_credentials()


def main(stack: str) -> int:
    outputs = json.loads(subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        cwd=INFRA, check=True, capture_output=True, text=True).stdout)
    cloud, base = outputs["cloud"], outputs["url"].rstrip("/")
    api_key = os.environ.get("TINYLLM_API_KEY")
    credential, aws_credentials = _credential(cloud, outputs)
    calls = [("GET", "/healthz", None), ("GET", "/v1/models", None),
             ("POST", "/v1/completions", json.dumps({"prompt": "Hello", "max_tokens": 8}).encode())]
    for method, path, body in calls:
        url = base + path
        headers = auth_headers(cloud, outputs, method, url, body, api_key, credential, aws_credentials)
        with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method, headers=headers),
                                    timeout=120) as response:
            print(f"{method} {path} -> {response.status} {response.read(300).decode(errors='replace')}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m infra.smoke STACK   (gcp, aws, azure, pr-<number>-<cloud>, ...)")
    try:
        sys.exit(main(sys.argv[1]))
    except SmokeError as error:
        sys.exit(f"infra.smoke: {error}")
