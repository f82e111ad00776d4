"""`python -m infra.preflight STACK`: run every check for one stack and print the report (see infra.preflight)."""

from __future__ import annotations

import os
import sys

from infra.config import ConfigError, from_values, stack_model
from infra.preflight import Report, aws, azure, gcp, one_line, stack_config

CLOUD_CHECKS = {"aws": aws.check, "gcp": gcp.check, "azure": azure.check}


def run(stack: str) -> Report:
    report = Report()
    values = stack_config.check(stack, report)
    if values is None:
        return report
    try:
        config = from_values(values.get)
    except ConfigError as error:
        report.problem(f"stack {stack}: {error}", f"fix it with `pulumi config set ... --stack {stack}`")
        return report
    report.good(f"stack {stack}: {config.cloud} in {config.region}, configuration valid")
    model = stack_model(config)  # read by from_values too, which refused a memory too small for it
    if model is None:
        report.good("model: artifacts/model is not trained yet; `pulumi up` trains it, then sizes the memory for it")
    else:
        report.good(f"model: {model.describe()} needs {model.required_mb} MB; instance memory {config.memory_mb} MB")
    CLOUD_CHECKS[config.cloud](config, values, report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m infra.preflight STACK   (gcp, aws, azure, pr-<number>-<cloud>, ...)", file=sys.stderr)
        return 2
    # Never probe an instance metadata server unless the user asked for it (see infra.preflight).
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    try:
        report = run(args[0])
    except Exception as error:  # the edge: a one-line reason, never a traceback
        print(f"PROBLEM  preflight failed unexpectedly: {type(error).__name__}: {one_line(error)}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    print(f"preflight {args[0]}: " + (f"{len(report.problems)} problem(s)" if report.problems else "ready to deploy"))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
