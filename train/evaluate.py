"""Show that the model learned its corpus: greedy continuation of each training line's first words."""

from __future__ import annotations

from dataclasses import dataclass

from core.artifacts import LoadedModel
from core.generate import SamplingParams, generate

PROMPT_WORDS = 3
MAX_RECALL_LINES = 200  # recall is a memorisation check; on a large corpus its first lines are enough


@dataclass(frozen=True)
class LineRecall:
    lines: int
    reproduced: int

    @property
    def share(self) -> float:
        return self.reproduced / self.lines if self.lines else 0.0


def line_recall(loaded: LoadedModel, lines: list[str], max_new_tokens: int = 64) -> LineRecall:
    """How many lines (of more than PROMPT_WORDS words) the model completes exactly from their first words."""
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    candidates = [line for line in lines if len(line.split()) > PROMPT_WORDS]
    reproduced = 0
    for line in candidates:
        prompt = " ".join(line.split()[:PROMPT_WORDS])
        completion = generate(loaded.model, loaded.tokenizer, prompt, params)
        reproduced += (prompt + completion.text).strip() == line
    return LineRecall(len(candidates), reproduced)
