"""Pulumi program: `pulumi up --stack gcp|aws|azure` builds the package for the stack's cloud and deploys it.

The composition root: read config, build the bundle, hand both to that cloud's ComponentResource, export the
URL. Everything cloud-specific lives in infra/gcp.py, infra/aws.py and infra/azure.py. `main` takes the package
builder as a parameter, so tests run the real program with a fixture package and nothing patched.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from infra import config
from infra.aws import AwsFunction
from infra.azure import AzureFunction
from infra.config import Package
from infra.gcp import GcpFunction

COMPONENTS = {"gcp": GcpFunction, "aws": AwsFunction, "azure": AzureFunction}


def main(build_package: Callable[..., Package]) -> None:
    stack = config.load()
    package = build_package(stack.cloud, arch=stack.architecture, model_dir=config.model_path(stack))
    # The model the package bakes decides the memory (or, configured, must fit in it): before any resource exists.
    stack = config.fit_to_model(stack, package.model)
    # Every name comes from the stack's prefix (infra/naming.py).
    function = COMPONENTS[stack.cloud](stack, package)
    pulumi.export("url", function.url)
    pulumi.export("cloud", stack.cloud)
    pulumi.export("public", stack.public)
    pulumi.export("package_sha256", package.sha256)
    if isinstance(function, AzureFunction):
        pulumi.export("key_command", function.key_command)
        pulumi.export("insights_id", function.insights_id)
        pulumi.export("log_query", function.log_query)


# The Pulumi CLI's Python host runs the program with `runpy.run_path(PROGRAM, run_name='__main__')`
# (pulumi-language-python-exec); tests import this module and call `main` with a fixture builder instead.
if __name__ == "__main__":
    from infra import bundle

    main(bundle.build)
