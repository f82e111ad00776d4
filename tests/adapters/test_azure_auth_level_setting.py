"""A wrong TINYLLM_AZURE_AUTH_LEVEL stops the Azure entry point at import with a message that names it."""

from __future__ import annotations

import os
import subprocess
import sys

from functions.devtools.local import ADAPTERS, REPO_ROOT


def test_an_unknown_auth_level_is_refused_by_name_at_import():
    env = {**os.environ, "TINYLLM_AZURE_AUTH_LEVEL": "everyone"}
    script = f"import runpy; runpy.run_path({str(ADAPTERS['azure'])!r})"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0
    assert "TINYLLM_AZURE_AUTH_LEVEL must be one of FUNCTION, ANONYMOUS, ADMIN, got 'EVERYONE'" in result.stderr
    assert "KeyError" not in result.stderr
