"""lm-evaluation-harness, offline, against the live server: `local-completions` with `tokenizer_backend=remote`.

The harness does everything a user's evaluation of a deployed function would do with nothing but its URL:
it reads /tokenizer_info, tokenizes through /tokenize and /detokenize, sends batches of 16 token-id prompts
with `echo` + `logprobs` for loglikelihood, and greedy generations with stop strings. The two tasks are defined
in tests/live/lm_eval_tasks/ over the training corpus; the harness, not this test, computes the metrics.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from train.config import DEFAULT_CORPUS, TrainConfig
from train.corpus import split_documents

TASKS = Path(__file__).parent / "lm_eval_tasks"
CONTEXT_WORDS = 3
DISTRACTORS = 3  # chance is 1 / (1 + DISTRACTORS)
DOCS = 32
BATCH = 16


def corpus_docs(seed: int = 0) -> list[dict]:
    """Training lines (the held-out ones were never learned) with at least four words after the first three:
    context, the true rest, three shuffles of it."""
    rng = random.Random(seed)
    docs = []
    cfg = TrainConfig()  # the served model's: the live server runs the default training's model
    for line in split_documents(DEFAULT_CORPUS, cfg.val_fraction, cfg.seed, False):
        words = line.split()
        rest = words[CONTEXT_WORDS:]
        if len(rest) < 4 or len(set(rest)) < 3:
            continue
        true_rest, shuffles = " ".join(rest), set()
        while len(shuffles) < DISTRACTORS:
            candidate = " ".join(rng.sample(rest, len(rest)))
            if candidate != true_rest:
                shuffles.add(candidate)
        choices = sorted(shuffles)
        label = rng.randrange(DISTRACTORS + 1)
        choices.insert(label, true_rest)
        docs.append(
            {"context": " ".join(words[:CONTEXT_WORDS]), "choices": choices, "label": label, "target": " " + true_rest}
        )
    return docs[:DOCS]


def task_config(name: str, data_file: Path) -> dict:
    config = yaml.safe_load((TASKS / f"{name}.yaml").read_text())
    config["dataset_kwargs"]["data_files"]["test"] = str(data_file)
    return config


@pytest.fixture
def offline(monkeypatch, tmp_path, live_server):
    """No hub, no network: datasets reads the local JSON file; caches stay in tmp_path."""
    for name, value in {
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "OPENAI_API_KEY": live_server.api_key,
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        monkeypatch.setenv(name, value)


def test_lm_eval_scores_the_live_server_with_its_own_metrics(live_server, offline, tmp_path):
    import lm_eval

    docs = corpus_docs()
    assert len(docs) >= 20
    data_file = tmp_path / "corpus_docs.jsonl"
    data_file.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    model_args = {
        "base_url": f"{live_server.url}/v1/completions",
        "model": "tinyllm",
        "tokenizer_backend": "remote",
        "auth_token": live_server.api_key,
        "max_length": 256,
        "batch_size": BATCH,
        "num_concurrent": 1,
        "max_retries": 1,
        "timeout": 60,
    }
    results = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=model_args,
        tasks=[task_config("tinyllm_continuation", data_file), task_config("tinyllm_recall", data_file)],
        bootstrap_iters=0,
        log_samples=False,
    )["results"]
    chance = 1 / (1 + DISTRACTORS)
    print(
        f"lm-eval on {len(docs)} corpus lines: continuation acc {results['tinyllm_continuation']['acc,none']:.3f} "
        f"(chance {chance:.2f}), recall exact_match {results['tinyllm_recall']['exact_match,none']:.3f}"
    )
    assert results["tinyllm_continuation"]["acc,none"] >= 0.9 > 3 * chance
    assert results["tinyllm_recall"]["exact_match,none"] >= 0.8
