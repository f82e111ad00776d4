"""What a run leaves beside the model (never inside it, so none of it is baked into a package): the loss-curve
picture and a JSON report with its timings."""

from __future__ import annotations

import json
import os
from pathlib import Path


def report_dir_for(model_dir: Path) -> Path:
    """artifacts/model -> artifacts/model-report."""
    return model_dir.parent / f"{model_dir.name}-report"


def write_loss_plot(
    train_curve: list[tuple[int, float]], val_curve: list[tuple[int, float]], path: Path, title: str
) -> Path:
    """Train and validation loss against tokens seen, as a PNG at `path` (written whole, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server or in CI
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train_curve:
        ax.plot(*zip(*train_curve, strict=True), lw=0.8, alpha=0.7, label="train loss (per step)")
    if val_curve:
        ax.plot(*zip(*val_curve, strict=True), marker="o", ms=3, label="validation loss")
    ax.set(xlabel="tokens seen", ylabel="cross-entropy (nats per token)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.png")
    fig.savefig(partial, metadata={"Software": None})  # no version stamp: same curve, same bytes
    plt.close(fig)
    os.replace(partial, path)
    return path


def write_run_json(summary: dict, path: Path) -> Path:
    """What the run measured that the manifest must not hold (times vary from run to run): seconds,
    tokens/s, and the loss curves, as JSON beside the picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path
