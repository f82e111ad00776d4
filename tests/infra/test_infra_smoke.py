"""infra.smoke sends each cloud's credential the way that cloud expects, and fails with a message, not a traceback
(the network is a loopback server only)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from botocore.credentials import Credentials

from infra.smoke import SmokeError, auth_headers

AWS_URL = "https://abc123.lambda-url.eu-west-1.on.aws/v1/models"
ROOT = Path(__file__).resolve().parents[2]


def test_aws_private_requests_are_sigv4_signed_for_lambda_in_the_url_region():
    headers = auth_headers(
        "aws", {"public": False}, "GET", AWS_URL, None, None, aws_credentials=Credentials("AKIDEXAMPLE", "secret")
    )
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/lambda/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


def test_gcp_id_token_moves_to_x_serverless_authorization_when_an_api_key_is_sent():
    plain = auth_headers("gcp", {"public": False}, "GET", "https://x", None, None, credential="tok")
    keyed = auth_headers("gcp", {"public": False}, "GET", "https://x", None, "k", credential="tok")
    assert plain == {"Authorization": "Bearer tok"}
    assert keyed == {"Authorization": "Bearer k", "X-Serverless-Authorization": "Bearer tok"}


def test_azure_function_key_goes_in_x_functions_key_and_public_stacks_send_only_the_api_key():
    assert auth_headers("azure", {"public": False}, "GET", "https://x", None, None, credential="fk") == {
        "x-functions-key": "fk"
    }
    assert auth_headers("azure", {"public": True}, "POST", "https://x", b"{}", "k") == {
        "Content-Type": "application/json",
        "Authorization": "Bearer k",
    }


# The whole client, as `make smoke` runs it: a stand-in `pulumi` on PATH prints the stack outputs, and the URL is a
# real HTTP server on 127.0.0.1 that records what each request carried.


class RecordingHandler(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, str | None]]] = []
    status = 200

    stream_end = b"data: [DONE]\n\n"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        streamed = b'"stream": true' in self.rfile.read(length)
        RecordingHandler.seen.append((self.command, self.path, self.headers.get("Authorization")))
        body = b'data: {"choices": []}\n\n' + RecordingHandler.stream_end if streamed else b'{"ok": true}'
        self.send_response(RecordingHandler.status)
        self.send_header("Content-Type", "text/event-stream" if streamed else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def gcp_stack(tmp_path):
    """A private GCP stack whose URL is a loopback server; yields a function that runs the smoke client."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RecordingHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordingHandler.seen, RecordingHandler.status, RecordingHandler.stream_end = [], 200, b"data: [DONE]\n\n"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    outputs = {"cloud": "gcp", "url": f"http://127.0.0.1:{server.server_port}", "public": False}
    pulumi = bin_dir / "pulumi"
    pulumi.write_text(f"#!/bin/sh\necho '{json.dumps(outputs)}'\n")
    pulumi.chmod(0o755)

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path), **env}
        return subprocess.run(
            [sys.executable, "-m", "infra.smoke", "gcp"],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    yield run
    server.shutdown()


def test_gcp_smoke_sends_the_ci_minted_id_token_on_every_call(gcp_stack):
    result = gcp_stack(TINYLLM_ID_TOKEN="minted-for-the-url")
    assert result.returncode == 0, result.stderr
    assert [(method, path) for method, path, _ in RecordingHandler.seen] == [
        ("GET", "/healthz"),
        ("GET", "/v1/models"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/completions"),  # the same completion, streamed
    ]
    assert {auth for _, _, auth in RecordingHandler.seen} == {"Bearer minted-for-the-url"}
    assert "POST /v1/completions -> 200 1 events, first after" in result.stdout


def test_a_streamed_answer_that_stops_before_done_fails_the_smoke(gcp_stack):
    RecordingHandler.stream_end = b""
    result = gcp_stack(TINYLLM_ID_TOKEN="minted-for-the-url")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the streamed completion did not end with 'data: [DONE]' (1 events)" in result.stderr


def test_gcp_smoke_without_a_token_falls_back_to_gcloud_and_says_what_to_do_when_it_cannot(gcp_stack):
    result = gcp_stack(HOME="/nonexistent")  # no TINYLLM_ID_TOKEN and no gcloud login (or no gcloud at all)
    assert result.returncode == 1
    assert "gcloud auth print-identity-token (or set TINYLLM_ID_TOKEN)" in result.stderr
    assert "Traceback" not in result.stderr and RecordingHandler.seen == []


def test_a_refused_call_fails_the_smoke_with_its_status_not_a_traceback(gcp_stack):
    RecordingHandler.status = 403
    result = gcp_stack(TINYLLM_ID_TOKEN="wrong-audience")
    assert result.returncode == 1
    assert "GET /healthz -> 403" in result.stderr and "Traceback" not in result.stderr


def test_a_private_stack_without_its_credential_is_refused_by_name_not_sent_as_bearer_none():
    for cloud in ("gcp", "azure"):
        with pytest.raises(SmokeError, match=f"a private {cloud} stack needs a credential"):
            auth_headers(cloud, {"public": False}, "GET", "https://x", None, None, credential=None)


def test_aws_signing_refuses_a_url_that_is_not_a_lambda_function_url():
    with pytest.raises(SmokeError, match="not a Lambda function URL"):
        auth_headers(
            "aws",
            {"public": False},
            "GET",
            "https://example.com/v1/models",
            None,
            None,
            aws_credentials=Credentials("AKIDEXAMPLE", "secret"),
        )
