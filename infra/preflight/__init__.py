"""`python -m infra.preflight STACK` (`make preflight STACK=...`, the first step of `make deploy`): check, before
anything is created, that a first `pulumi up --stack STACK` can succeed, and print one line per problem with its fix.

Checks: the Pulumi CLI is installed and logged in; the stack's configuration passes the program's own validation
(infra.config: the model the stack deploys must fit its instance memory, too); the stack's cloud has credentials
(and whose they are); then per cloud: AWS (boto3) account concurrency leaves room for `maxInstances`; GCP
(google-auth + the Service Usage REST API) the project is set and the program's APIs are enabled; Azure (the `az`
CLI the deploy needs anyway + the ARM REST API) a subscription is selected and the resource providers are
registered. Exit status 0: nothing found; 1: at least one problem.

Instance metadata servers are not probed (a laptop or CI runner has none, and probing one is a network call to an
address outside this machine): on a cloud VM that relies on them, set AWS_EC2_METADATA_DISABLED=false, or point
GOOGLE_APPLICATION_CREDENTIALS at a credentials file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    """What the checks found: lines that are fine, and problems each with its fix."""

    ok: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def good(self, line: str) -> None:
        self.ok.append(line)

    def problem(self, what: str, fix: str) -> None:
        self.problems.append((one_line(what), one_line(fix)))

    def lines(self) -> list[str]:
        return [f"ok       {line}" for line in self.ok] + [f"PROBLEM  {what} -> {fix}" for what, fix in self.problems]


def one_line(text: object, limit: int = 300) -> str:
    """Any message as a single line of at most `limit` characters (errors from SDKs can span many)."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
