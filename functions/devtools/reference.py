"""The transformers engine: the same model run by `GPT2LMHeadModel` (torch), imported lazily.

It is the parity oracle for core.model and a choice for users who prefer it (`--engine reference`);
it is never on the serving path, and importing this module does not import torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.model import GPT2Config


class ReferenceSession:
    """One generation with transformers' own KV cache (past_key_values)."""

    def __init__(self, model):
        self.model = model
        self.past = None

    def feed(self, ids: list[int]) -> np.ndarray:
        return self.feed_every(ids)[-1]  # (V,)

    def feed_every(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids]), past_key_values=self.past, use_cache=True)
        self.past = out.past_key_values
        return out.logits[0].numpy()  # (T, V)


class ReferenceEngine:
    """GPT2LMHeadModel loaded from a model directory (config.json + model.safetensors)."""

    def __init__(self, model_dir: str | Path):
        from transformers import GPT2LMHeadModel

        self.cfg = GPT2Config.from_dict(json.loads((Path(model_dir) / "config.json").read_text()))
        self.model = GPT2LMHeadModel.from_pretrained(str(model_dir)).eval()

    def session(self) -> ReferenceSession:
        return ReferenceSession(self.model)

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """transformers' own `generate(do_sample=False)`: new token ids, ending at (and including) EOS."""
        import torch

        # transformers types generate()'s `self` as a protocol (transformers/_typing.py) that declares `hf_quantizer`,
        # an attribute PreTrainedModel only reads with getattr(); so pyright cannot bind the method to the model.
        out = self.model.generate(  # pyright: ignore[reportAttributeAccessIssue]
            torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.cfg.eos_token_id,
        )
        return out[0, len(ids) :].tolist()
