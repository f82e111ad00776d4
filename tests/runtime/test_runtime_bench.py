"""bench.runtime's cold starts, each run once on the runtimes this session already prepared (not timed: only that
each one ends with a real completion and yields a duration), and the table it prints."""

from __future__ import annotations

import re

import pytest

from bench import runtime
from functions.devtools import runtimes
from infra.bundle import BundleError


@pytest.fixture
def measurements(gcp_runtime, lambda_venv, aws_task_root, python312, azure_root, tmp_path) -> dict[str, float]:
    _, source, gcp_venv = gcp_runtime
    return {
        "gcp": runtime.cold_start_gcp(gcp_venv, source, tmp_path),
        "aws": runtime.cold_start_aws(lambda_venv, aws_task_root, tmp_path),
        "azure": runtime.cold_start_azure(python312, azure_root, tmp_path),
    }


def test_each_cold_start_ends_with_a_completion_and_is_reported_with_the_package_size(measurements, build_package):
    assert all(0 < seconds < runtimes.START_TIMEOUT_S for seconds in measurements.values())
    packages = {"gcp": build_package("gcp"), "aws": build_package("aws", "x86_64"), "azure": build_package("azure")}
    lines = runtime.table({cloud: [s] for cloud, s in measurements.items()}, packages).splitlines()
    assert lines[0] == "| package | cold start, median of 1 | min – max | zipped | unzipped |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["`gcp.zip`", "`aws.zip` (x86_64)", "`azure.zip`"]
    for line in lines[2:]:
        assert re.search(r"\| [\d.]+ s \| [\d.]+ – [\d.]+ s \| [\d.]+ MiB \| [\d.]+ MiB \|$", line), line


def test_another_model_dir_is_baked_as_it_is_so_one_that_is_not_a_model_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(BundleError, match=r"no manifest\.json"):
        runtime.run(tmp_path, runtime.QUICK)


def test_the_first_token_table_holds_streaming_packages_to_the_target_and_not_the_buffered_one():
    measured = {  # (first event, last event, blocking request) seconds
        "gcp": [(0.005, 0.100, 0.090)],
        "aws": [(0.020, 0.100, 0.090)],
        "azure": [(0.099, 0.100, 0.090)],
    }
    lines = runtime.first_token_table(measured).splitlines()
    assert lines[0] == (
        "| package | streams | first event, median of 1 | last event | first / last | blocking request |"
    )
    assert lines[2] == "| `gcp.zip` | yes | 5 ms | 100 ms | 5% (meets < 10%) | 90 ms |"
    assert lines[3] == "| `aws.zip` | yes | 20 ms | 100 ms | 20% (misses < 10%) | 90 ms |"
    assert lines[4] == "| `azure.zip` | no (buffered) | 99 ms | 100 ms | 99% (buffered: no target) | 90 ms |"


def test_azure_http_streams_cost_is_measured_on_the_pinned_extension_and_reported_as_added(python312, tmp_path):
    cost = runtime.azure_streams_cost(python312, tmp_path, samples=1)
    (buffered_zip, buffered_size, buffered_s), (streams_zip, streams_size, streams_s) = (
        cost["buffered"],
        cost["HTTP streams"],
    )
    assert streams_zip > buffered_zip and streams_size > buffered_size  # fastapi, pydantic-core, uvicorn ...
    assert (tmp_path / "azure-deps-streams" / "azurefunctions" / "extensions" / "http" / "fastapi").is_dir()
    assert buffered_s > 0 and streams_s > 0
    assert runtime.azure_streams_table(cost, 1).splitlines()[-1].startswith("| added | +")
