"""tinyllm's least-privilege and safety rules as plain functions of (resource type, inputs).

Used twice: by the Pulumi policy pack (`pulumi up --policy-pack infra/policy`) on the real resources, and by
tests/infra on the resources the program registers under mocks. `grants()` turns a resource into the IAM grants
it creates; `ALLOWED_GRANTS` is the explicit allow-list per cloud; `violations()` applies every rule.
Props use the engine's camelCase input names. `allow_public` is the one switch that permits public access
(the stack's `tinyllm:public`; for the policy pack, its `allowPublic` config); `allow_uncapped` the one that permits
a Lambda without reserved concurrency (`tinyllm:maxInstances: 0`; the pack's `allowUncapped`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers", "*"}
PRIMITIVE_GCP_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# Azure built-in role definition ids (the same in every tenant).
AZURE_ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# A project-level grant conditioned to the Google-managed source bucket of Cloud Run functions and its objects
# (infra/gcp.py gcf_sources_condition): scoped to that one bucket, not the project.
GCF_SOURCES_CONDITION = re.compile(
    r'resource\.name == "projects/_/buckets/(gcf-v2-sources-[0-9]+-[a-z0-9-]+)" \|\| '
    r'resource\.name\.startsWith\("projects/_/buckets/\1/objects/"\)')


@dataclass(frozen=True, order=True)
class Grant:
    """One permission given to one principal on one scope. `scope_kind` names the kind of resource."""

    cloud: str
    permission: str
    scope_kind: str
    principal: str


# Every grant the program may create, per cloud: (permission, scope kind). Anything else is a violation.
ALLOWED_GRANTS = {
    "aws": {
        ("logs:CreateLogStream", "own-log-group"),
        ("logs:PutLogEvents", "own-log-group"),
        ("lambda:InvokeFunctionUrl", "lambda-function"),
        ("lambda:InvokeFunction", "lambda-function-via-url"),
        ("sts:AssumeRole", "lambda-service-same-account"),
    },
    "gcp": {
        ("roles/logging.logWriter", "project"),  # Cloud Logging has no narrower scope for writing entries
        ("roles/artifactregistry.writer", "artifact-registry-repository"),
        ("roles/storage.objectViewer", "storage-bucket"),
        ("roles/storage.objectViewer", "gcf-v2-sources-bucket"),  # the build reads its source there
        ("roles/run.invoker", "cloud-run-service"),
    },
    "azure": {
        ("Storage Blob Data Owner", "storage-account"),
        ("Monitoring Metrics Publisher", "application-insights-component"),  # identity-based log ingestion
    },
}

GCP_IAM_SCOPES = {
    "gcp:projects/iAMMember:IAMMember": "project",
    "gcp:projects/iAMBinding:IAMBinding": "project",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "artifact-registry-repository",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "storage-bucket",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": "cloud-run-service",
    "gcp:cloudfunctionsv2/functionIamMember:FunctionIamMember": "cloud-function",
    "gcp:serviceaccount/iAMMember:IAMMember": "service-account",
}


def _statements(document: str | dict) -> list[dict]:
    policy = json.loads(document) if isinstance(document, str) else document
    statements = policy.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _aws_log_scope(resource: str) -> str:
    return "own-log-group" if resource.startswith("arn:aws:logs:") and ":log-group:/aws/lambda/" in resource \
        and resource.endswith(":*") and "*" not in resource[:-2] else f"other:{resource}"


def grants(resource_type: str, props: dict) -> list[Grant]:
    """The IAM grants a resource creates (empty for resources that grant nothing)."""
    if resource_type == "aws:iam/rolePolicy:RolePolicy":
        return [
            Grant("aws", action, _aws_log_scope(resource), str(props.get("role")))
            for statement in _statements(props["policy"])
            for action in _as_list(statement.get("Action", statement.get("NotAction", "NotAction")))
            for resource in _as_list(statement.get("Resource", statement.get("NotResource", "NotResource")))
        ]
    if resource_type == "aws:iam/role:Role":
        found = []
        for statement in _statements(props["assumeRolePolicy"]):
            principal = statement.get("Principal", {})
            source_account = statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
            kind = ("lambda-service-same-account"
                    if principal == {"Service": "lambda.amazonaws.com"} and source_account else "other")
            found += [Grant("aws", action, kind, json.dumps(principal)) for action in _as_list(statement["Action"])]
        found += [Grant("aws", f"managed:{arn}", "role", "role") for arn in props.get("managedPolicyArns") or []]
        return found
    if resource_type == "aws:iam/rolePolicyAttachment:RolePolicyAttachment":
        return [Grant("aws", f"managed:{props.get('policyArn')}", "role", str(props.get("role")))]
    if resource_type == "aws:lambda/permission:Permission":
        kind = "lambda-function-via-url" if props.get("invokedViaFunctionUrl") else "lambda-function"
        return [Grant("aws", props["action"], kind, props["principal"])]
    if resource_type in GCP_IAM_SCOPES or (resource_type.startswith("gcp:") and "iam" in resource_type.lower()):
        scope = GCP_IAM_SCOPES.get(resource_type, f"other:{resource_type}")
        condition = (props.get("condition") or {}).get("expression", "")
        if scope == "project" and GCF_SOURCES_CONDITION.fullmatch(condition):
            scope = "gcf-v2-sources-bucket"
        members = props.get("members") or [props.get("member")]
        return [Grant("gcp", props.get("role", "policy"), scope, str(member)) for member in members]
    if resource_type == "azure-native:authorization:RoleAssignment":
        role_id = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
        return [Grant("azure", AZURE_ROLE_NAMES.get(role_id, role_id), _azure_scope_kind(str(props.get("scope"))),
                      str(props.get("principalId")))]
    return []


def _azure_scope_kind(scope: str) -> str:
    """Name the kind of an ARM scope; subscription and resource-group scopes are named as such."""
    parts = scope.strip("/").split("/")
    if "providers" not in parts:
        return "resource-group" if "resourceGroups" in parts else "subscription"
    provider_type = "/".join(parts[parts.index("providers") + 1:][:2])
    return {"Microsoft.Storage/storageAccounts": "storage-account",
            "Microsoft.Insights/components": "application-insights-component"}.get(provider_type, f"other:{provider_type}")


def grant_violations(cloud: str, grant: Grant, allow_public: bool) -> list[str]:
    problems = []
    if (grant.permission, grant.scope_kind) not in ALLOWED_GRANTS[cloud]:
        problems.append(f"grant not on the {cloud} allow-list: {grant.permission} on {grant.scope_kind}")
    if "*" in grant.permission or grant.permission in PRIMITIVE_GCP_ROLES:
        problems.append(f"wildcard or primitive permission: {grant.permission}")
    if grant.principal in PUBLIC_MEMBERS and not allow_public:
        problems.append(f"public principal {grant.principal} without public: true")
    return problems


def setting_violations(resource_type: str, props: dict, allow_public: bool, allow_uncapped: bool = False) -> list[str]:
    """Non-IAM safety settings: private storage, HTTPS, cost caps, auth on the endpoint."""
    problems = []

    def require(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    if resource_type == "gcp:storage/bucket:Bucket":
        require(props.get("uniformBucketLevelAccess") is True, "bucket must use uniform bucket-level access")
        require(props.get("publicAccessPrevention") == "enforced", "bucket must enforce public access prevention")
    elif resource_type == "gcp:cloudfunctionsv2/function:Function":
        require(bool(props.get("serviceConfig", {}).get("maxInstanceCount")), "function needs maxInstanceCount")
    elif resource_type == "aws:lambda/function:Function":
        # -1 (or no value) is "no reservation": no cap, refused unless explicitly allowed.
        require(allow_uncapped or (props.get("reservedConcurrentExecutions") or 0) > 0,
                "Lambda needs reserved concurrency (cost cap); maxInstances 0 needs allowUncapped")
    elif resource_type == "aws:lambda/functionUrl:FunctionUrl":
        require(allow_public or props.get("authorizationType") == "AWS_IAM", "Function URL must use AWS_IAM auth")
    elif resource_type == "azure-native:storage:StorageAccount":
        require(props.get("allowSharedKeyAccess") is False, "storage account must disable shared key access")
        require(props.get("allowBlobPublicAccess") is False, "storage account must disallow public blobs")
        require(props.get("minimumTlsVersion") == "TLS1_2", "storage account must require TLS 1.2")
    elif resource_type == "azure-native:web:WebApp":
        require(props.get("httpsOnly") is True, "function app must be HTTPS only")
        settings = {s["name"]: s.get("value") for s in props.get("siteConfig", {}).get("appSettings", [])}
        require(not any(k == "AzureWebJobsStorage" or "ConnectionString" in k or "AccountKey" in str(v)
                        for k, v in settings.items()), "no storage connection strings or account keys in settings")
        scale = props.get("functionAppConfig", {}).get("scaleAndConcurrency", {})
        require(bool(scale.get("maximumInstanceCount")), "function app needs maximumInstanceCount (cost cap)")
        require(allow_public or settings.get("TINYLLM_AZURE_AUTH_LEVEL") == "FUNCTION", "function keys required")
    return problems


def violations(resource_type: str, props: dict, allow_public: bool = False, allow_uncapped: bool = False) -> list[str]:
    """Every rule applied to one resource; empty means compliant."""
    cloud = resource_type.split(":", 1)[0].replace("azure-native", "azure")
    found = setting_violations(resource_type, props, allow_public, allow_uncapped)
    for grant in grants(resource_type, props):
        found += grant_violations(grant.cloud if cloud not in ALLOWED_GRANTS else cloud, grant, allow_public)
    return found
