"""Instance memory follows the model: what infra reads from a model directory (infra.model_info), the memory rule
and each cloud's offered sizes (infra.memory), on synthetic model directories at DistilGPT2's and GPT-2's shapes
(tests/synthetic_models.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from synthetic_models import SHAPES, make_model_dir

from infra.memory import FLOORS, GCP_MEMORY_VCPU, default_memory_mb, largest, memory_problem
from infra.model_info import MIB, ModelDirError, gpt2_parameters, read_model


def described(model_dir):
    """A synthetic model's description: its files are not hashed (sizes are what the memory rule reads)."""
    return read_model(model_dir, verify=False)


def test_parameter_counts_are_the_published_ones():
    # DistilGPT2 82 M and GPT-2 124 M (tied embeddings counted once), as the Hugging Face model cards give them.
    assert round(gpt2_parameters(SHAPES["distilgpt2"]) / 1e6, 1) == 81.9
    assert round(gpt2_parameters(SHAPES["gpt2"]) / 1e6, 1) == 124.4


@pytest.mark.parametrize("dtype", ["fp32", "fp16", "int8"])
def test_the_packing_is_read_from_the_weights_files_header(dtype, tmp_path):
    model = described(make_model_dir(tmp_path, "m", "distilgpt2", dtype, data_bytes=1000, hashed=False))
    assert model.dtype == dtype and model.weights_bytes > 1000 and model.name == "m"
    assert model.describe() == f"model 'm' ({dtype}, 81.9 M parameters)"


def test_a_weights_file_that_is_not_safetensors_is_refused(tmp_path):
    model = make_model_dir(tmp_path, "m", "distilgpt2", "int8", data_bytes=10, hashed=False)
    (model / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(ModelDirError, match="not a readable safetensors file"):
        described(model)


def test_the_rule_counts_the_file_fp32_weights_a_kv_cache_and_the_runtime(tmp_path):
    model = described(make_model_dir(tmp_path, "gpt2", "gpt2", "int8", hashed=False))
    n_layer, n_positions, n_embd = 12, 1024, 768
    kv_cache = 2 * 4 * n_layer * n_positions * n_embd
    expected = model.weights_bytes + 4 * gpt2_parameters(SHAPES["gpt2"]) + kv_cache + 160 * 10**6
    assert model.serving_bytes == expected
    assert model.required_mb == -(-int(expected * 1.25) // MIB)


# (shape, packing) -> the memory each cloud's stack asks for by default. Lambda: any MB from 128 (the floor 1024
# for small models); Cloud Run functions: its memory tiers; Flex Consumption: 512, 2048 or 4096.
EXPECTED_DEFAULTS = {
    ("distilgpt2", "int8"): {"aws": 1024, "gcp": 1024, "azure": 2048},
    ("gpt2", "int8"): {"gcp": 1024, "azure": 2048},
    ("gpt2", "fp32"): {"gcp": 2048, "azure": 2048},
}


@pytest.mark.parametrize("shape, dtype", sorted(EXPECTED_DEFAULTS))
def test_the_default_memory_is_the_smallest_offered_size_that_serves_the_model(shape, dtype, tmp_path):
    model = described(make_model_dir(tmp_path, f"{shape}-{dtype}", shape, dtype, hashed=False))
    for cloud in ("aws", "gcp", "azure"):
        chosen = default_memory_mb(cloud, model)
        assert chosen is not None and chosen >= model.required_mb and chosen >= FLOORS[cloud]
        if cloud == "aws":  # 1 MB steps: exactly the need, unless the floor is larger
            assert chosen == max(model.required_mb, FLOORS["aws"])
        else:
            assert chosen == EXPECTED_DEFAULTS[shape, dtype][cloud]
        assert memory_problem(cloud, chosen, model) is None


def test_a_configured_memory_too_small_for_the_model_is_refused_with_the_size_to_set(tmp_path):
    model = described(make_model_dir(tmp_path, "gpt2-fp32", "gpt2", "fp32", hashed=False))
    problem = memory_problem("gcp", 1024, model)
    assert problem is not None and "tinyllm:memoryMb 1024 is too small for model 'gpt2-fp32' (fp32" in problem
    assert f"needs {model.required_mb} MB" in problem and "set it to 2048 or more" in problem
    assert memory_problem("aws", model.required_mb - 1, model) is not None
    assert memory_problem("aws", model.required_mb, model) is None


def test_a_model_larger_than_the_largest_instance_is_refused_on_that_cloud(tmp_path):
    # 9 GB of weights (described, not written): more than Flex Consumption's 4096 MB and Lambda's 10240 MB
    # with the rule's headroom, less than Cloud Run functions' 32 GiB.
    small = described(make_model_dir(tmp_path, "huge", "gpt2", "fp32", data_bytes=1000, hashed=False))
    model = replace(small, weights_bytes=9 * 10**9)
    for cloud in ("azure", "aws"):
        assert default_memory_mb(cloud, model) is None
        problem = memory_problem(cloud, largest(cloud), model)
        assert problem is not None and f"more than {cloud}'s largest ({largest(cloud)} MB)" in problem
    assert default_memory_mb("gcp", model) in GCP_MEMORY_VCPU
