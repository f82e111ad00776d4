"""The serving path never loads torch or transformers (a cold start with them costs seconds)."""

from __future__ import annotations

import subprocess
import sys

SERVING_PATH = """
import json, sys
import core.artifacts, core.generate, core.model, functions.devtools.cli
from core.api import Request, create_app
from functions.devtools.local import load_adapter
loaded = core.artifacts.load({model_dir!r})
core.generate.generate(loaded.model, loaded.tokenizer, "Hello", core.generate.SamplingParams(temperature=0))
body = json.dumps({{"prompt": "Hello", "stream": True}}).encode()
request = Request.of("POST", "/v1/completions", {{"content-type": "application/json"}}, body)
create_app({model_dir!r}).handle(request).read()
for cloud in ("gcp", "aws", "azure"):
    load_adapter(cloud)
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_serving_path_imports_neither_torch_nor_transformers(model_dir):
    """Core, the HTTP contract and all three adapters, after serving a streamed completion."""
    out = subprocess.run(
        [sys.executable, "-c", SERVING_PATH.format(model_dir=str(model_dir))],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.splitlines()[-1] == "none"  # after the request's log line


def test_reference_module_imports_torch_only_when_used():
    code = "import sys, functions.devtools.reference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
