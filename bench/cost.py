"""What 1M requests cost: an estimate from a measured request duration and each platform's published prices
(bench.prices), per preset and per cloud. Pure arithmetic, so it is unit-tested.

Two bounds, because billing rounds differently when requests arrive alone or back to back:
- alone: each request is its own billed period, with the platform's minimum and rounding: requests that never
  overlap on an instance (sparse traffic), the upper bound. On Azure Flex Consumption the 1,000 ms minimum is on an
  *instance's* active period, not on each execution, so requests that overlap on one instance share it;
- busy: an instance that is never idle bills only the time spent computing (the lowest possible cost).
The duration on a cloud is the duration measured here divided by the instance's share of a vCPU (CPU-bound
code on 0.58 vCPU takes about 1 / 0.58 as long). Free tiers are shown apart, as the number of such requests
a month they cover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.prices import PLATFORMS, PRICES_CHECKED, Platform
from bench.report import fmt, markdown_table
from infra.memory import GCP_MEMORY_VCPU, LAMBDA_MB_PER_VCPU

AZURE_MB_PER_VCPU = 2048  # bench.prices' assumption for Flex Consumption (one vCPU at 2048 MB), scaled with size
ALONE = "each billed alone (no overlap: upper bound)"
ALONE_NOTE = (
    "'Billed alone' applies each platform's minimum and rounding to each request, as if no two requests "
    "overlapped on an instance (Lambda 1 ms, Cloud Run 100 ms, Azure Flex 1,000 ms then 100 ms). On Azure Flex "
    "Consumption the 1,000 ms minimum is on each instance's active period, not on each execution "
    "(learn.microsoft.com/azure/azure-functions/flex-consumption-plan#billing), so concurrent requests on one "
    "instance share it and cost less than this bound. 'Busy instance' bills the compute time alone (lower bound)."
)


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


def cost_table(request_seconds: dict[str, float], tokens: int) -> str:
    """The markdown table of what 1M requests cost, per preset (its measured request time) and platform."""
    rows = []
    for preset, seconds in request_seconds.items():
        for platform in PLATFORMS:
            e = estimate(seconds, platform)
            rows.append(
                [
                    preset,
                    platform.cloud,
                    platform.product,
                    f"{fmt(e.cloud_seconds * 1000)} ms",
                    f"{fmt(e.billed_alone_seconds * 1000)} ms",
                    f"${e.per_million_alone:,.2f}",
                    f"${e.per_million_busy:,.2f}",
                    f"{e.free_requests_per_month:,.0f}",
                ]
            )
    headers = [
        "preset",
        "cloud",
        "as configured",
        "compute per request on the cloud",
        "billed alone",
        f"1M requests, {ALONE}",
        "1M requests, busy instance",
        "free tier covers (requests/month)",
    ]
    return f"### What 1M {tokens}-token requests cost (an estimate)\n\n" + markdown_table(headers, rows)


def cost_notes() -> list[str]:
    return [
        f"Prices: bench/prices.py, list prices checked {PRICES_CHECKED} with their sources; an estimate, not a quote: "
        "no networking, storage, logs, cold starts or taxes. 'Compute per request on the cloud' is the request "
        "time measured here divided by the instance's vCPU share (Lambda 1024 MB ≈ 0.58 vCPU, Cloud Run 1 GiB = "
        "0.583 vCPU, Azure 2048 MB assumed 1 vCPU).",
        ALONE_NOTE,
    ]


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
