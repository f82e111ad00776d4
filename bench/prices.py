"""Published on-demand prices of the three function platforms, as this repository's stacks use them.

Checked on 2026-11-28 (PRICES_CHECKED) against the sources cited beside each figure; the citations moved to the
provider's own page wherever one shows the figure on 2026-11-30 (issue 19), with the same values. List prices in
USD for a tier-1 / US region, before taxes, discounts, committed use, networking and storage. Prices change: check
the sources before relying on an estimate built from them. Free tiers are kept apart from the prices so that the
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
    min_billed_seconds: float  # the shortest billed period (of an instance's activity on Azure Flex; see below)
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
        # Source: AWS's whitepaper "How AWS Pricing Works", Lambda
        # (docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html): "$0.20 per 1 million requests
        # thereafter, or $0.0000002 per request"; "Duration is calculated from the time your code begins executing
        # until it returns or otherwise terminates, rounded up to the nearest 1 millisecond (ms)"; x86 duration
        # "$0.00001667 for every GB-second used thereafter" (the pricing page's $0.0000166667, rounded).
        # Arm: AWS News Blog, "AWS Lambda Functions Powered by AWS Graviton2 Processor"
        # (aws.amazon.com/blogs/aws/aws-lambda-functions-powered-by-aws-graviton2-processor-run-your-functions-on-
        # arm-and-get-up-to-34-better-price-performance/): "For functions using the Arm/Graviton2 architecture,
        # duration charges are 20 percent lower than the current pricing for x86", i.e. 0.8 × $0.0000166667 =
        # $0.0000133334 per GB-second (aws.amazon.com/lambda/pricing renders its rates client-side, so its stored
        # copy shows none).
        per_gb_second=0.0000133334,
        per_vcpu_second=0.0,
        per_million_requests=0.20,
        min_billed_seconds=0.001,
        round_to_seconds=0.001,
        # Source: the same whitepaper: "Free Tier: 1 million requests per month"; "400,000 GB-seconds per month
        # free, up to 3.2 million seconds of compute time".
        free_gb_seconds=400_000,
        free_vcpu_seconds=0,
        free_requests=1_000_000,
        sources=(
            "https://docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html",
            "https://aws.amazon.com/blogs/aws/aws-lambda-functions-powered-by-aws-graviton2-processor-run-your-functions-on-arm-and-get-up-to-34-better-price-performance/",
            "https://aws.amazon.com/lambda/pricing/",
        ),
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
        # Source: Microsoft's "Estimating consumption-based costs" (learn.microsoft.com/azure/azure-functions/
        # functions-consumption-costs; github.com/MicrosoftDocs/azure-docs, articles/azure-functions/
        # functions-consumption-costs.md, ms.date 02/10/2025), its Flex Consumption examples: "Assuming an
        # on-demand execution rate of $0.000026 GB-s (without any free grants applied)" and "Assuming an on-demand
        # rate of `$0.40` per million executions". (azure.microsoft.com/pricing/details/functions renders its
        # prices client-side, so its stored copy shows "$-".)
        per_gb_second=0.000026,
        per_vcpu_second=0.0,
        per_million_requests=0.40,
        # Source: learn.microsoft.com/azure/azure-functions/flex-consumption-plan#billing: "The minimum billable
        # execution period for both execution modes is 1,000 ms. Past that, the billable activity period is
        # rounded up to the nearest 100 ms." The period is an *instance's* activity, not one execution's: the same
        # page bills "the total amount of memory provisioned while each on demand instance is actively executing
        # functions", and functions-consumption-costs.md's IO-bound example bills 10 concurrent requests on one
        # instance as that one instance's "2 GB * 3600 s = 7200 GB-s". So the minimum applied to each request
        # (bench.cost.billed_alone) is the bound for requests that never overlap on an instance.
        min_billed_seconds=1.0,
        round_to_seconds=0.1,
        # Source: not on a Microsoft page we could read (the pricing page renders client-side): the on-demand free
        # grant of 100,000 GB-s and 250,000 executions per month (none with always-ready instances) is as
        # modal.com/blog/azure-function-pricing-guide (May 2025) quotes it; functions-consumption-costs.md only
        # says there is "a free grant of GB-s per month" and "a free grant (number) of executions per month".
        free_gb_seconds=100_000,
        free_vcpu_seconds=0,
        free_requests=250_000,
        sources=(
            "https://learn.microsoft.com/azure/azure-functions/functions-consumption-costs",
            "https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#billing",
            "https://azure.microsoft.com/pricing/details/functions/",
            "https://modal.com/blog/azure-function-pricing-guide",
        ),
    ),
)
