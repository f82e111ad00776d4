"""Pulumi program: `pulumi up --stack gcp|aws|azure` builds the package for the stack's cloud and deploys it.

The composition root: read config, build the bundle, hand both to that cloud's ComponentResource, export the
URL. Everything cloud-specific lives in infra/gcp.py, infra/aws.py and infra/azure.py.
"""

from __future__ import annotations

import pulumi

from infra import bundle, config
from infra.aws import AwsFunction
from infra.azure import AzureFunction
from infra.gcp import GcpFunction

COMPONENTS = {"gcp": GcpFunction, "aws": AwsFunction, "azure": AzureFunction}


def main() -> None:
    stack = config.load()
    package = bundle.build(stack.cloud, arch=stack.architecture)
    # Named after the prefix, so every auto-named resource (AWS role, GCP bucket, Azure group) starts with it too:
    # the CI identity of PR stacks is limited to `tinyllmpr*` names (docs/ci.md).
    function = COMPONENTS[stack.cloud](stack.name_prefix, stack, package)
    pulumi.export("url", function.url)
    pulumi.export("cloud", stack.cloud)
    pulumi.export("public", stack.public)
    pulumi.export("package_sha256", package.sha256)
    if isinstance(function, AzureFunction):
        pulumi.export("key_command", function.key_command)


main()
