"""`tinyllm invoke azure` passes the adapter a real azure.functions.Context, as the Functions host would."""

from __future__ import annotations

import uuid

import azure.functions as func
import pytest

from functions.devtools.local import ADAPTERS, azure_context, azure_user_function, load_adapter


def test_each_invocation_gets_a_context_with_its_own_id():
    first, second = azure_context(), azure_context()
    assert isinstance(first, func.Context)
    assert uuid.UUID(first.invocation_id) != uuid.UUID(second.invocation_id)
    assert first.invocation_id == first.invocation_id  # stable for one invocation
    assert (first.function_name, first.function_directory) == ("serve", str(ADAPTERS["azure"].parent))


@pytest.mark.parametrize("name", ["trace_context", "retry_context", "thread_local_storage"])
def test_what_only_the_host_has_is_an_error_naming_it_not_a_silent_none(name):
    with pytest.raises(AttributeError, match=f"^{name}: only the Functions host has one$"):
        getattr(azure_context(), name)


def test_the_user_function_is_looked_up_once_per_adapter_module():
    adapter = load_adapter("azure")
    assert azure_user_function(adapter) is azure_user_function(adapter)
    assert azure_user_function(adapter).__name__ == "serve"
