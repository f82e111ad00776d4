"""`python -m bench --quick` runs the engine and HTTP benchmarks end to end and prints the tables it writes (not
timed: the numbers depend on the machine, so only their presence and shape are checked). The runtime benchmark's
measurements run in tests/runtime/test_runtime_bench.py, on the runtimes those tests already set up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NUMBER = r"[\d,]+(\.\d+)?"


def rows(table: str) -> dict[str, list[str]]:
    """metric name -> the other cells, for every data row of a markdown table."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| ")]
    return {row[0]: row[1:] for row in cells[1:]}


def test_quick_bench_prints_and_writes_both_tables(model_dir, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--only",
            "engine",
            "--only",
            "http",
            "--model-dir",
            str(model_dir),
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    engine, http = (tmp_path / "engine.md").read_text(), (tmp_path / "http.md").read_text()
    assert engine.strip() in out.stdout and http.strip() in out.stdout

    engine_rows = rows(engine)
    assert len(engine_rows) == 4
    for metric, (ours, theirs, ratio, _target, met) in engine_rows.items():
        assert re.fullmatch(f"{NUMBER} (ms|s|MB)", ours), metric
        assert re.fullmatch(f"{NUMBER} (ms|s|MB)", theirs), metric
        assert re.fullmatch(f"{NUMBER}×", ratio), metric
        assert met in ("yes", "**no**", "—"), metric
    assert "both engines produced 32 and 32 tokens" in engine
    assert "numpy 2." in engine

    http_rows = rows(http)
    assert http_rows["errors"][0] == "0 of 200"
    assert re.fullmatch(f"{NUMBER} req/s", http_rows["throughput"][0])
    assert re.fullmatch(f"{NUMBER} MB", http_rows["server peak RSS (VmHWM, all processes)"][0])
    assert "completion tokens per response: 16." in http
    scoring = http_rows["prompt scoring (16-prompt echo + logprobs request)"][0]
    assert re.fullmatch(f"{NUMBER} tokens/s \\({NUMBER} ms per request, p50\\)", scoring)
    assert "errors: 0." in http
