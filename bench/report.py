"""What every benchmark shares: percentiles, targets checked against measurements, markdown tables, and the
notes on the machine printed under each table (numbers mean little without them)."""

from __future__ import annotations

import math
import operator
import os
import platform
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
COMPARISONS = {"<=": (operator.le, "≤"), ">=": (operator.ge, "≥"), "==": (operator.eq, "=")}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q% of the values at or below it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is outside (0, 100]")
    ordered = sorted(values)
    return ordered[math.ceil(q / 100 * len(ordered)) - 1]


@dataclass(frozen=True)
class Target:
    """A target docs/benchmarks.md states, e.g. Target("<=", 5, "ms"); `met` checks a measured value against it."""

    op: str
    bound: float
    unit: str = ""

    def met(self, value: float) -> bool:
        return COMPARISONS[self.op][0](value, self.bound)

    def __str__(self) -> str:
        return f"{COMPARISONS[self.op][1]} {self.bound:g}{self.unit}"


def fmt(value: float) -> str:
    """Three significant figures (run-to-run noise is larger than that), whole numbers from 100 up."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def verdict(*checks: bool) -> str:
    return "yes" if all(checks) else "**no**"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def blas_description() -> str:
    """The BLAS numpy uses at run time (threadpoolctl), else the one it was built with (numpy.show_config)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info  # optional (dev has it through lm-eval's scikit-learn)
    except ImportError:
        build = np.show_config(mode="dicts")["Build Dependencies"].get("blas", {})
        return f"{build.get('name', '?')} {build.get('version', '')} (as built; threadpoolctl not installed)"
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return (
        "; ".join(
            f"{p['internal_api']} {p['version']} ({p['num_threads']} threads, {p.get('architecture', '?')})"
            for p in pools
        )
        or "none loaded"
    )


def load_average() -> str:
    """1, 5 and 15 minute load averages: other work on this small machine shows up in every number."""
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def environment_notes() -> list[str]:
    """Facts that explain the numbers; OPENBLAS_* is reported as found, never changed."""
    import numpy as np

    openblas = {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS", "OMP_"))}
    return [
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average (1/5/15 min) when the run started {load_average()}",
        f"numpy {np.__version__}, BLAS: {blas_description()}",
        "BLAS environment: " + (", ".join(f"{k}={v}" for k, v in openblas.items()) or "no OPENBLAS_*/OMP_* set"),
    ]


def write(name: str, text: str, out_dir: Path = RESULTS_DIR) -> Path:
    """Write one result table to <out_dir>/<name>.md and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.md"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure to `path` as PNG, without the version stamp (so a rerun changes only the data),
    and close it."""
    import matplotlib.pyplot as plt  # only the benchmarks that draw need matplotlib

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
