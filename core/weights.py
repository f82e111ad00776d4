"""Model weights on disk: safetensors read without torch, and the three packings a model directory may use.

model.safetensors holds a GPT-2 checkpoint's tensors under their checkpoint names (Conv1D weights in (in, out)
layout), packed one of three ways; the packing is recorded in the file's `__metadata__` (`tinyllm.dtype`) and in
the manifest (`dtype`):

  fp32  every tensor F32: what transformers' `save_pretrained` writes.
  fp16  every tensor F16 (IEEE half).
  int8  every 2-D weight I8 beside an F32 `<name>_scale` tensor; 1-D tensors (biases, layer norms) stay F32.
        Symmetric, one scale per output row: q = round(w / s) in [-127, 127], s = max|row| / 127, w ≈ q · s.
        The scale's shape says which axis is the row: (1, out) for a Conv1D weight (in, out), whose outputs are its
        columns; (rows, 1) for an embedding or an nn.Linear head (rows, C), where a row is one token's (or one
        position's) vector, and, for the tied head, one logit. So unpacking is `q * s` whatever the tensor.

The numpy engine computes in fp32: `unpack` turns any packing back into fp32 arrays, once, at load.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

DTYPES = ("fp32", "fp16", "int8")
METADATA_DTYPE = "tinyllm.dtype"  # key in the safetensors __metadata__
SCALE_SUFFIX = "_scale"
INT8_MAX = 127  # symmetric: -127..127, so -q is always representable
# safetensors dtype names (https://github.com/huggingface/safetensors, safetensors/src/tensor.rs: Dtype)
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I8": np.int8}
ROW_AXIS_NAMES = ("wte.weight", "wpe.weight", "lm_head.weight")  # (rows, C): a row is a token's or position's vector
MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit on the JSON header


class WeightsError(ValueError):
    """A weights file that cannot be read as safetensors; the message names the file and what is wrong."""


def read_header(path: Path) -> tuple[dict, int]:
    """(header, offset of the data) of a safetensors file: u64 little-endian header size, JSON header, data."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise WeightsError(f"{path}: {size} bytes is too short for a safetensors file")
        (header_size,) = struct.unpack("<Q", head)
        if header_size > min(MAX_HEADER_BYTES, size - 8):
            raise WeightsError(f"{path}: header size {header_size} runs past the end of the file: truncated or corrupt")
        try:
            header = json.loads(f.read(header_size))
        except (UnicodeDecodeError, ValueError):
            raise WeightsError(f"{path}: the safetensors header is not JSON: corrupt file") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: the safetensors header is not a JSON object: corrupt file")
    return header, 8 + header_size


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as its own writable numpy array (read straight into it, so memory never
    holds the file twice). WeightsError for a truncated or corrupt file or a dtype not in SAFETENSORS_DTYPES."""
    header, data_start = read_header(path)
    data_size = path.stat().st_size - data_start
    tensors: dict[str, np.ndarray] = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                dtype_name, shape, (begin, end) = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            except (KeyError, TypeError, ValueError):
                raise WeightsError(f"{path}: tensor {name!r} has a malformed header entry: corrupt file") from None
            if dtype_name not in SAFETENSORS_DTYPES:
                raise WeightsError(
                    f"{path}: tensor {name!r} has dtype {dtype_name}; supported: {', '.join(SAFETENSORS_DTYPES)}"
                )
            array = np.empty(shape, dtype=np.dtype(SAFETENSORS_DTYPES[dtype_name]).newbyteorder("<"))
            if not 0 <= begin <= end <= data_size or end - begin != array.nbytes:
                raise WeightsError(
                    f"{path}: tensor {name!r} lies outside the file's {data_size} data bytes: truncated or corrupt"
                )
            f.seek(data_start + begin)
            if array.nbytes and f.readinto(array.data.cast("B")) != array.nbytes:  # (a view of 0 bytes cannot cast)
                raise WeightsError(f"{path}: tensor {name!r} is cut short: truncated file")
            tensors[name] = array
    return tensors


def packing_of(path: Path) -> str:
    """The packing recorded in a weights file (a file without the record is an fp32 checkpoint)."""
    header, _ = read_header(path)
    dtype = (header.get("__metadata__") or {}).get(METADATA_DTYPE, "fp32")
    if dtype not in DTYPES:
        raise WeightsError(f"{path}: unknown packing {METADATA_DTYPE}={dtype!r}; known: {', '.join(DTYPES)}")
    return dtype


def parameter_count(path: Path) -> int:
    """How many weights a file holds (scales not counted), from its header alone."""
    header, _ = read_header(path)
    return sum(
        int(np.prod(info["shape"]))
        for name, info in header.items()
        if name != "__metadata__" and not name.endswith(SCALE_SUFFIX)
    )


def reduce_axis(name: str) -> int:
    """The input axis of a 2-D weight: the one a scale spans (see the module docstring)."""
    return 1 if name.endswith(ROW_AXIS_NAMES) else 0


def pack(tensors: dict[str, np.ndarray], dtype: str) -> dict[str, np.ndarray]:
    """fp32 checkpoint tensors in the packing `dtype` (see the module docstring)."""
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if dtype == "fp32":
        return {name: np.ascontiguousarray(t, dtype=np.float32) for name, t in tensors.items()}
    if dtype == "fp16":
        return {name: np.ascontiguousarray(t, dtype=np.float16) for name, t in tensors.items()}
    packed: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        w = np.asarray(tensor, dtype=np.float32)
        if w.ndim != 2:
            packed[name] = np.ascontiguousarray(w)
            continue
        absmax = np.abs(w).max(axis=reduce_axis(name), keepdims=True)
        scale = np.where(absmax > 0, absmax / INT8_MAX, 1.0).astype(np.float32)  # an all-zero row: q = 0, any s
        packed[name] = np.clip(np.rint(w / scale), -INT8_MAX, INT8_MAX).astype(np.int8)
        packed[name + SCALE_SUFFIX] = scale
    return packed


def unpack(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Any packing back to fp32 arrays under the checkpoint's names (the scales folded away). Consumes `tensors`:
    each packed array is dropped as soon as it is unpacked, so memory never holds the whole model twice."""
    out: dict[str, np.ndarray] = {}
    for name in [n for n in tensors if not n.endswith(SCALE_SUFFIX) or n.removesuffix(SCALE_SUFFIX) not in tensors]:
        tensor, scale = tensors.pop(name), tensors.pop(name + SCALE_SUFFIX, None)
        if tensor.dtype == np.int8:
            if scale is None:
                raise WeightsError(f"int8 tensor {name!r} has no {name + SCALE_SUFFIX!r} beside it")
            out[name] = np.multiply(tensor, scale, dtype=np.float32)
        else:
            out[name] = tensor if tensor.dtype == np.float32 else tensor.astype(np.float32)
    return out
