"""The adapters' HTTP contract (tests/adapters/test_contract.py), run on the packages as their clouds run them.

Every contract test that needs only a client speaking HTTP (and the loaded model, to compare texts) runs here on
each runtime of conftest.KINDS; those that reach into the adapter's in-process app (API key switching, capturing
its log line) stay with the adapter tests.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "adapters"))
import test_contract

OVER_HTTP = {"client", "loaded"}


def runs_over_http(test) -> bool:
    parametrized = {
        name.strip()
        for mark in getattr(test, "pytestmark", [])
        if mark.name == "parametrize"
        for name in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])
    }
    return set(inspect.signature(test).parameters) - parametrized <= OVER_HTTP


for _name, _test in vars(test_contract).copy().items():
    if _name.startswith("test_") and callable(_test) and runs_over_http(_test):
        globals()[_name] = _test
