"""The child process the engine benchmark times: `python -m bench.worker ENGINE MODEL_DIR PROMPT WARM_RUNS`.

It imports only what its engine needs (the parent's imports must not leak into a cold start), generates
TOKENS tokens greedily and prints one JSON line per step, so the parent can timestamp each as it arrives:
  {"event": "result", "token_ids": [...]}        the first generation, the end of the cold start
  {"event": "done", "maxrss_kb": N, "warm_seconds": [...], "info": {...}}   (info: e.g. torch's threads)
maxrss_kb is read right after the first generation: the peak RSS of a process that served one generation.
Then WARMUP_RUNS untimed generations warm caches and allocators, and WARM_RUNS more are timed one by one
(their timings are in warm_seconds).

engine "numpy": core.generate.generate with ignore_eos (exactly TOKENS tokens, tokenizer included);
engine "transformers": GPT2LMHeadModel.generate(min_new_tokens=max_new_tokens=TOKENS, do_sample=False).
"""

from __future__ import annotations

import json
import resource
import sys
import time

TOKENS = 32
WARMUP_RUNS = 10


def numpy_generator(model_dir: str, prompt: str):
    from core.artifacts import load
    from core.generate import SamplingParams, generate

    loaded = load(model_dir)
    params = SamplingParams(max_new_tokens=TOKENS, temperature=0, ignore_eos=True)
    return (lambda: generate(loaded.model, loaded.tokenizer, prompt, params).token_ids), {}


def transformers_generator(model_dir: str, prompt: str):
    import torch
    from tokenizers import Tokenizer

    from functions.devtools.reference import ReferenceEngine

    engine = ReferenceEngine(model_dir)
    ids = torch.tensor([Tokenizer.from_file(f"{model_dir}/tokenizer.json").encode(prompt).ids])
    kwargs = dict(
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        min_new_tokens=TOKENS,
        max_new_tokens=TOKENS,
        pad_token_id=engine.cfg.eos_token_id,
    )

    def run() -> list[int]:
        with torch.no_grad():
            out = engine.model.generate(ids, **kwargs)  # pyright: ignore[reportAttributeAccessIssue] (core/reference.py)
            return out[0, ids.shape[1] :].tolist()

    return run, {"torch_threads": torch.get_num_threads()}


GENERATORS = {"numpy": numpy_generator, "transformers": transformers_generator}


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def main(argv: list[str]) -> int:
    engine, model_dir, prompt, warm_runs = argv[0], argv[1], argv[2], int(argv[3])
    run, info = GENERATORS[engine](model_dir, prompt)
    emit(event="result", token_ids=run())
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    for _ in range(WARMUP_RUNS):
        run()
    warm = []
    for _ in range(warm_runs):
        start = time.perf_counter()
        run()
        warm.append(time.perf_counter() - start)
    emit(event="done", maxrss_kb=maxrss_kb, warm_seconds=warm, info=info)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
