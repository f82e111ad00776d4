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
    function = COMPONENTS[stack.cloud]("tinyllm", stack, package)
    pulumi.export("url", function.url)
    pulumi.export("cloud", stack.cloud)
    pulumi.export("public", stack.public)
    pulumi.export("package_sha256", package.sha256)
    if isinstance(function, AzureFunction):
        pulumi.export("key_command", function.key_command)


main()
