"""The cost estimate at the memory a stack's rule picks (bench.cost.platform_at): the memory billed and the CPU
that comes with it, per cloud, so a bigger instance bills more per second and computes faster."""

from __future__ import annotations

import pytest

from bench.cost import estimate, platform_at
from bench.prices import PLATFORMS

BY_CLOUD = {platform.cloud: platform for platform in PLATFORMS}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_at_the_stacks_former_memory_nothing_changes(cloud):
    base = BY_CLOUD[cloud]
    same = platform_at(base, {"aws": 1024, "gcp": 1024, "azure": 2048}[cloud])
    assert (same.memory_gb, same.vcpu, same.cpu_share) == pytest.approx((base.memory_gb, base.vcpu, base.cpu_share))
    assert estimate(0.5, same) == estimate(0.5, base)


@pytest.mark.parametrize(
    "cloud, memory_mb, memory_gb, vcpu, cpu_share",
    [
        ("aws", 1769, 1769 / 1024, 0.0, 1.0),  # one vCPU at 1,769 MB
        ("aws", 1468, 1468 / 1024, 0.0, 1468 / 1769),
        ("gcp", 2048, 2.0, 1.0, 1.0),  # Cloud Run functions: 2 GiB comes with 1 vCPU
        ("gcp", 4096, 4.0, 2.0, 2.0),
        ("azure", 4096, 4.0, 0.0, 2.0),  # Flex Consumption: CPU proportional to the instance size
    ],
)
def test_memory_and_cpu_follow_the_size(cloud, memory_mb, memory_gb, vcpu, cpu_share):
    platform = platform_at(BY_CLOUD[cloud], memory_mb)
    assert (platform.memory_gb, platform.vcpu, platform.cpu_share) == pytest.approx((memory_gb, vcpu, cpu_share))
    assert f"{memory_mb} MB" in platform.product


def test_past_one_vcpu_lambda_bills_more_memory_for_no_faster_compute():
    # 1 s measured here: 1769/1024 s on 1024 MB (0.58 vCPU), 1 s on 2048 MB (capped at one vCPU, bench.cost).
    small, large = estimate(1.0, platform_at(BY_CLOUD["aws"], 1024)), estimate(1.0, platform_at(BY_CLOUD["aws"], 2048))
    assert (small.cloud_seconds, large.cloud_seconds) == pytest.approx((1769 / 1024, 1.0))
    compute_small, compute_large = small.per_million_busy - 0.20, large.per_million_busy - 0.20
    assert compute_large / compute_small == pytest.approx(2.0 / (1769 / 1024))
