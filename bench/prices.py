"""Published on-demand prices of the three function platforms, as this repository's stacks use them.

Checked on 2026-11-28 (PRICES_CHECKED) against the sources cited beside each figure; list prices in USD for
a tier-1 / US region, before taxes, discounts, committed use, networking and storage. Prices change: check the
sources before relying on an estimate built from them. Free tiers are kept apart from the prices so that the
cost table can show both.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_CHECKED = "2026-11-28"
GIB = 1024**3


@dataclass(frozen=True)
class Platform:
    """How one platform bills a request: memory-time (+ CPU-time on GCP), a per-request fee, rounding."""

    cloud: str
    product: str
    memory_gb: float  # the stack's configured memory (infra defaults), in the unit the provider bills
    vcpu: float  # CPU billed with that memory (GCP only; 0 where CPU is included in the memory price)
    cpu_share: float  # the share of one vCPU the instance runs on: CPU-bound time stretches by 1 / cpu_share
    per_gb_second: float
    per_vcpu_second: float
    per_million_requests: float
    min_billed_seconds: float  # the shortest billed period when a request is billed alone
    round_to_seconds: float  # billed time is rounded up to a multiple of this
    free_gb_seconds: float  # per month
    free_vcpu_seconds: float
    free_requests: float
    sources: tuple[str, ...]


PLATFORMS = (
    Platform(
        cloud="aws",
        product="Lambda, arm64, 1024 MB",
        memory_gb=1.0,
        vcpu=0.0,
        # Source: docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html ("At 1,769 MB, a function has
        # the equivalent of one vCPU").
        cpu_share=1024 / 1769,
        # Source: aws.amazon.com/lambda/pricing, as quoted by cloudchipr.com/blog/aws-lambda-pricing ("ARM Pricing
        # - First 7.5 Billion GB-seconds per month: $0.0000133334 per GB-second") and unanswered.io ("$0.20 for
        # every additional 1 million requests"; "rounded up to the nearest millisecond with a 1 ms minimum").
        per_gb_second=0.0000133334,
        per_vcpu_second=0.0,
        per_million_requests=0.20,
        min_billed_seconds=0.001,
        round_to_seconds=0.001,
        # Source: same pages: "1 million free requests", "400 000 GB-seconds of compute time" per month.
        free_gb_seconds=400_000,
        free_vcpu_seconds=0,
        free_requests=1_000_000,
        sources=("https://aws.amazon.com/lambda/pricing/", "https://cloudchipr.com/blog/aws-lambda-pricing"),
    ),
    Platform(
        cloud="gcp",
        product="Cloud Run functions, 1 GiB (0.583 vCPU), request-based billing",
        memory_gb=1.0,
        # Source: cloud.google.com/functions/docs/configuring/memory ("1 GiB | .583 vCPU").
        vcpu=0.583,
        cpu_share=0.583,
        # Source: cloud.google.com/run/pricing, services with CPU only allocated during request processing,
        # tier 1: "$0.00002400 / vCPU-second beyond free tier"; memory $0.00000250 / GiB-second, requests
        # $0.40 / million (cloudwebschool.com/tools/cloud-run-cost-calculator quotes the same three rates);
        # "rounded up to the nearest 100 millisecond".
        per_gb_second=0.0000025,
        per_vcpu_second=0.000024,
        per_million_requests=0.40,
        min_billed_seconds=0.1,
        round_to_seconds=0.1,
        # Source: cloud.google.com/run/pricing: "First 180,000 vCPU-seconds free per month", "First 360,000
        # GiB-seconds free per month", "2 million requests free per month".
        free_gb_seconds=360_000,
        free_vcpu_seconds=180_000,
        free_requests=2_000_000,
        sources=("https://cloud.google.com/run/pricing", "https://cloud.google.com/functions/docs/configuring/memory"),
    ),
    Platform(
        cloud="azure",
        product="Functions Flex Consumption, on demand, 2048 MB",
        memory_gb=2.0,
        vcpu=0.0,
        # Not found in the pages checked: one full vCPU for a 2048 MB instance is an assumption.
        cpu_share=1.0,
        # Source: modal.com/blog/azure-function-pricing-guide (May 2025), Flex Consumption: "Execution Time:
        # $0.000026 per GB-second"; $0.40 per million executions (azure.microsoft.com/pricing/details/functions
        # renders its prices client-side, so its stored copy shows "$-"; this is the secondary source).
        per_gb_second=0.000026,
        per_vcpu_second=0.0,
        per_million_requests=0.40,
        # Source: learn.microsoft.com/azure/azure-functions/flex-consumption-plan#billing: "The minimum billable
        # execution period for both execution modes is 1,000 ms. Past that, the billable activity period is
        # rounded up to the nearest 100 ms."
        min_billed_seconds=1.0,
        round_to_seconds=0.1,
        # Source: the same pricing page / modal.com guide: on-demand free grant of 100,000 GB-s and 250,000
        # executions per month (none with always-ready instances).
        free_gb_seconds=100_000,
        free_vcpu_seconds=0,
        free_requests=250_000,
        sources=(
            "https://azure.microsoft.com/pricing/details/functions/",
            "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#billing",
            "https://modal.com/blog/azure-function-pricing-guide",
        ),
    ),
)
