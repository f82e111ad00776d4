"""Every bad input to `python -m train` ends in one clear error (exit 2, the file, the line, the fix), never a
traceback, and never a half-written model: the previous model stays as it was and no staging is left."""

from __future__ import annotations

import subprocess
import sys

import pytest

from train.__main__ import main as train_main
from train.config import REPO_ROOT
from train.corpus import MAX_LINE_BYTES

QUICK = [
    "--quiet",
    "--steps",
    "2",
    "--n-embd",
    "32",
    "--n-head",
    "2",
    "--vocab-size",
    "300",
    "--block-size",
    "16",
    "--batch-size",
    "2",
    "--eval-windows",
    "2",
]
LINES = "\n".join(f"line number {i} of a small corpus, with enough words to fill a window" for i in range(60))


def corpus(tmp_path, content: bytes):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    return path


BAD_CORPORA = {
    "empty": (b"", "no non-empty line"),
    "blank lines only": (b"\n  \n\t\n", "no non-empty line"),
    "binary": (b"\x7fELF\x02\x01\x01\x00\x00\x00" * 50, "NUL byte"),
    "not UTF-8": ("caf\u00e9 cr\u00e8me\n".encode("latin-1") * 40, "line 1 is not valid UTF-8"),
    "smaller than one window": (b"hello world\n", "fewer than one window"),
}


@pytest.fixture
def previous_model(tmp_path):
    """An existing model directory that a failed run must leave untouched."""
    out = tmp_path / "out" / "model"
    out.mkdir(parents=True)
    (out / "marker").write_text("the previous model")
    return out


def assert_untouched(out) -> None:
    assert [p.name for p in out.iterdir()] == ["marker"]
    assert [p.name for p in out.parent.iterdir()] == ["model"]  # no staging or token scratch left beside it


@pytest.mark.parametrize("case", BAD_CORPORA, ids=list(BAD_CORPORA))
def test_a_bad_corpus_is_one_clear_error(case, tmp_path, previous_model, capsys):
    content, message = BAD_CORPORA[case]
    path = corpus(tmp_path, content)
    assert train_main([*QUICK, "--corpus", str(path), "--out", str(previous_model)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert_untouched(previous_model)


def test_one_100_mb_line_without_a_newline_is_refused_without_reading_it_whole(tmp_path, previous_model, capsys):
    path = tmp_path / "one-line.txt"
    with path.open("wb") as f:
        for _ in range(100):
            f.write(b"word " * (1024 * 1024 // 5))
    assert train_main([*QUICK, "--corpus", str(path), "--out", str(previous_model)]) == 2
    assert f"line 1 is longer than {MAX_LINE_BYTES:,} bytes" in capsys.readouterr().err
    assert_untouched(previous_model)


def test_a_missing_corpus_is_one_clear_error(tmp_path, previous_model, capsys):
    assert train_main([*QUICK, "--corpus", str(tmp_path / "nope.txt"), "--out", str(previous_model)]) == 2
    assert "cannot read the corpus" in capsys.readouterr().err
    assert_untouched(previous_model)


def test_no_validation_document_is_one_clear_error(tmp_path, previous_model, capsys):
    path = corpus(tmp_path, LINES.encode())
    assert train_main([*QUICK, "--val-fraction", "0.0001", "--corpus", str(path), "--out", str(previous_model)]) == 2
    assert "--val-fraction 0 to train without validation" in capsys.readouterr().err
    assert_untouched(previous_model)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--time-budget", "0"], "--time-budget must be more than 0 seconds"),
        (["--time-budget", "-5"], "--time-budget must be more than 0 seconds"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--n-embd", "30", "--n-head", "4"], "must be a multiple of --n-head"),
        (["--block-size", "512"], "must not exceed --n-positions"),
        (["--vocab-size", "100"], "--vocab-size must be between 257"),
        (["--val-fraction", "0.9"], "--val-fraction must be between 0 and 0.5"),
        (["--seed", "-1"], "--seed must be from 0 to"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number, 0 or more"),
        (["--learning-rate", "inf"], "--learning-rate must be a finite number more than 0"),
    ],
)
def test_a_bad_setting_is_one_clear_error(flags, message, previous_model, capsys):
    assert train_main([*QUICK, *flags, "--out", str(previous_model)]) == 2
    assert message in capsys.readouterr().err
    assert_untouched(previous_model)


def test_cuda_without_a_gpu_is_one_clear_error(previous_model, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert train_main([*QUICK, "--device", "cuda", "--out", str(previous_model)]) == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err
    assert_untouched(previous_model)


def test_the_command_line_prints_the_error_not_a_traceback(tmp_path):
    # A setting error, found before torch is imported: the in-process tests above cover the corpus errors.
    command = [sys.executable, "-m", "train", *QUICK, "--time-budget", "0", "--out", str(tmp_path / "m")]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == (
        "python -m train: error: --time-budget must be more than 0 seconds (omit it for no time limit), not 0\n"
    )
    assert not (tmp_path / "m").exists()
