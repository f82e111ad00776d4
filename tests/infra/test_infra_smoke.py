"""infra.smoke sends each cloud's credential the way that cloud expects (no network: headers only)."""

from __future__ import annotations

import pytest
from botocore.credentials import Credentials

from infra.smoke import SmokeError, auth_headers

AWS_URL = "https://abc123.lambda-url.eu-west-1.on.aws/v1/models"


def test_aws_private_requests_are_sigv4_signed_for_lambda_in_the_url_region():
    headers = auth_headers("aws", {"public": False}, "GET", AWS_URL, None, None,
                           aws_credentials=Credentials("AKIDEXAMPLE", "secret"))
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/lambda/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


def test_gcp_id_token_moves_to_x_serverless_authorization_when_an_api_key_is_sent():
    plain = auth_headers("gcp", {"public": False}, "GET", "https://x", None, None, credential="tok")
    keyed = auth_headers("gcp", {"public": False}, "GET", "https://x", None, "k", credential="tok")
    assert plain == {"Authorization": "Bearer tok"}
    assert keyed == {"Authorization": "Bearer k", "X-Serverless-Authorization": "Bearer tok"}


def test_azure_function_key_goes_in_x_functions_key_and_public_stacks_send_only_the_api_key():
    assert auth_headers("azure", {"public": False}, "GET", "https://x", None, None, credential="fk") == {
        "x-functions-key": "fk"}
    assert auth_headers("azure", {"public": True}, "POST", "https://x", b"{}", "k") == {
        "Content-Type": "application/json", "Authorization": "Bearer k"}


def test_a_private_stack_without_its_credential_is_refused_by_name_not_sent_as_bearer_none():
    for cloud in ("gcp", "azure"):
        with pytest.raises(SmokeError, match=f"a private {cloud} stack needs a credential"):
            auth_headers(cloud, {"public": False}, "GET", "https://x", None, None, credential=None)


def test_aws_signing_refuses_a_url_that_is_not_a_lambda_function_url():
    with pytest.raises(SmokeError, match="not a Lambda function URL"):
        auth_headers("aws", {"public": False}, "GET", "https://example.com/v1/models", None, None,
                     aws_credentials=Credentials("AKIDEXAMPLE", "secret"))
