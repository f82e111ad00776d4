"""What 1M requests cost: an estimate from a measured request duration and each platform's published prices
(bench.prices), per preset and per cloud. Pure arithmetic, so it is unit-tested.

Two bounds, because billing rounds differently when requests arrive alone or back to back:
- alone: each request is its own billed period, with the platform's minimum and rounding (sparse traffic);
- busy: an instance that is never idle bills only the time spent computing (the lowest possible cost).
The duration on a cloud is the duration measured here divided by the instance's share of a vCPU (CPU-bound
code on 0.58 vCPU takes about 1 / 0.58 as long). Free tiers are shown apart, as the number of such requests
a month they cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.prices import Platform
from infra.memory import GCP_MEMORY_VCPU, LAMBDA_MB_PER_VCPU

AZURE_MB_PER_VCPU = 2048  # bench.prices' assumption for Flex Consumption (one vCPU at 2048 MB), scaled with size


@dataclass(frozen=True)
class Estimate:
    cloud_seconds: float  # one request's compute time on the platform's instance
    billed_alone_seconds: float
    per_million_alone: float  # USD
    per_million_busy: float  # USD
    free_requests_per_month: float  # requests a month the free tier covers (billed alone)


def billed_alone(seconds: float, platform: Platform) -> float:
    """One request billed by itself: at least the minimum, rounded up to the platform's increment."""
    steps = math.ceil(round(max(seconds, platform.min_billed_seconds) / platform.round_to_seconds, 9))
    return steps * platform.round_to_seconds


def price_per_million(billed_seconds: float, platform: Platform) -> float:
    compute = billed_seconds * (platform.memory_gb * platform.per_gb_second + platform.vcpu * platform.per_vcpu_second)
    return 1e6 * compute + platform.per_million_requests


def free_requests(billed_seconds: float, platform: Platform) -> float:
    """The requests a month that the free tier covers: the first of its allowances to run out decides."""
    limits = [platform.free_requests, platform.free_gb_seconds / (billed_seconds * platform.memory_gb)]
    if platform.vcpu:
        limits.append(platform.free_vcpu_seconds / (billed_seconds * platform.vcpu))
    return min(limits)


def estimate(measured_seconds: float, platform: Platform) -> Estimate:
    on_cloud = measured_seconds / min(1.0, platform.cpu_share)
    alone = billed_alone(on_cloud, platform)
    return Estimate(
        on_cloud,
        alone,
        price_per_million(alone, platform),
        price_per_million(on_cloud, platform),
        free_requests(alone, platform),
    )


def platform_at(platform: Platform, memory_mb: int) -> Platform:
    """The platform as a stack with `memory_mb` of instance memory is billed: that memory and the CPU it comes with
    (Lambda: memory / 1769 MB of a vCPU; Cloud Run functions: the memory tier's vCPU; Flex Consumption: CPU
    proportional to the instance size, one vCPU per 2048 MB assumed as in bench.prices)."""
    if platform.cloud == "aws":
        vcpu, cpu_share = 0.0, memory_mb / LAMBDA_MB_PER_VCPU
    elif platform.cloud == "gcp":
        vcpu = cpu_share = GCP_MEMORY_VCPU[memory_mb]
    else:
        vcpu, cpu_share = 0.0, memory_mb / AZURE_MB_PER_VCPU
    product = f"{platform.product.split(',')[0]}, {memory_mb} MB"
    return replace(platform, product=product, memory_gb=memory_mb / 1024, vcpu=vcpu, cpu_share=cpu_share)
