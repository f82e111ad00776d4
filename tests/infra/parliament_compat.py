"""Import parliament on setuptools >= 81, which no longer ships `pkg_resources`.

parliament 1.6.4 only calls `pkg_resources.resource_filename(__name__, <data file>)`; when `pkg_resources` is
missing we provide exactly that function, backed by importlib.resources, and nothing else.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
import types


def _resource_filename(package: str, resource: str) -> str:
    return str(importlib.resources.files(package) / resource)


if importlib.util.find_spec("pkg_resources") is None:
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = _resource_filename
    sys.modules["pkg_resources"] = shim

import parliament  # noqa: E402  (must follow the shim)

analyze_policy_string = parliament.analyze_policy_string
