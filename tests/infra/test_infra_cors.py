"""tinyllm:corsOrigins reaches every cloud's function as TINYLLM_CORS_ORIGINS (core.api answers CORS from it)."""

from __future__ import annotations

import pytest

from infra.config import ConfigError


@pytest.mark.parametrize("stack", ["gcp", "aws", "azure"])
def test_cors_origins_become_the_functions_environment(run_stack, stack):
    every_input = repr([r.inputs for r in run_stack(stack).resources])
    assert "TINYLLM_CORS_ORIGINS" not in every_input  # off by default
    configured = run_stack(stack, corsOrigins=["https://app.example", "http://localhost:3000"])
    assert "'TINYLLM_CORS_ORIGINS'" in repr([r.inputs for r in configured.resources])
    assert "https://app.example,http://localhost:3000" in repr([r.inputs for r in configured.resources])


def test_a_wildcard_origin_is_refused(run_stack):
    with pytest.raises(ConfigError, match="corsOrigins"):
        run_stack("gcp", corsOrigins=["*"])
