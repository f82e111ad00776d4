"""Provider outputs the SDKs type as optional are checked where the program reads them (infra.config.provided)."""

from __future__ import annotations

import pytest

from infra.config import provided


def test_a_present_output_is_passed_through_unchanged():
    identity = object()
    assert provided(identity, "app.identity") is identity
    assert provided("", "function.service_config.service") == ""  # only None counts as missing


def test_a_missing_output_is_an_error_naming_it_not_an_attribute_error_on_none():
    with pytest.raises(ValueError, match=r"^app\.identity is missing from the provider's outputs$"):
        provided(None, "app.identity")
