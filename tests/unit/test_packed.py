"""Packed weights (core/weights.py): fp16 is IEEE half, int8 is symmetric with one scale per output row, and
whatever the packing, the engine gets fp32 back; the safetensors reader refuses damaged files in one line."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from core.weights import (
    INT8_MAX,
    SCALE_SUFFIX,
    WeightsError,
    pack,
    packing_of,
    parameter_count,
    read_safetensors,
    unpack,
)


def checkpoint_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "transformer.wte.weight": rng.normal(0, 0.1, (50, 16)).astype(np.float32),
        "transformer.h.0.attn.c_attn.weight": rng.normal(0, 0.1, (16, 48)).astype(np.float32),
        "transformer.h.0.attn.c_attn.bias": rng.normal(0, 0.1, (48,)).astype(np.float32),
        "lm_head.weight": rng.normal(0, 0.1, (50, 16)).astype(np.float32),
    }


def test_int8_keeps_each_weight_within_half_a_step_of_its_rows_scale():
    tensors = checkpoint_tensors()
    packed = pack(tensors, "int8")
    unpacked = unpack(dict(packed))  # unpack consumes its argument
    for name, w in tensors.items():
        if w.ndim == 1:
            assert packed[name].dtype == np.float32 and name + SCALE_SUFFIX not in packed
            continue
        q, scale = packed[name], packed[name + SCALE_SUFFIX]
        assert q.dtype == np.int8 and np.abs(q).max() == INT8_MAX
        assert np.all(np.abs(unpacked[name] - w) <= scale / 2 * (1 + 1e-6))


def test_int8_scales_span_the_input_axis_one_per_output_row():
    packed = pack(checkpoint_tensors(), "int8")
    assert packed["transformer.h.0.attn.c_attn.weight_scale"].shape == (1, 48)  # Conv1D (in, out): per column
    assert packed["transformer.wte.weight_scale"].shape == (50, 1)  # embedding / tied head: per token
    assert packed["lm_head.weight_scale"].shape == (50, 1)  # nn.Linear (out, in): per row


def test_an_all_zero_row_packs_to_zeros_without_dividing_by_zero():
    w = np.zeros((4, 3), dtype=np.float32)
    w[:, 1] = [0.5, -1.0, 0.25, 0.0]
    unpacked = unpack(pack({"h.0.mlp.c_fc.weight": w}, "int8"))["h.0.mlp.c_fc.weight"]
    np.testing.assert_allclose(unpacked, w, atol=1.0 / INT8_MAX)
    assert np.all(unpacked[:, [0, 2]] == 0)


def test_fp16_is_ieee_half_and_unpacks_to_fp32():
    tensors = checkpoint_tensors()
    packed = pack(tensors, "fp16")
    assert all(t.dtype == np.float16 for t in packed.values())
    unpacked = unpack(packed)
    for name, w in tensors.items():
        np.testing.assert_array_equal(unpacked[name], w.astype(np.float16).astype(np.float32))


def test_unpacking_consumes_the_packed_tensors():
    packed = pack(checkpoint_tensors(), "int8")
    unpack(packed)
    assert packed == {}


def test_an_unknown_packing_is_refused():
    with pytest.raises(ValueError, match="unknown dtype 'int4'"):
        pack(checkpoint_tensors(), "int4")


def test_packed_files_round_trip_through_the_safetensors_library(tmp_path):
    for dtype in ("fp16", "int8"):
        path = tmp_path / f"{dtype}.safetensors"
        packed = pack(checkpoint_tensors(), dtype)
        save_file(packed, str(path), metadata={"tinyllm.dtype": dtype})
        ours, theirs = read_safetensors(path), load_file(str(path))
        assert ours.keys() == theirs.keys() == packed.keys()
        for name in theirs:
            np.testing.assert_array_equal(ours[name], theirs[name])
        assert packing_of(path) == dtype
        assert parameter_count(path) == sum(t.size for t in checkpoint_tensors().values())


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(checkpoint_tensors(), str(path))
    return path


def test_a_file_without_a_packing_record_is_fp32(weights_file):
    assert packing_of(weights_file) == "fp32"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:5], "too short for a safetensors file"),
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: struct.pack("<Q", 1 << 40) + data[8:], "runs past the end of the file"),
        (lambda data: data[:8] + b"\x00" * 12 + data[20:], "not JSON"),
    ],
    ids=["shorter than its size field", "cut in half", "a header size past the end", "a garbled header"],
)
def test_a_damaged_file_is_a_one_line_weights_error(weights_file, damage, message):
    weights_file.write_bytes(damage(weights_file.read_bytes()))
    with pytest.raises(WeightsError, match=message) as caught:
        read_safetensors(weights_file)
    assert "\n" not in str(caught.value)


def test_an_unsupported_tensor_dtype_is_named(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"wte.weight": np.zeros((2, 2), dtype=np.int32)}, str(path))
    with pytest.raises(WeightsError, match=r"tensor 'wte\.weight' has dtype I32"):
        read_safetensors(path)


def test_an_unknown_packing_record_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"wte.weight": np.zeros((2, 2), dtype=np.float32)}, str(path), metadata={"tinyllm.dtype": "q4_k"})
    with pytest.raises(WeightsError, match=r"unknown packing tinyllm\.dtype='q4_k'"):
        packing_of(path)
