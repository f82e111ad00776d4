"""Fixtures for tests/infra: `run_stack` runs the Pulumi program (infra/__main__.py's `main`) under Pulumi mocks,
with a fixture package passed in as the package builder (see infra_mocks.py): it bakes the stack's
`tinyllm:modelDir` when one is configured (read, not built), else a model of the default's size; with
`upload_through_storage=True` it stands for a package over Lambda's direct-upload limit."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest
from infra_mocks import Deployment, RecordingMocks, make_package, stack_config
from policy_harness import PackServer

from infra.__main__ import main


@pytest.fixture
def run_stack(tmp_path, monkeypatch):
    def run(
        stack: str, secrets: dict | None = None, *, upload_through_storage: bool = False, **overrides
    ) -> Deployment:
        deployment = Deployment()

        def build_package(cloud: str, *, arch: str = "arm64", model_dir: Path | None = None):
            assert cloud == stack, f"the program asked for a {cloud} package on the {stack} stack"
            return make_package(tmp_path, stack, model_dir, upload_through_storage)

        monkeypatch.setattr(pulumi, "export", lambda key, value: deployment.outputs.__setitem__(key, value))
        config = stack_config(stack, {f"tinyllm:{k}": v for k, v in overrides.items()})
        config.update(secrets or {})
        pulumi.runtime.set_mocks(RecordingMocks(deployment), project="tinyllm", stack=stack, preview=False)
        pulumi.runtime.set_all_config(config, secret_keys=list(secrets or {}))

        def record_options(args: pulumi.ResourceTransformationArgs):
            deployment.options[args.name] = args.opts  # resource options the mocks do not see
            return None

        @pulumi.runtime.test
        def program():
            pulumi.runtime.register_stack_transformation(record_options)
            main(build_package)
            return pulumi.Output.all(**deployment.outputs).apply(deployment.outputs.update)

        program()
        return deployment

    return run


@pytest.fixture(scope="module")
def pack():
    """The tinyllm policy pack served over its own gRPC server, as the Pulumi CLI runs it (policy_harness.py)."""
    server = PackServer()
    yield server
    server.close()
