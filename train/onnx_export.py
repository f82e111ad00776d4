"""`python -m train.onnx_export MODEL_DIR --out OUT_DIR [--quantize int8] [--per-tensor]`: a model directory
that ONNX Runtime serves (core/onnx_engine.py).

MODEL_DIR is an fp32 model directory as `python -m train` writes it (config.json, model.safetensors under GPT-2
checkpoint names, tokenizer.json, manifest.json). OUT_DIR gets config.json and tokenizer.json (copied), model.onnx
and a manifest of the same kind (sha256 of every file) that records `engine: onnx`, the packing and the source.

The graph is one decoding step with an explicit KV cache, dynamic in both the new positions T and the cached ones
P, so one graph serves the prompt (T > 1, P = 0) and each new token (T = 1):
  input_ids (T,) int64, past_key / past_value (L, nh, P, hs) float32
  -> logits (T, V) float32, present_key / present_value (L, nh, P + T, hs) float32.
It is written from the checkpoint's tensors by a small torch module (GPT2Step) rather than by tracing
transformers, whose cache objects do not export cleanly; tests/unit/test_onnx_engine.py holds it to
transformers' logits. The tied embedding is stored once, as the (C, V) head: the lookup gathers its columns,
so the quantized MatMul and the Gather read the same int8 tensor instead of two copies of it.

--quantize int8 runs onnxruntime.quantization.quantize_dynamic: int8 weights (one scale per output column with
the default per-channel; --per-tensor for one scale per matrix), activations quantized at run time.
The directory is written to a temporary sibling and renamed into place: never half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from core.artifacts import MANIFEST, ArtifactError, sha256_file, verify
from core.model import GPT2Config
from core.weights import read_safetensors, unpack

ENGINE = "onnx"
PACKINGS = ("fp32", "int8")
OPSET = 17  # LayerNormalization is an ONNX op from opset 17 on
GRAPH = "model.onnx"
COPIED = ("config.json", "tokenizer.json")
LIBRARIES = ("torch", "onnx", "onnxruntime")


class ExportError(Exception):
    """The source directory cannot be exported (one line for the user)."""


def build_step_module(cfg: GPT2Config, weights: dict):
    """A torch module computing one decoding step from the checkpoint's tensors (see the module docstring)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    prefix = "transformer." if "transformer.wte.weight" in weights else ""

    def param(name: str) -> nn.Parameter:
        key = prefix + name
        if key not in weights:
            raise ExportError(f"model.safetensors: tensor {key!r} is missing")
        return nn.Parameter(torch.tensor(weights[key], dtype=torch.float32), requires_grad=False)

    C, nh = cfg.n_embd, cfg.n_head
    hs = C // nh
    eps = cfg.layer_norm_epsilon
    activation = {
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
    }[cfg.activation_function]

    class Layer(nn.Module):
        def __init__(self, i: int):
            super().__init__()
            self.ln_1_w, self.ln_1_b = param(f"h.{i}.ln_1.weight"), param(f"h.{i}.ln_1.bias")
            self.attn_w, self.attn_b = param(f"h.{i}.attn.c_attn.weight"), param(f"h.{i}.attn.c_attn.bias")
            self.attn_proj_w, self.attn_proj_b = param(f"h.{i}.attn.c_proj.weight"), param(f"h.{i}.attn.c_proj.bias")
            self.ln_2_w, self.ln_2_b = param(f"h.{i}.ln_2.weight"), param(f"h.{i}.ln_2.bias")
            self.fc_w, self.fc_b = param(f"h.{i}.mlp.c_fc.weight"), param(f"h.{i}.mlp.c_fc.bias")
            self.mlp_proj_w, self.mlp_proj_b = param(f"h.{i}.mlp.c_proj.weight"), param(f"h.{i}.mlp.c_proj.bias")
            self.scale = (1 / math.sqrt(hs) if cfg.scale_attn_weights else 1.0) / (
                i + 1 if cfg.scale_attn_by_inverse_layer_idx else 1
            )

        def forward(self, x, past_k, past_v, allowed):
            T = x.shape[0]
            h = F.layer_norm(x, (C,), self.ln_1_w, self.ln_1_b, eps)
            q, k, v = (h @ self.attn_w + self.attn_b).split(C, dim=-1)
            q, k, v = (t.reshape(T, nh, hs).transpose(0, 1) for t in (q, k, v))  # (nh, T, hs)
            k, v = torch.cat([past_k, k], dim=1), torch.cat([past_v, v], dim=1)  # (nh, P + T, hs)
            att = (q @ k.transpose(1, 2)) * self.scale
            att = att.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
            y = (att @ v).transpose(0, 1).reshape(T, C)
            x = x + y @ self.attn_proj_w + self.attn_proj_b
            h = activation(F.layer_norm(x, (C,), self.ln_2_w, self.ln_2_b, eps) @ self.fc_w + self.fc_b)
            return x + h @ self.mlp_proj_w + self.mlp_proj_b, k, v

    class GPT2Step(nn.Module):
        def __init__(self):
            super().__init__()
            wte = param("wte.weight")
            head = weights.get("lm_head.weight", weights[prefix + "wte.weight"])
            self.head = nn.Parameter(torch.tensor(head, dtype=torch.float32).T.contiguous(), requires_grad=False)
            if tuple(wte.shape) != (cfg.vocab_size, C) or tuple(self.head.shape) != (C, cfg.vocab_size):
                raise ExportError(f"model.safetensors: wte/lm_head shape does not match config.json ({cfg})")
            if "lm_head.weight" in weights and not torch.equal(wte, self.head.T):
                raise ExportError("model.safetensors: an untied lm_head is not supported by this export")
            self.wpe = param("wpe.weight")
            self.layers = nn.ModuleList(Layer(i) for i in range(cfg.n_layer))
            self.ln_f_weight, self.ln_f_bias = param("ln_f.weight"), param("ln_f.bias")

        def forward(self, input_ids, past_key, past_value):
            T, P = input_ids.shape[0], past_key.shape[2]
            positions = torch.arange(T, dtype=torch.int64) + P
            # The embedding gathers columns of the (C, V) head: one stored copy of the tied matrix.
            x = self.head.index_select(1, input_ids).transpose(0, 1) + self.wpe.index_select(0, positions)
            # Query t (at position P + t) sees keys 0 .. P + t.
            allowed = torch.arange(P + T, dtype=torch.int64)[None, :] <= positions[:, None]  # (T, P + T)
            keys, values = [], []
            for i, layer in enumerate(self.layers):
                x, k, v = layer(x, past_key[i], past_value[i], allowed)
                keys.append(k)
                values.append(v)
            x = F.layer_norm(x, (C,), self.ln_f_weight, self.ln_f_bias, eps)
            return x @ self.head, torch.stack(keys), torch.stack(values)

    return GPT2Step().eval()


def export_graph(cfg: GPT2Config, weights: dict, path: Path) -> None:
    """Write the fp32 decode-step graph (TorchScript exporter: the dynamo one needs onnxscript)."""
    import torch

    module = build_step_module(cfg, weights)
    hs = cfg.n_embd // cfg.n_head
    # Example sizes other than 0 and 1, so the exporter does not specialise a dynamic axis to them.
    ids = torch.zeros(2, dtype=torch.int64)
    past = torch.zeros(cfg.n_layer, cfg.n_head, 3, hs)
    with torch.no_grad():
        torch.onnx.export(
            module,
            (ids, past, past),
            str(path),
            input_names=["input_ids", "past_key", "past_value"],
            output_names=["logits", "present_key", "present_value"],
            dynamic_axes={
                "input_ids": {0: "new"},
                "past_key": {2: "past"},
                "past_value": {2: "past"},
                "logits": {0: "new"},
                "present_key": {2: "total"},
                "present_value": {2: "total"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(fp32_path: Path, out_path: Path, per_channel: bool) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_path,
        out_path,
        weight_type=QuantType.QInt8,
        per_channel=per_channel,
        op_types_to_quantize=["MatMul", "Gather"],
    )


def export(source: Path, out: Path, packing: str = "fp32", per_channel: bool = True) -> dict:
    """Export `source` into `out` (written atomically); return the manifest written."""
    if packing not in PACKINGS:
        raise ExportError(f"--quantize {packing!r} is not one of {', '.join(PACKINGS[1:])}")
    try:
        source_manifest, source_manifest_sha256 = verify(source)
        if source_manifest.get("engine", "numpy") != "numpy":
            raise ExportError(f"{source}: is already an {source_manifest['engine']} model; export an fp32 model dir")
        cfg = GPT2Config.from_dict(json.loads((source / "config.json").read_text(encoding="utf-8")))
        weights = unpack(read_safetensors(source / "model.safetensors"))  # any packing at rest: fp32 to export
    except ArtifactError as exc:
        raise ExportError(str(exc)) from None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ExportError(f"{source}: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        for name in COPIED:
            shutil.copyfile(source / name, staging / name)
        if packing == "fp32":
            export_graph(cfg, weights, staging / GRAPH)
        else:
            with tempfile.TemporaryDirectory() as scratch:
                fp32_path = Path(scratch) / GRAPH
                export_graph(cfg, weights, fp32_path)
                quantize_int8(fp32_path, staging / GRAPH, per_channel)
        manifest = {
            "format": source_manifest.get("format", "tinyllm-model/1"),
            "name": source_manifest.get("name", "tinyllm"),
            "engine": ENGINE,
            "dtype": packing,  # the packing, under the name every model manifest uses (docs/models.md)
            "quantization": None
            if packing == "fp32"
            else {"method": "onnxruntime.quantization.quantize_dynamic", "per_channel": per_channel},
            "opset": OPSET,
            "files": {p.name: sha256_file(p) for p in sorted(staging.iterdir())},
            "source": {"manifest_sha256": source_manifest_sha256, "files": source_manifest["files"]},
            "versions": {lib: version(lib) for lib in LIBRARIES},
        }
        for key in ("corpus", "train_config", "metrics"):  # what made the weights, as the source recorded it
            if key in source_manifest:
                manifest["source"][key] = source_manifest[key]
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.onnx_export", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("model_dir", type=Path, help="an fp32 model directory (python -m train's output)")
    parser.add_argument("--out", type=Path, required=True, help="the ONNX model directory to write")
    parser.add_argument("--quantize", choices=PACKINGS[1:], default=None, help="int8 weights (default: fp32)")
    parser.add_argument("--per-tensor", action="store_true", help="int8: one scale per matrix, not per column")
    args = parser.parse_args(argv)
    if args.per_tensor and not args.quantize:
        parser.error("--per-tensor applies only with --quantize int8")
    try:
        manifest = export(args.model_dir, args.out, args.quantize or "fp32", per_channel=not args.per_tensor)
    except ExportError as exc:
        print(f"python -m train.onnx_export: {exc}", file=sys.stderr)
        return 2
    size = sum((args.out / name).stat().st_size for name in manifest["files"])
    print(f"wrote {args.out} ({manifest['dtype']}, {size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
