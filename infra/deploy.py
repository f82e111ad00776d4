"""`python -m infra.deploy STACK [PULUMI_UP_ARGS...]` (what `make deploy` and CI's `up` run): `pulumi up`, re-run once
when, and only when, the first run failed on the GCP build race.

The race: a first deploy creates the build account's grants and then the function, whose build reads the source
from the Google-managed bucket gcf-v2-sources-<number>-<region> and fails with "Access to bucket gcf-v2-sources-…
denied" while the new grant has not reached that bucket yet (hashicorp/terraform-provider-google#20571, still open:
its own example with a project-wide grant and a 60 s wait fails about half the time). The program already waits
(`tinyllm:iamWaitSeconds`, 120 s by default) after the grants; Google documents policy changes as propagating in
"typically 2 minutes, potentially 7 minutes or longer" (cloud.google.com/iam/docs/access-change-propagation). So
when the first run fails on exactly that error, this waits RETRY_WAIT_SECONDS more (past the 7 minutes) and runs
`pulumi up` once again; the grants exist by then, so only the function is created. Any other failure, or a second
failure, is returned as it is.

How the error is recognised: `pulumi up --event-log FILE` writes the engine's events as JSON lines, the same
stream the Automation API reads (pulumi SDK, pulumi/automation/_stack.py: `args.extend(["--event-log",
log_file])`; events.py: `EngineEvent.from_json`, whose `diagnostic_event` carries the provider's error message).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

INFRA = Path(__file__).resolve().parent
# The build's message when it cannot read the managed source bucket (terraform-provider-google#20571,
# GoogleCloudPlatform/marketing-analytics-jumpstart#153): "failed to download archive gs://gcf-v2-sources-…
# Access to bucket gcf-v2-sources-… denied".
BUILD_RACE = re.compile(r"[Aa]ccess to bucket gcf-v2-sources-[0-9]+-[a-z0-9-]+ denied")
RETRY_WAIT_SECONDS = 300


def build_race_in(event_log: Path) -> bool:
    """Whether an error diagnostic of the run whose events are in `event_log` is the build race."""
    if not event_log.is_file():
        return False
    for line in event_log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            diagnostic = json.loads(line).get("diagnosticEvent") or {}
        except (json.JSONDecodeError, AttributeError):
            continue  # a partly written last line, when pulumi was interrupted
        if diagnostic.get("severity") == "error" and BUILD_RACE.search(diagnostic.get("message", "")):
            return True
    return False


def deploy(
    stack: str,
    pulumi_args: Sequence[str] = (),
    *,
    run: Callable[[list[str]], int] = lambda command: subprocess.call(command, cwd=INFRA),
    sleep: Callable[[float], None] = time.sleep,
    wait_seconds: int = RETRY_WAIT_SECONDS,
) -> int:
    """Run `pulumi up` (with the terminal, so its prompts still work), and once more after the build race."""

    def pulumi_up(event_log: Path) -> int:
        return run(["pulumi", "up", "--stack", stack, "--event-log", str(event_log), *pulumi_args])

    with tempfile.TemporaryDirectory() as directory:
        first_events = Path(directory) / "first.jsonl"
        status = pulumi_up(first_events)
        if status == 0 or not build_race_in(first_events):
            return status
        print(
            f"deploy: the function's build could not read its source yet (GCP IAM propagation, "
            f"terraform-provider-google#20571); running `pulumi up` once more in {wait_seconds} s",
            file=sys.stderr,
            flush=True,
        )
        sleep(wait_seconds)
        return pulumi_up(Path(directory) / "second.jsonl")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0].startswith("-"):
        print("usage: python -m infra.deploy STACK [pulumi up arguments...]", file=sys.stderr)
        return 2
    try:
        return deploy(args[0], args[1:])
    except FileNotFoundError:
        print("deploy: the Pulumi CLI is not installed or not on PATH (`make preflight` checks it)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
