"""Which CPython 3.12 runs the packages: TINYLLM_PY312 > python3.12 on PATH > pyenv's versions/3.12.*."""

from __future__ import annotations

import pytest

from functions.devtools import runtimes


def fake_pyenv(root, version: str, target) -> None:
    bin_dir = root / "versions" / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.12").symlink_to(target)


def test_the_setting_wins_and_must_be_a_3_12(python312, monkeypatch, tmp_path):
    monkeypatch.setenv(runtimes.PY312_ENV, str(python312))
    assert runtimes.find_python312() == python312
    monkeypatch.setenv(runtimes.PY312_ENV, str(tmp_path / "python3.12"))  # does not exist: no falling back
    with pytest.raises(runtimes.RuntimeUnavailable, match=r"is not a CPython 3\.12 interpreter"):
        runtimes.find_python312()


def test_pyenv_is_searched_when_path_has_no_working_python3_12(python312, monkeypatch, tmp_path):
    monkeypatch.delenv(runtimes.PY312_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    fake_pyenv(tmp_path / "pyenv", "3.12.9", python312)
    assert runtimes.find_python312() == tmp_path / "pyenv" / "versions" / "3.12.9" / "bin" / "python3.12"


def test_no_3_12_anywhere_is_an_error_that_says_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.delenv(runtimes.PY312_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    with pytest.raises(runtimes.RuntimeUnavailable, match=rf"set {runtimes.PY312_ENV}.*looked in {tmp_path}"):
        runtimes.find_python312()
