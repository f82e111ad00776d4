"""The packing benchmark's perplexity is exp(mean cross-entropy) of every next token of the validation stream,
as transformers computes it on the same windows; its per-matmul model decodes the tokens the engine decodes."""

from __future__ import annotations

import math

import numpy as np

from bench.packing import per_matmul, validation_perplexity
from core.artifacts import load_from
from functions.devtools.reference import ReferenceEngine

DOCUMENTS = ["DevOps is a set of practices", "Serverless functions scale to zero", "Terraform provisions clouds"]


def test_validation_perplexity_is_exp_of_the_mean_cross_entropy_transformers_computes(loaded, model_dir):
    eos, window = loaded.model.cfg.eos_token_id or 0, 8
    stream = [t for doc in DOCUMENTS for t in (*loaded.tokenizer.encode(doc).ids, eos)]
    reference, nll, count = ReferenceEngine(model_dir), 0.0, 0
    for begin in range(0, len(stream) - 1, window):
        ids = stream[begin : begin + window + 1]
        logits = reference.session().feed_every(ids[:-1]).astype(np.float64)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        nll -= sum(log_probs[i, t] for i, t in enumerate(ids[1:]))
        count += len(ids) - 1
    ours = validation_perplexity(loaded.model, loaded.tokenizer, DOCUMENTS, eos, window)
    assert math.isclose(ours, math.exp(nll / count), rel_tol=1e-4)


def test_the_per_matmul_model_decodes_what_the_engine_decodes(model_dir):
    engine, kept_int8 = load_from(model_dir).model, per_matmul(load_from(model_dir).model)
    ids = [5, 40, 100, 7]
    np.testing.assert_allclose(kept_int8.session().feed(ids), engine.session().feed(ids), atol=0.1, rtol=0)
    assert int(np.argmax(kept_int8.session().feed(ids))) == int(np.argmax(engine.session().feed(ids)))
