"""`make deploy` (infra.deploy): `pulumi up` re-runs once, after a wait, when and only when the first run failed on
the GCP build race; a stand-in `pulumi` on PATH writes the engine events a real one writes with --event-log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra import deploy

RACE = (
    "error: build failed: failed to download archive gs://gcf-v2-sources-314159265358-europe-west1/"
    "tinyllm/function-source.zip: Access to bucket gcf-v2-sources-314159265358-europe-west1 denied. "
    "You must grant Storage Object Viewer permission to tinyllm-build@my-project.iam.gserviceaccount.com."
)
OTHER = "error: googleapi: Error 403: Permission 'cloudfunctions.functions.create' denied on resource"


def fake_pulumi(tmp_path: Path, messages: list[str]) -> Path:
    """A `pulumi` whose n-th `up` fails with messages[n] as an error diagnostic (or succeeds for "")."""
    script = tmp_path / "bin" / "pulumi"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import json, pathlib, sys
calls = pathlib.Path({str(tmp_path / "calls")!r})
calls.open("a").write(" ".join(sys.argv[1:]) + "\\n")
n = len(calls.read_text().splitlines()) - 1
messages = {messages!r}
message = messages[n] if n < len(messages) else ""
log = pathlib.Path(sys.argv[sys.argv.index("--event-log") + 1])
events = [{{"sequence": 0, "timestamp": 0, "preludeEvent": {{"config": {{}}}}}}]
if message:
    events.append({{"sequence": 1, "timestamp": 0, "diagnosticEvent": {{"message": message, "color": "never",
                   "severity": "error"}}}})
log.write_text("".join(json.dumps(event) + "\\n" for event in events))
sys.exit(1 if message else 0)
""")
    script.chmod(0o755)
    return script.parent


def run_deploy(tmp_path: Path, messages: list[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    bin_dir = fake_pulumi(tmp_path, messages)
    code = "import sys; from infra import deploy; sys.exit(deploy.deploy('gcp', ['--yes'], sleep=lambda s: None))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, (tmp_path / "calls").read_text().splitlines()


def test_a_first_deploy_that_hits_the_build_race_runs_pulumi_up_once_more(tmp_path):
    result, calls = run_deploy(tmp_path, [RACE, ""])
    assert result.returncode == 0
    assert len(calls) == 2 and all(call.startswith("up --stack gcp --event-log ") for call in calls)
    assert calls[0].endswith(" --yes")
    assert "terraform-provider-google#20571" in result.stderr


def test_the_retry_is_bounded_to_one(tmp_path):
    result, calls = run_deploy(tmp_path, [RACE, RACE, ""])
    assert (result.returncode, len(calls)) == (1, 2)


@pytest.mark.parametrize("messages", [[""], [OTHER, ""]])
def test_success_or_any_other_failure_is_not_retried(tmp_path, messages):
    result, calls = run_deploy(tmp_path, messages)
    assert (result.returncode, len(calls)) == (0 if messages == [""] else 1, 1)


def test_the_retry_waits_past_the_documented_propagation_time():
    waits = []
    statuses = iter([1, 0])

    def run(command):
        Path(command[command.index("--event-log") + 1]).write_text(
            json.dumps({"diagnosticEvent": {"message": RACE, "severity": "error"}}) + "\n"
        )
        return next(statuses)

    assert deploy.deploy("gcp", run=run, sleep=waits.append) == 0
    # Google: "typically 2 minutes, potentially 7 minutes or longer"; the program has already waited iamWaitSeconds.
    assert waits == [deploy.RETRY_WAIT_SECONDS] and deploy.RETRY_WAIT_SECONDS + 120 >= 7 * 60


def test_the_race_is_recognised_only_in_error_diagnostics(tmp_path):
    log = tmp_path / "events.jsonl"
    log.write_text(json.dumps({"diagnosticEvent": {"message": RACE, "severity": "warning"}}) + "\n{partial")
    assert not deploy.build_race_in(log)
    assert not deploy.build_race_in(tmp_path / "missing.jsonl")


def test_make_deploy_runs_preflight_then_this_wrapper():
    makefile = (Path(deploy.__file__).parents[1] / "Makefile").read_text()
    recipe = makefile.split("\ndeploy: ", 1)[1].split("\n\n", 1)[0]
    assert recipe.startswith("preflight\n") and "-m infra.deploy $(STACK)" in recipe
