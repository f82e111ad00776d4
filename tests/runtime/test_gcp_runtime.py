"""Cloud Run functions' view of gcp.zip: its requirements.txt installed into a fresh CPython 3.12 virtualenv (what
the Python buildpack does), functions-framework serving the unpacked source on loopback. Streaming is real here:
the events leave as they are decoded, in HTTP chunks."""

from __future__ import annotations

import http.client
import json
import subprocess

import pytest


def test_the_buildpacks_install_is_exactly_the_pinned_requirements_on_3_12(gcp_runtime):
    _, source, venv_python = gcp_runtime
    version = subprocess.run(
        [str(venv_python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert version == "(3, 12)"
    frozen = subprocess.run(
        [str(venv_python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert set((source / "requirements.txt").read_text().split()) <= set(frozen)
    assert not any(line.lower().startswith(("torch==", "transformers==")) for line in frozen)


@pytest.mark.parametrize(
    "route, body",
    [
        ("/v1/completions", {"prompt": "Hello world,", "max_tokens": 24, "temperature": 0, "stream": True}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 24, "seed": 3, "stream": True},
        ),
    ],
)
def test_a_stream_leaves_in_chunks_as_it_is_decoded(gcp_runtime, route, body):
    port, _, _ = gcp_runtime
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", route, body=json.dumps(body), headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 200 and reply.getheader("content-type").startswith("text/event-stream")
        assert reply.chunked and reply.getheader("content-length") is None  # not buffered into one body
        chunks = []
        while chunk := reply.read1():
            chunks.append(chunk)
    finally:
        conn.close()
    events = b"".join(chunks).decode().split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert len(chunks) > 2  # several writes reached the socket, not one
