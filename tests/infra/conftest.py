"""Fixtures for tests/infra: `run_stack` runs infra/__main__.py under Pulumi mocks (see infra_mocks.py)."""

from __future__ import annotations

import runpy
import sys
import types

import pulumi
import pytest
from infra_mocks import INFRA, Deployment, RecordingMocks, make_package, stack_config
from pulumi.runtime import settings


@pytest.fixture
def run_stack(tmp_path, monkeypatch):
    def run(stack: str, secrets: dict | None = None, **overrides) -> Deployment:
        deployment = Deployment()
        package = make_package(tmp_path, stack)
        fake_bundle = types.ModuleType("infra.bundle")
        fake_bundle.build = lambda cloud, *, arch="arm64": package if cloud == stack else pytest.fail(cloud)
        monkeypatch.setitem(sys.modules, "infra.bundle", fake_bundle)
        import infra

        monkeypatch.setattr(infra, "bundle", fake_bundle, raising=False)
        monkeypatch.setattr(pulumi, "export", lambda key, value: deployment.outputs.__setitem__(key, value))

        config = stack_config(stack, {f"tinyllm:{k}": v for k, v in overrides.items()})
        config.update(secrets or {})
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(RecordingMocks(deployment), project="tinyllm", stack=stack, preview=False)
        pulumi.runtime.set_all_config(config, secret_keys=list(secrets or {}))

        @pulumi.runtime.test
        def program():
            runpy.run_path(str(INFRA / "__main__.py"), run_name="__main__")
            return pulumi.Output.all(**deployment.outputs).apply(deployment.outputs.update)

        program()
        return deployment

    return run
