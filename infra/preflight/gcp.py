"""GCP preflight with google-auth and the Service Usage REST API: whose credentials, which project, and whether
the program's APIs (infra.gcp.REQUIRED_APIS) are enabled in it.

Credentials are looked for where the Pulumi GCP provider looks, without the metadata server: GOOGLE_CREDENTIALS
(the key's JSON), GOOGLE_APPLICATION_CREDENTIALS (a file), then gcloud's application-default credentials file.
The project: `gcp:project`, else GOOGLE_PROJECT, GOOGLE_CLOUD_PROJECT, GCLOUD_PROJECT or CLOUDSDK_CORE_PROJECT
(pulumi.com/registry/packages/gcp/installation-configuration), else the credentials' own project.
API states: GET https://serviceusage.googleapis.com/v1/projects/PROJECT/services:batchGet?names=projects/PROJECT/
services/API (at most 30 names; needs serviceusage.services.get), answering {"services": [{"name": ...,
"state": "ENABLED" | "DISABLED"}]} (cloud.google.com/service-usage/docs/reference/rest/v1/services/batchGet), sent
through google-auth's AuthorizedSession so the credentials' own headers (the quota project) go with it.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from infra.config import StackConfig
from infra.gcp import REQUIRED_APIS
from infra.preflight import Report, one_line

SERVICE_USAGE = "https://serviceusage.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
PROJECT_VARIABLES = ("GOOGLE_PROJECT", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
LOGIN_FIX = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file"

if TYPE_CHECKING:  # google-auth is imported when a check runs, not when the package is
    from google.auth.credentials import Credentials


def credentials_from_info(info: dict) -> tuple[Credentials, str | None]:
    """(credentials, their project) for the credential types a deployer uses, each with its own loader: google-auth
    deprecates its generic loader because it accepts any type unvalidated."""
    kind = info.get("type")
    if kind == "service_account":  # a key file
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES), info.get("project_id")
    if kind == "authorized_user":  # `gcloud auth application-default login`; user credentials take no scopes
        from google.oauth2 import credentials

        return credentials.Credentials.from_authorized_user_info(info), None
    if kind == "external_account":  # Workload Identity Federation (CI's google-github-actions/auth)
        from google.auth import identity_pool

        return identity_pool.Credentials.from_info(info, scopes=SCOPES), None
    raise ValueError(
        f"credentials of type {kind!r} are not supported here (service_account, authorized_user, external_account)"
    )


def load_credentials(environ=os.environ) -> tuple[Credentials, str | None, str] | None:
    """(credentials, their project, where they came from), or None when there are none."""
    from google.auth import _cloud_sdk

    if environ.get("GOOGLE_CREDENTIALS"):
        return (*credentials_from_info(json.loads(environ["GOOGLE_CREDENTIALS"])), "GOOGLE_CREDENTIALS")
    path = environ.get("GOOGLE_APPLICATION_CREDENTIALS") or _cloud_sdk.get_application_default_credentials_path()
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        return (*credentials_from_info(json.load(file)), path)


def identity_of(credentials) -> str:
    email = getattr(credentials, "service_account_email", None)
    if email:
        return f"service account {email}"
    account = getattr(credentials, "account", None)
    return f"user {account}" if account else f"{type(credentials).__module__.rsplit('.', 1)[-1]} credentials"


def check(
    stack: StackConfig,
    values: dict[str, str],
    report: Report,
    *,
    service_usage: str = SERVICE_USAGE,
    environ=os.environ,
) -> None:
    import google.auth.exceptions
    import google.auth.transport.requests
    import requests

    try:
        found = load_credentials(environ)
    except (google.auth.exceptions.GoogleAuthError, ValueError, OSError) as error:
        report.problem(f"the GCP credentials cannot be read: {one_line(error)}", LOGIN_FIX)
        return
    if found is None:
        report.problem(
            "no GCP credentials found (GOOGLE_CREDENTIALS, GOOGLE_APPLICATION_CREDENTIALS, gcloud's "
            "application-default credentials; the metadata server is not probed)",
            LOGIN_FIX,
        )
        return
    credentials, credentials_project, source = found
    try:
        if not credentials.valid:  # a stored, unexpired token (user credentials may carry one) is used as it is
            credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as error:
        report.problem(f"the GCP credentials from {source} were refused: {one_line(error)}", LOGIN_FIX)
        return
    report.good(f"GCP identity: {identity_of(credentials)} (from {source})")

    project = (
        values.get("gcp:project")
        or next((environ[name] for name in PROJECT_VARIABLES if environ.get(name)), None)
        or credentials_project
    )
    if not project:
        report.problem(
            "no GCP project is set for the stack",
            f"pulumi config set gcp:project <project-id> --stack <stack> (region {stack.region})",
        )
        return
    names = [f"projects/{project}/services/{api}" for api in REQUIRED_APIS]
    # Through google-auth's AuthorizedSession, not a bare Bearer header: the credentials add their own headers to
    # each request (`before_request`), among them the quota project of user credentials (`x-goog-user-project`,
    # set by `gcloud auth application-default set-quota-project`), without which Service Usage can refuse a user's
    # call. Source: googleapis/google-auth-library-python google/auth/transport/requests.py (AuthorizedSession
    # .request calls credentials.before_request) and google/auth/credentials.py (apply: "x-goog-user-project").
    session = google.auth.transport.requests.AuthorizedSession(credentials)
    try:
        response = session.get(
            f"{service_usage}/v1/projects/{project}/services:batchGet", params={"names": names}, timeout=30
        )
    except requests.RequestException as error:
        report.problem(f"the Service Usage API could not be reached: {one_line(error)}", "check the network")
        return
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        report.problem(
            f"cannot read the API states of project {project} (HTTP {response.status_code}: {one_line(message, 150)})",
            "check the project id and that you have serviceusage.services.get on it "
            "(e.g. roles/serviceusage.serviceUsageViewer)",
        )
        return
    enabled = {
        service["name"].rsplit("/", 1)[-1]
        for service in response.json().get("services", [])
        if service.get("state") == "ENABLED"
    }
    missing = [api for api in REQUIRED_APIS if api not in enabled]
    if missing:
        report.problem(
            f"GCP project {project}: APIs not enabled: {', '.join(missing)}",
            f"gcloud services enable {' '.join(missing)} --project {project}",
        )
    else:
        report.good(f"GCP project {project}: all {len(REQUIRED_APIS)} required APIs enabled")
