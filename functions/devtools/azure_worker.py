"""What the Azure Functions Python worker hands a v2-model app, as the developer tools model it: the one top-level
FunctionRegister, found by its type, and a context per invocation.

The one copy of both for `tinyllm invoke azure` and the adapter tests (local.py), the host's view of a package
(azure_host.py) and the bundle smoke test: the last two run under `python -I -S` with only the package on
sys.path and load this file by its path, so that the `azure.functions` it imports is the package's own copy.
"""

from __future__ import annotations

import uuid
from types import ModuleType
from typing import NoReturn

import azure.functions as func


def function_register(module: ModuleType) -> func.FunctionRegister:
    """The module's one top-level FunctionRegister, whatever its name, as the worker finds it
    (github.com/Azure/azure-functions-python-worker, azure_functions_worker/loader.py index_function_app:
    "if isinstance(getattr(imported_module, i, None), FunctionRegister)", and exactly one is allowed)."""
    registers = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if len(registers) != 1:
        raise LookupError(f"{module.__name__} defines {len(registers)} top-level function apps; the worker needs one")
    return registers[0]


class InvocationContext(func.Context):
    """What the worker passes as `context`: read-only properties with a fresh invocation id per instance. The
    host's trace, retry and thread-local contexts are not modelled: reading one is an AttributeError naming it."""

    def __init__(self, function_name: str, function_directory: str):
        self._invocation_id = str(uuid.uuid4())
        self._function_name, self._function_directory = function_name, function_directory

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> NoReturn:
        raise AttributeError("trace_context: only the Functions host has one")

    @property
    def retry_context(self) -> NoReturn:
        raise AttributeError("retry_context: only the Functions host has one")

    @property
    def thread_local_storage(self) -> NoReturn:
        raise AttributeError("thread_local_storage: only the Functions host has one")
