"""Imported checkpoints at DistilGPT2's and GPT-2's real shapes (random weights, made by transformers): the numpy
engine computes transformers' logits (within 1e-4) and its greedy tokens (32 of them); the fp16 and int8
packings are compared with the fp32 numpy engine, within the tolerances stated here."""

from __future__ import annotations

import numpy as np
import pytest

from core.artifacts import load_from
from functions.devtools.reference import ReferenceEngine
from tests.unit.checkpoints import DISTILGPT2_SHAPE, GPT2_SHAPE, save_checkpoint
from train.convert import convert

LOGIT_TOLERANCE = 1e-4  # fp32 numpy vs transformers, absolute, on every logit
GREEDY_STEPS = 32
# Packed vs fp32 numpy on these random-weight models, absolute on every logit of a 16-token prompt:
PACKED_LOGIT_TOLERANCE = {"fp16": 5e-3, "int8": 1e-1}
PROMPT = list(range(100, 50_000, 3_123))  # 16 token ids spread over the vocabulary


@pytest.fixture(scope="session")
def imported(tmp_path_factory):
    """{(shape, dtype): model directory} for DistilGPT2's shape in every packing and GPT-2's in fp32, plus
    the source checkpoints under (shape, "source")."""
    root = tmp_path_factory.mktemp("gpt2-shapes")
    dirs = {}
    for shape, config, dtypes in (
        ("distilgpt2", DISTILGPT2_SHAPE, ("fp32", "fp16", "int8")),
        ("gpt2", GPT2_SHAPE, ("fp32",)),
    ):
        source = save_checkpoint(root / shape, **config)
        dirs[shape, "source"] = source
        for dtype in dtypes:
            dirs[shape, dtype] = convert(source, root / f"{shape}-{dtype}", dtype)
    return dirs


def greedy(session, ids: list[int], steps: int) -> list[int]:
    out, logits = [], session.feed(ids)
    for _ in range(steps):
        out.append(int(np.argmax(logits)))
        logits = session.feed([out[-1]])
    return out


@pytest.mark.parametrize("shape", ["distilgpt2", "gpt2"])
def test_fp32_import_matches_transformers_logits_and_32_greedy_tokens(imported, shape):
    ours, reference = load_from(imported[shape, "fp32"]).model, ReferenceEngine(imported[shape, "source"])
    np.testing.assert_allclose(
        ours.session().feed_every(PROMPT), reference.session().feed_every(PROMPT), atol=LOGIT_TOLERANCE, rtol=0
    )
    assert greedy(ours.session(), PROMPT, GREEDY_STEPS) == reference.greedy(PROMPT, GREEDY_STEPS)


@pytest.mark.parametrize("dtype", ["fp16", "int8"])
def test_packed_imports_stay_close_to_the_fp32_engine(imported, dtype):
    fp32, packed = load_from(imported["distilgpt2", "fp32"]).model, load_from(imported["distilgpt2", dtype]).model
    expected, actual = fp32.session().feed_every(PROMPT), packed.session().feed_every(PROMPT)
    print(f"{dtype}: max |logit - fp32 logit| = {np.abs(actual - expected).max():.2e}")
    np.testing.assert_allclose(actual, expected, atol=PACKED_LOGIT_TOLERANCE[dtype], rtol=0)
    ours, theirs = greedy(packed.session(), PROMPT, GREEDY_STEPS), greedy(fp32.session(), PROMPT, GREEDY_STEPS)
    agreement = next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b), GREEDY_STEPS)
    print(f"{dtype}: greedy tokens identical to fp32 for {agreement}/{GREEDY_STEPS} steps")
    assert agreement == GREEDY_STEPS
