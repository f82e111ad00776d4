"""Run infra/policy the way `pulumi preview|up --policy-pack infra/policy` does, without the Pulumi CLI.

The CLI starts the pack's program (`infra/policy/__main__.py`), which serves Pulumi's Analyzer gRPC service and
prints its port; it asks for the pack's policies (GetAnalyzerInfo), sends the policy configuration
(`--policy-pack-config`, Configure), then calls Analyze with each resource's *inputs* before the resource is
created, and AnalyzeStack with every resource's *outputs* once the deployment is done ("Unlike Analyze,
AnalyzeStack is called on the final outputs of each resource": pulumi/pulumi pkg/resource/deploy/
step_generator.go). `PackServer` does exactly these calls, over gRPC, on the resources the program registers
under mocks (tests/infra/infra_mocks.py), or on hand-written ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from infra_mocks import _computed
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

POLICY_DIR = Path(__file__).resolve().parents[2] / "infra" / "policy"
MANDATORY = analyzer_pb2.EnforcementLevel.MANDATORY


@dataclass(frozen=True)
class StackResource:
    """One resource as the engine describes it to the pack: inputs before creation, outputs after."""

    type: str
    name: str
    inputs: dict
    outputs: dict = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::tinyllm::{self.type}::{self.name}"


def _wire(value):
    """Properties as JSON the engine could send: assets by their path (the rules never read them)."""
    if isinstance(value, dict):
        return {key: _wire(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(getattr(value, "path", value))


def _struct(props: dict) -> struct_pb2.Struct:
    return json_format.ParseDict(_wire(props), struct_pb2.Struct())


def from_deployment(deployment) -> list[StackResource]:
    """The program's resources under mocks, with the outputs the mocks' provider computed (and the id)."""
    found = []
    for r in deployment.resources:
        outputs = {**r.inputs, **_computed(r.type, r.name, r.inputs)}
        outputs.setdefault("id", f"{r.name}-id")
        found.append(StackResource(r.type, r.name, r.inputs, outputs))
    return found


@dataclass(frozen=True)
class Verdict:
    policy: str
    mandatory: bool
    message: str


class PackServer:
    """The policy pack's own gRPC server, started as the Pulumi CLI starts it."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(POLICY_DIR / "__main__.py")],
            cwd=POLICY_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        port = self.process.stdout.readline().strip()
        assert port.isdigit(), self.process.stderr.read()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.process.kill()
        self.process.wait(timeout=10)

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        return self.stub.GetAnalyzerInfo(empty_pb2.Empty())

    def configure(self, config_file: Path | None = None) -> None:
        """What `--policy-pack-config <file>` sends: each policy's level, with its properties from the file."""
        values = json.loads(config_file.read_text()) if config_file else {}
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy in self.info().policies:
            request.policyConfig[policy.name].enforcementLevel = policy.enforcementLevel
            request.policyConfig[policy.name].properties.CopyFrom(_struct(values.get(policy.name, {})))
        self.stub.Configure(request)

    def verdicts(self, resources: list[StackResource], config_file: Path | None = None) -> list[Verdict]:
        """Every diagnostic of one preview/up: Analyze per resource, then AnalyzeStack."""
        self.configure(config_file)
        diagnostics = []
        for r in resources:
            request = analyzer_pb2.AnalyzeRequest(type=r.type, name=r.name, urn=r.urn, properties=_struct(r.inputs))
            diagnostics += self.stub.Analyze(request).diagnostics
        stack = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type, name=r.name, urn=r.urn, properties=_struct(r.outputs or r.inputs)
                )
                for r in resources
            ]
        )
        diagnostics += self.stub.AnalyzeStack(stack).diagnostics
        return [Verdict(d.policyName, d.enforcementLevel == MANDATORY, d.message) for d in diagnostics]

    def violations(self, resources: list[StackResource], config_file: Path | None = None) -> list[str]:
        """The mandatory violations: what fails `pulumi up`."""
        return [v.message for v in self.verdicts(resources, config_file) if v.mandatory]
