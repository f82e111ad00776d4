"""The cost estimate's arithmetic: billing minimums and rounding, CPU share, free tiers (bench.cost)."""

from __future__ import annotations

import dataclasses

import pytest

from bench.cost import billed_alone, cost_notes, cost_table, estimate, free_requests, price_per_million
from bench.prices import PLATFORMS

BY_CLOUD = {p.cloud: p for p in PLATFORMS}


def test_every_platform_cites_its_sources_and_the_stack_memory():
    assert set(BY_CLOUD) == {"aws", "gcp", "azure"}
    for platform in PLATFORMS:
        assert platform.sources and all(s.startswith("https://") for s in platform.sources)
        assert 0 < platform.cpu_share <= 1
    assert (BY_CLOUD["aws"].memory_gb, BY_CLOUD["gcp"].memory_gb, BY_CLOUD["azure"].memory_gb) == (1.0, 1.0, 2.0)


@pytest.mark.parametrize(
    "cloud, seconds, billed",
    [
        ("aws", 0.0042, 0.005),
        ("aws", 0.0001, 0.001),
        ("gcp", 0.0042, 0.1),
        ("gcp", 0.1001, 0.2),
        ("azure", 0.0042, 1.0),
        ("azure", 1.05, 1.1),
        ("azure", 1.0, 1.0),
    ],
)
def test_a_request_billed_alone_gets_the_minimum_and_the_rounding(cloud, seconds, billed):
    assert billed_alone(seconds, BY_CLOUD[cloud]) == pytest.approx(billed)


def test_price_per_million_is_memory_time_plus_cpu_time_plus_the_request_fee():
    aws, gcp = BY_CLOUD["aws"], BY_CLOUD["gcp"]
    assert price_per_million(0.005, aws) == pytest.approx(1e6 * 0.005 * 1.0 * 0.0000133334 + 0.20)
    assert price_per_million(0.1, gcp) == pytest.approx(1e6 * 0.1 * (1.0 * 0.0000025 + 0.583 * 0.000024) + 0.40)


def test_the_cloud_time_stretches_by_the_vcpu_share_and_busy_is_never_dearer_than_alone():
    for platform in PLATFORMS:
        e = estimate(0.010, platform)
        assert e.cloud_seconds == pytest.approx(0.010 / platform.cpu_share)
        assert e.per_million_busy <= e.per_million_alone


def test_the_free_tier_is_bounded_by_its_first_allowance_to_run_out():
    gcp = BY_CLOUD["gcp"]
    assert free_requests(0.1, gcp) == pytest.approx(min(2_000_000, 360_000 / 0.1, 180_000 / (0.1 * 0.583)))
    tiny_requests = dataclasses.replace(BY_CLOUD["aws"], free_requests=10)
    assert free_requests(0.001, tiny_requests) == 10


def test_the_cost_table_says_billed_alone_is_the_non_overlapping_bound():
    # Flex Consumption's 1,000 ms minimum is per instance's active period (flex-consumption-plan#billing): requests
    # that overlap on an instance share it, so the "alone" column is an upper bound and must be labelled as one.
    table = cost_table({"tiny": 0.0025}, 16)
    header, _, *rows = table.splitlines()[2:]
    assert "each billed alone (no overlap: upper bound)" in header
    azure = next(row.split(" | ") for row in rows if "| azure |" in row)
    assert azure[4] == "1,000 ms"
    assert any("each instance's active period, not on each execution" in note for note in cost_notes())
