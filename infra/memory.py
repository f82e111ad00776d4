"""Instance memory that follows the model: the sizes each cloud offers, the smallest that serves a model, and the
refusal of a configured size too small for it (infra.config applies both, before anything is created).

The rule: the model needs `ModelInfo.required_mb` (infra.model_info: its peak memory with headroom); the default
is the smallest size the cloud offers that is at least that and at least the cloud's floor (FLOORS: the sizes
the stacks used before the rule, kept for small models because CPU comes with memory); a configured
`tinyllm:memoryMb` below `required_mb` is refused.
"""

from __future__ import annotations

from infra.model_info import ModelInfo

# Lambda: "between 128 MB and 10,240 MB in 1-MB increments"; "At 1,769 MB, a function has the equivalent of one
# vCPU" (docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
LAMBDA_MEMORY_MB = (128, 10240)
LAMBDA_MB_PER_VCPU = 1769
# Cloud Run functions: memory tiers and the vCPU each comes with, "128 MiB .083 vCPU ... 1 GiB .583 vCPU, 2 GiB
# 1 vCPU, 4 GiB 2 vCPU, 8 GiB 2 vCPU, 16 GiB 4 vCPU, 32 GiB 8 vCPU" (cloud.google.com/functions/docs/configuring/
# memory); 32 GiB is the 2nd gen maximum (cloud.google.com/functions/quotas: "Max function memory ... 32GiB").
GCP_MEMORY_VCPU = {128: 0.083, 256: 0.167, 512: 0.333, 1024: 0.583, 2048: 1, 4096: 2, 8192: 2, 16384: 4, 32768: 8}
# Flex Consumption instance sizes (MB): learn.microsoft.com/azure/azure-functions/flex-consumption-plan#instance-
# sizes ("Available CPUs and network bandwidth are provided proportional to a specific instance size").
AZURE_INSTANCE_MEMORY_MB = (512, 2048, 4096)
FLOORS = {"aws": 1024, "gcp": 1024, "azure": 2048}


def offered_sizes(cloud: str) -> tuple[int, ...] | range:
    if cloud == "aws":
        return range(LAMBDA_MEMORY_MB[0], LAMBDA_MEMORY_MB[1] + 1)
    if cloud == "gcp":
        return tuple(GCP_MEMORY_VCPU)
    return AZURE_INSTANCE_MEMORY_MB


def largest(cloud: str) -> int:
    return max(offered_sizes(cloud))


def default_memory_mb(cloud: str, model: ModelInfo) -> int | None:
    """The memory the stack asks for by default: the smallest offered size >= the model's need and the floor;
    None when even the largest size is too small."""
    need = max(model.required_mb, FLOORS[cloud])
    return next((size for size in offered_sizes(cloud) if size >= need), None)


def memory_problem(cloud: str, memory_mb: int, model: ModelInfo) -> str | None:
    """Why `memory_mb` cannot serve the model (one line naming the fix), or None when it can."""
    if memory_mb >= model.required_mb:
        return None
    chosen = default_memory_mb(cloud, model)
    if chosen is None:
        return (
            f"{model.describe()} needs {model.required_mb} MB of instance memory, more than {cloud}'s largest "
            f"({largest(cloud)} MB); deploy a smaller model"
        )
    return (
        f"tinyllm:memoryMb {memory_mb} is too small for {model.describe()}, which needs {model.required_mb} MB; "
        f"set it to {chosen} or more, or remove it to let the model choose"
    )
