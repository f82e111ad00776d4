"""schemathesis against the live server's /openapi.json: every response matches the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def operations(live_server):
    schema = schemathesis.openapi.from_url(live_server.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_schemathesis_exercises_every_api_route(operations):
    # schemathesis leaves out the operation that serves the document itself (/openapi.json)
    assert {(op.method.upper(), op.path) for op in operations} == {
        ("POST", "/v1/completions"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
        ("GET", "/healthz"),
        ("GET", "/v1/models/{model_id}"),
        ("POST", "/tokenize"),
        ("POST", "/detokenize"),
        ("GET", "/tokenizer_info"),
    }


def test_generated_requests_get_documented_responses(operations, live_server):
    headers = {"Authorization": f"Bearer {live_server.api_key}"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case):
            case.call_and_validate(base_url=live_server.url, headers=headers, checks=CHECKS)

        conforms()
