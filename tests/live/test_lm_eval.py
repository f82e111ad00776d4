"""lm-evaluation-harness, offline, against the live server: `local-completions` with `tokenizer_backend=remote`.

The harness does everything a user's evaluation of a deployed function would do with nothing but its URL:
it reads /tokenizer_info, tokenizes through /tokenize and /detokenize, sends batches of 16 token-id prompts
with `echo` + `logprobs` for loglikelihood, and greedy generations with stop strings. The tasks are defined
in tests/live/lm_eval_tasks/ over the training corpus; the harness, not this test, computes the metrics.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from core.generate import log_softmax
from train.config import DEFAULT_CORPUS, TrainConfig
from train.corpus import split_documents

TASKS = Path(__file__).parent / "lm_eval_tasks"
CONTEXT_WORDS = 3
DISTRACTORS = 3  # chance is 1 / (1 + DISTRACTORS)
DOCS = 32
BATCH = 16
ENDINGS = (".", "!")


def training_lines() -> list[str]:
    """The lines the served model learned (the held-out ones were never learned)."""
    cfg = TrainConfig()  # the served model's: the live server runs the default training's model
    return list(split_documents(DEFAULT_CORPUS, cfg.val_fraction, cfg.seed, False))


def corpus_docs(seed: int = 0) -> list[dict]:
    """Training lines with at least four words after the first three: context, the true rest, three shuffles
    of it."""
    rng = random.Random(seed)
    docs = []
    for line in training_lines():
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


def line_end_docs(seed: int = 0) -> list[dict]:
    """Training lines ending in "." or "!" without that last character, the two endings as choices in a random
    order: the right one ends the document."""
    rng = random.Random(seed)
    docs = []
    for line in training_lines():
        if line[-1] not in ENDINGS:
            continue
        choices = list(ENDINGS) if rng.random() < 0.5 else list(reversed(ENDINGS))
        docs.append({"context": line[:-1], "choices": choices, "label": choices.index(line[-1])})
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


def model_args(live_server) -> dict:
    return {
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


def write_docs(docs: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
    return path


def test_lm_eval_scores_the_live_server_with_its_own_metrics(live_server, offline, tmp_path):
    import lm_eval

    docs = corpus_docs()
    assert len(docs) >= 20
    data_file = write_docs(docs, tmp_path / "corpus_docs.jsonl")
    results = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=model_args(live_server),
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


def test_lm_eval_multiple_choice_whose_right_answers_end_documents(live_server, offline, tmp_path, loaded):
    """Each choice is one token followed by end-of-text: lm-eval's score of it is the entry before the last, so
    it is right only when the end-of-text token has an entry of its own (without it, both choices score 0 and
    the first wins). Every loglikelihood lm-eval computes equals the engine's direct scoring of the same tokens."""
    import lm_eval

    docs = line_end_docs()
    assert len(docs) == DOCS and {doc["label"] for doc in docs} == {0, 1}
    data_file = write_docs(docs, tmp_path / "line_end_docs.jsonl")
    evaluated = lm_eval.simple_evaluate(
        model="local-completions",
        model_args=model_args(live_server),
        tasks=[task_config("tinyllm_line_end", data_file)],
        bootstrap_iters=0,
        log_samples=True,
    )
    accuracy = evaluated["results"]["tinyllm_line_end"]["acc,none"]
    print(f"lm-eval on {len(docs)} line endings: acc {accuracy:.3f} (chance 0.50)")
    assert accuracy >= 0.9
    tokenizer, eos = loaded.tokenizer, loaded.model.cfg.eos_token_id
    for sample in evaluated["samples"]["tinyllm_line_end"]:
        context = sample["doc"]["context"]
        for choice, ((loglikelihood, _),) in zip(sample["doc"]["choices"], sample["resps"], strict=True):
            ids, ctxlen = tokenizer.encode(context + choice).ids, len(tokenizer.encode(context).ids)
            rows = loaded.model.session().feed_every(ids)
            direct = sum(float(log_softmax(rows[i - 1])[ids[i]]) for i in range(ctxlen, len(ids)))
            assert loglikelihood == pytest.approx(direct, abs=1e-4)
            assert int(np.argmax(rows[-1])) == eos  # the case under test: the next token is end-of-text
