"""The serving path never loads torch or transformers (a cold start with them costs seconds)."""

from __future__ import annotations

import subprocess
import sys

SERVING_PATH = """
import sys
import core.artifacts, core.cli, core.generate, core.model
loaded = core.artifacts.load({model_dir!r})
core.generate.generate(loaded.model, loaded.tokenizer, "Hello", core.generate.SamplingParams(temperature=0))
heavy = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_serving_path_imports_neither_torch_nor_transformers(model_dir):
    out = subprocess.run(
        [sys.executable, "-c", SERVING_PATH.format(model_dir=str(model_dir))],
        capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == "none"


def test_reference_module_imports_torch_only_when_used():
    code = "import sys, core.reference; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
