"""tinyllm's least-privilege and safety rules as plain functions of resources (type + properties).

The single source of truth for what the program may grant: the policy pack (`pulumi up --policy-pack
infra/policy`) applies these rules to the real resources, and tests/infra applies the same functions (and reads
the same `ALLOWED_GRANTS`) on the resources the program registers under mocks.

Two levels, because a grant is only least privilege if it is on *this stack's own* resource:
- `violations(type, props, allow_public)`: what one resource shows on its own. Every policy-bearing
  resource type is parsed into `Grant`s (IAM statements, inline policies, managed-policy attachments, user and
  group policies, member bindings, role assignments); a type that bears a policy this module does not parse is a
  violation, never a pass. `NotAction`/`NotResource`/`NotPrincipal`, wildcards, primitive roles, managed
  policies and public principals outside the three documented public grants are violations.
- `ownership_violations(resources)`: with the whole stack in view (a StackValidationPolicy), each grant's target
  must be one of this stack's own resources (log group, function, bucket, repository, Cloud Run service,
  storage account) and its grantee one of this stack's own identities. No name patterns. Each S3 bucket (where a
  package too large for a direct Lambda upload goes) has its public-access blocks, ACLs disabled and default
  encryption, and a function's code comes from no other bucket (`bucket_violations`).

Props use the engine's camelCase names (inputs for `violations`, a stack's outputs for ownership).
`allow_public` is the one switch that permits public access (the stack's `tinyllm:public`; the pack's
`allowPublic`); `allow_uncapped` the one that permits a Lambda without reserved concurrency
(`tinyllm:maxInstances: 0`; the pack's `allowUncapped`).
During a preview, values the cloud computes are unknown (pulumi-policy's sentinel strings): a rule that needs one
raises `UnknownValue`, and the pack reports that the check runs at `pulumi up` instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers", "*"}
PRIMITIVE_GCP_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
# pulumi-policy's markers for values not known during a preview (pulumi_policy/proxy.py).
UNKNOWN_SENTINELS = {
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
}
# Azure built-in role definition ids (the same in every tenant):
# https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
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
    r'resource\.name == "projects/_/buckets/(gcf-v2-sources-[0-9]+-([a-z0-9-]+))" \|\| '
    r'resource\.name\.startsWith\("projects/_/buckets/\1/objects/"\)'
)

# Every grant the program may create, per cloud: (permission, scope kind) -> when the program creates it.
# "private" grants exist in every stack; "invoke" grants only for configured invokers or a public stack.
# The tests derive the exact grants of a private stack from this table, so there is one list, not two.
ALLOWED_GRANTS: dict[str, dict[tuple[str, str], str]] = {
    "aws": {
        ("logs:CreateLogStream", "own-log-group"): "private",
        ("logs:PutLogEvents", "own-log-group"): "private",
        ("sts:AssumeRole", "lambda-service-same-account"): "private",
        ("lambda:InvokeFunctionUrl", "lambda-function"): "invoke",
        ("lambda:InvokeFunction", "lambda-function-via-url"): "invoke",
    },
    "gcp": {
        ("roles/logging.logWriter", "project"): "private",  # Cloud Logging has no narrower scope for writing
        ("roles/artifactregistry.writer", "artifact-registry-repository"): "private",
        ("roles/storage.objectViewer", "storage-bucket"): "private",
        # The build reads its source there; the role Google documents for that (infra/gcp.py GCF_SOURCES_ROLE).
        ("roles/storage.objectAdmin", "gcf-v2-sources-bucket"): "private",
        ("roles/run.invoker", "cloud-run-service"): "invoke",
    },
    "azure": {
        ("Storage Blob Data Owner", "storage-account"): "private",
        ("Monitoring Metrics Publisher", "application-insights-component"): "private",  # identity-based ingestion
    },
}
# The only grants a public principal may hold, and only with allowPublic: invoking the function.
PUBLIC_GRANTS = {
    ("gcp", "roles/run.invoker", "cloud-run-service"),
    ("aws", "lambda:InvokeFunctionUrl", "lambda-function"),
    ("aws", "lambda:InvokeFunction", "lambda-function-via-url"),
}


def private_grants(cloud: str) -> set[tuple[str, str]]:
    """The (permission, scope kind) pairs every private stack of this cloud creates: exactly these."""
    return {grant for grant, when in ALLOWED_GRANTS[cloud].items() if when == "private"}


class UnknownValue(Exception):
    """A value a rule needs is not known yet (a preview of resources that do not exist)."""


def is_unknown(value) -> bool:
    return isinstance(value, str) and value in UNKNOWN_SENTINELS


def known(value, what: str):
    if is_unknown(value):
        raise UnknownValue(f"{what} is not known until the resource exists")
    return value


@dataclass(frozen=True, order=True)
class Grant:
    """One permission given to one principal on one target. `scope_kind` names the kind of target; `target` is
    the exact resource reference (ARN, bucket, repository, service, ARM id) the ownership check compares."""

    cloud: str
    permission: str
    scope_kind: str
    principal: str
    target: str = ""


@dataclass(frozen=True)
class Resource:
    """One resource of a stack as the rules see it: its type, logical name and properties."""

    type: str
    name: str
    props: dict


# Parsing: every policy-bearing resource type into grants.

AWS_MANAGED_POLICY_TYPES = {  # each names one or more managed policy ARNs attached to a principal
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("role", ["policyArn"]),
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": ("user", ["policyArn"]),
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": ("group", ["policyArn"]),
    "aws:iam/policyAttachment:PolicyAttachment": ("name", ["policyArn"]),
    "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive": ("roleName", ["policyArns"]),
    "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive": ("userName", ["policyArns"]),
    "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive": ("groupName", ["policyArns"]),
}
AWS_INLINE_POLICY_TYPES = {  # an identity policy document on one principal
    "aws:iam/rolePolicy:RolePolicy": "role",
    "aws:iam/userPolicy:UserPolicy": "user",
    "aws:iam/groupPolicy:GroupPolicy": "group",
}
GCP_IAM_SCOPES = {
    "gcp:projects/iAMMember:IAMMember": "project",
    "gcp:projects/iAMBinding:IAMBinding": "project",
    "gcp:projects/iAMPolicy:IAMPolicy": "project",
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": "artifact-registry-repository",
    "gcp:artifactregistry/repositoryIamBinding:RepositoryIamBinding": "artifact-registry-repository",
    "gcp:artifactregistry/repositoryIamPolicy:RepositoryIamPolicy": "artifact-registry-repository",
    "gcp:storage/bucketIAMMember:BucketIAMMember": "storage-bucket",
    "gcp:storage/bucketIAMBinding:BucketIAMBinding": "storage-bucket",
    "gcp:storage/bucketIAMPolicy:BucketIAMPolicy": "storage-bucket",
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": "cloud-run-service",
    "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding": "cloud-run-service",
    "gcp:cloudrunv2/serviceIamPolicy:ServiceIamPolicy": "cloud-run-service",
}
# Long-lived credentials, refused on every cloud: the program and CI authenticate with short-lived, federated
# tokens only (docs/ci.md), so a key that lives until someone deletes it is never needed. Each is a resource type of
# the pinned providers (pulumi_gcp/serviceaccount/key.py, storage/hmac_key.py, projects/api_key.py; pulumi_aws/iam/
# access_key.py, user_login_profile.py, service_specific_credential.py, signing_certificate.py, ssh_key.py).
# Azure's keys are settings, not resources: storage account keys are off (allowSharedKeyAccess false, below) and
# basic-auth publishing credentials may not be switched on (WebAppScmAllowed / WebAppFtpAllowed with allow true).
LONG_LIVED_CREDENTIALS = {
    "gcp:serviceaccount/key:Key": "a service-account key",
    "gcp:storage/hmacKey:HmacKey": "a Cloud Storage HMAC key",
    "gcp:projects/apiKey:ApiKey": "an API key",
    "aws:iam/accessKey:AccessKey": "an IAM access key",
    "aws:iam/userLoginProfile:UserLoginProfile": "an IAM user password",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential": "a service-specific credential",
    "aws:iam/signingCertificate:SigningCertificate": "a signing certificate",
    "aws:iam/sshKey:SshKey": "an IAM SSH key",
}
AZURE_BASIC_AUTH_POLICIES = {"azure-native:web:WebAppScmAllowed", "azure-native:web:WebAppFtpAllowed"}
AUTHORITATIVE_PROJECT_IAM = {"gcp:projects/iAMBinding:IAMBinding", "gcp:projects/iAMPolicy:IAMPolicy"}
GCP_IAM_TARGET = {  # the property naming the resource a binding is on
    "project": "project",
    "artifact-registry-repository": "repository",
    "storage-bucket": "bucket",
    "cloud-run-service": "name",
}
# Properties that carry a policy or grant anywhere: a resource with one that no parser below reads fails.
POLICY_PROPERTIES = {
    "policy",
    "policyData",
    "assumeRolePolicy",
    "inlinePolicies",
    "managedPolicyArns",
    "policyArn",
    "policyArns",
    "accessPolicies",
    "member",
    "members",
    "roleDefinitionId",
}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _statements(document) -> list[dict]:
    policy = json.loads(known(document, "the policy document")) if isinstance(document, str) else document
    statements = (policy or {}).get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _statement_grants(document, principal: str, kind_of) -> list[Grant]:
    """Grants of an identity-policy document. `Not*` elements invert a statement, so they are never allowed."""
    found = []
    for statement in _statements(document):
        if statement.get("Effect") != "Allow":
            continue  # a Deny only takes permissions away
        for element in ("NotAction", "NotResource", "NotPrincipal"):
            if element in statement:
                found.append(Grant("aws", f"{element} statement", "inverted", principal, json.dumps(statement)))
        for action in _as_list(statement.get("Action", [])):
            for resource in _as_list(statement.get("Resource", "")):
                found.append(Grant("aws", action, kind_of(resource), principal, resource))
    return found


def _aws_log_scope(resource: str) -> str:
    """A log-write grant may only name one log group's streams (`<log-group-arn>:*`); whose, is checked by
    ownership_violations against the stack's own log group."""
    is_group_streams = resource.startswith("arn:aws:logs:") and ":log-group:" in resource and resource.endswith(":*")
    return "own-log-group" if is_group_streams and "*" not in resource[:-2] else "other"


def _gcp_members(props: dict) -> list[tuple[str, str]]:
    """(role, member) pairs of a GCP IAM member, binding or whole policy."""
    if "policyData" in props:
        bindings = json.loads(known(props["policyData"], "policyData")).get("bindings", [])
        return [(b.get("role", ""), member) for b in bindings for member in b.get("members", [])]
    members = props.get("members") or [props.get("member")]
    return [(str(props.get("role")), str(member)) for member in members]


def grants(resource_type: str, props: dict) -> list[Grant]:
    """The IAM grants a resource creates (empty for resources that grant nothing)."""
    cloud = resource_type.split(":", 1)[0].replace("azure-native", "azure")
    if resource_type in AWS_INLINE_POLICY_TYPES:
        principal = str(props.get(AWS_INLINE_POLICY_TYPES[resource_type]))
        return _statement_grants(props.get("policy"), principal, _aws_log_scope)
    if resource_type in AWS_MANAGED_POLICY_TYPES:
        principal_key, arn_keys = AWS_MANAGED_POLICY_TYPES[resource_type]
        arns = [arn for key in arn_keys for arn in _as_list(props.get(key) or [])]
        return [
            Grant("aws", f"managed policy {arn}", "attached", str(props.get(principal_key)), str(arn)) for arn in arns
        ]
    if resource_type == "aws:iam/role:Role":
        found = []
        for statement in _statements(props.get("assumeRolePolicy")):
            principal = statement.get("Principal", {})
            source_account = statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
            trusted = (
                principal == {"Service": "lambda.amazonaws.com"}
                and source_account
                and set(statement) <= {"Sid", "Effect", "Principal", "Action", "Condition"}
            )
            kind = "lambda-service-same-account" if trusted and statement.get("Effect") == "Allow" else "other"
            found += [
                Grant("aws", action, kind, json.dumps(principal), str(source_account))
                for action in _as_list(statement.get("Action", []))
            ]
        for inline in props.get("inlinePolicies") or []:
            found += _statement_grants(inline.get("policy"), "this role (inline)", _aws_log_scope)
        found += [
            Grant("aws", f"managed policy {arn}", "attached", "this role", arn)
            for arn in props.get("managedPolicyArns") or []
        ]
        return found
    if resource_type == "aws:iam/policy:Policy":
        return [Grant("aws", "customer managed policy", "attached", "none", str(props.get("name")))]
    if resource_type == "aws:lambda/permission:Permission":
        kind = "lambda-function-via-url" if props.get("invokedViaFunctionUrl") else "lambda-function"
        return [Grant("aws", str(props.get("action")), kind, str(props.get("principal")), str(props.get("function")))]
    if resource_type in GCP_IAM_SCOPES:
        scope = GCP_IAM_SCOPES[resource_type]
        target = str(props.get(GCP_IAM_TARGET[scope]))
        sources = GCF_SOURCES_CONDITION.fullmatch((props.get("condition") or {}).get("expression", ""))
        if scope == "project" and sources:
            scope, target = "gcf-v2-sources-bucket", f"{target} {sources.group(2)}"  # project and region
        return [Grant("gcp", role, scope, member, target) for role, member in _gcp_members(props)]
    if resource_type == "azure-native:authorization:RoleAssignment":
        role_id = str(props.get("roleDefinitionId", "")).rsplit("/", 1)[-1]
        scope = str(props.get("scope"))
        return [
            Grant(
                "azure",
                AZURE_ROLE_NAMES.get(role_id, role_id),
                _azure_scope_kind(scope),
                str(props.get("principalId")),
                scope,
            )
        ]
    if _bears_a_policy(resource_type, props):
        return [Grant(cloud, f"uninspected policy-bearing resource {resource_type}", "unknown", "unknown")]
    return []


def _bears_a_policy(resource_type: str, props: dict) -> bool:
    module = resource_type.split(":")[1].split("/")[0] if resource_type.count(":") >= 2 else ""
    iam_module = module in {"iam", "authorization"} or "iam" in resource_type.lower()
    return iam_module or bool(POLICY_PROPERTIES & set(props))


def _azure_scope_kind(scope: str) -> str:
    """Name the kind of an ARM scope; subscription and resource-group scopes are named as such."""
    parts = scope.strip("/").split("/")
    if "providers" not in parts:
        return "resource-group" if "resourceGroups" in parts else "subscription"
    provider_type = "/".join(parts[parts.index("providers") + 1 :][:2])
    if len(parts) > parts.index("providers") + 4:  # a child of the resource (a container, a queue, ...)
        return f"other:{provider_type}/child"
    return {
        "Microsoft.Storage/storageAccounts": "storage-account",
        "Microsoft.Insights/components": "application-insights-component",
    }.get(provider_type, f"other:{provider_type}")


# Rules on one resource.


def grant_violations(grant: Grant, allow_public: bool) -> list[str]:
    problems = []
    allowed = ALLOWED_GRANTS.get(grant.cloud, {})
    if (grant.permission, grant.scope_kind) not in allowed:
        problems.append(f"grant not on the {grant.cloud} allow-list: {grant.permission} on {grant.scope_kind}")
    if "*" in grant.permission or grant.permission in PRIMITIVE_GCP_ROLES:
        problems.append(f"wildcard or primitive permission: {grant.permission}")
    if grant.permission.startswith("managed policy"):
        problems.append(f"managed policies are never attached (they are not scoped to this stack): {grant.target}")
    if grant.principal in PUBLIC_MEMBERS:
        if (grant.cloud, grant.permission, grant.scope_kind) not in PUBLIC_GRANTS:
            problems.append(
                f"public principal {grant.principal} may only invoke the function, not hold "
                f"{grant.permission} on {grant.scope_kind}"
            )
        elif not allow_public:
            problems.append(f"public principal {grant.principal} without public: true")
    return problems


# S3, where a package too large for a direct Lambda upload goes (infra/aws.py): a private, encrypted bucket.
S3_BUCKETS = {"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"}
S3_OBJECTS = {"aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/bucketObject:BucketObject"}
S3_ACLS = {"aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"}
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_PUBLIC_ACCESS_BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
S3_SSE_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
S3_BUCKET_SETTINGS = {  # the settings every bucket needs, each its own resource naming the bucket
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "a public access block with all four on",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "ACLs disabled (BucketOwnerEnforced)",
    S3_ENCRYPTION: "default encryption",
}


def setting_violations(resource_type: str, props: dict, allow_public: bool, allow_uncapped: bool = False) -> list[str]:
    """Non-IAM safety settings: private storage, HTTPS, cost caps, auth on the endpoint."""
    problems = []

    def require(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    # A project-level Binding (all members of a role) or Policy (every binding) is authoritative: applying it removes
    # every grant on the project that it does not list, the owners' included. Only additive members are allowed.
    require(
        resource_type not in AUTHORITATIVE_PROJECT_IAM,
        f"{resource_type} is authoritative on the whole project (it replaces bindings this stack does not own); "
        "use gcp.projects.IAMMember",
    )
    require(
        resource_type not in LONG_LIVED_CREDENTIALS,
        f"{LONG_LIVED_CREDENTIALS.get(resource_type)} is a long-lived credential; use short-lived federated "
        "credentials (docs/ci.md)",
    )
    require(
        not (resource_type in AZURE_BASIC_AUTH_POLICIES and props.get("allow") is not False),
        "basic-auth publishing credentials (SCM/FTP) are long-lived; keep them off (allow: false)",
    )
    if resource_type == "gcp:storage/bucket:Bucket":
        require(props.get("uniformBucketLevelAccess") is True, "bucket must use uniform bucket-level access")
        require(props.get("publicAccessPrevention") == "enforced", "bucket must enforce public access prevention")
    elif resource_type == "gcp:cloudfunctionsv2/function:Function":
        require(bool(props.get("serviceConfig", {}).get("maxInstanceCount")), "function needs maxInstanceCount")
    elif resource_type == "aws:lambda/function:Function":
        # -1 (or no value) is "no reservation": no cap, refused unless explicitly allowed.
        require(
            allow_uncapped or (props.get("reservedConcurrentExecutions") or 0) > 0,
            "Lambda needs reserved concurrency (cost cap); maxInstances 0 needs allowUncapped",
        )
    elif resource_type == "aws:lambda/functionUrl:FunctionUrl":
        require(allow_public or props.get("authorizationType") == "AWS_IAM", "Function URL must use AWS_IAM auth")
    elif resource_type in S3_BUCKETS:
        require(props.get("acl") in (None, "private"), "S3 bucket must not carry a canned ACL other than private")
        require(not props.get("website"), "S3 bucket must not serve a website")
    elif resource_type == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
        require(all(props.get(flag) is True for flag in S3_PUBLIC_ACCESS_BLOCKS), "S3 public access block: all four on")
    elif resource_type in S3_ACLS:
        problems.append("S3 ACLs stay disabled (BucketOwnerEnforced): no bucket ACL resource")
    elif resource_type == "aws:s3/bucketOwnershipControls:BucketOwnershipControls":
        require(
            (props.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced",
            "S3 object ownership must be BucketOwnerEnforced (ACLs disabled)",
        )
    elif resource_type == S3_ENCRYPTION:
        algorithms = [
            (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
            for rule in props.get("rules") or []
        ]
        require(bool(algorithms) and set(algorithms) <= S3_SSE_ALGORITHMS, "S3 bucket must encrypt objects by default")
    elif resource_type in S3_OBJECTS:
        require(props.get("acl") in (None, "private"), "S3 object must not carry a canned ACL other than private")
    elif resource_type == "azure-native:storage:StorageAccount":
        require(props.get("allowSharedKeyAccess") is False, "storage account must disable shared key access")
        require(props.get("allowBlobPublicAccess") is False, "storage account must disallow public blobs")
        require(props.get("minimumTlsVersion") == "TLS1_2", "storage account must require TLS 1.2")
    elif resource_type == "azure-native:web:WebApp":
        require(props.get("httpsOnly") is True, "function app must be HTTPS only")
        settings = {s["name"]: s.get("value") for s in props.get("siteConfig", {}).get("appSettings", [])}
        require(
            not any(
                k == "AzureWebJobsStorage" or "ConnectionString" in k or "AccountKey" in str(v)
                for k, v in settings.items()
            ),
            "no storage connection strings or account keys in settings",
        )
        scale = props.get("functionAppConfig", {}).get("scaleAndConcurrency", {})
        require(bool(scale.get("maximumInstanceCount")), "function app needs maximumInstanceCount (cost cap)")
        require(allow_public or settings.get("TINYLLM_AZURE_AUTH_LEVEL") == "FUNCTION", "function keys required")
    return problems


def violations(resource_type: str, props: dict, allow_public: bool = False, allow_uncapped: bool = False) -> list[str]:
    """Every rule that one resource can be judged by on its own; empty means compliant."""
    found = setting_violations(resource_type, props, allow_public, allow_uncapped)
    for grant in grants(resource_type, props):
        found += grant_violations(grant, allow_public)
    return found


# Rules on the whole stack: whose resource each grant is on, and who receives it.


@dataclass
class Owned:
    """This stack's own resources, by the references grants use for them."""

    log_group_streams: set[str]
    aws_roles: set[str]
    aws_accounts: set[str]
    lambda_functions: set[str]
    gcp_projects: set[str]
    gcp_service_accounts: set[str]
    buckets: set[str]
    repositories: set[str]
    run_services: set[str]
    storage_accounts: set[str]
    insights_components: set[str]
    azure_identities: set[str]
    function_regions: set[str]

    @property
    def gcf_source_buckets(self) -> set[str]:
        """The Google-managed source buckets of this stack's functions, as `<project> <region>` (the target of a
        gcf-v2-sources-bucket grant)."""
        return {f"{project} {region}" for project in self.gcp_projects for region in self.function_regions}

    @classmethod
    def of(cls, resources: Iterable[Resource]) -> Owned:
        owned = cls(*(set() for _ in range(13)))
        for r in resources:
            p = r.props
            if r.type == "aws:cloudwatch/logGroup:LogGroup":
                arn = str(known(p.get("arn"), "the log group's ARN"))
                owned.log_group_streams.add(f"{arn}:*")
                owned.aws_accounts.add(arn.split(":")[4])  # arn:aws:logs:<region>:<account>:log-group:<name>
            elif r.type == "aws:iam/role:Role":
                owned.aws_roles |= {str(p.get(key)) for key in ("id", "name", "arn") if p.get(key)}
            elif r.type == "aws:lambda/function:Function":
                owned.lambda_functions |= {str(p.get(key)) for key in ("name", "arn") if p.get(key)}
            elif r.type == "gcp:serviceaccount/account:Account":
                owned.gcp_service_accounts.add(f"serviceAccount:{p.get('email')}")
                owned.gcp_projects.add(str(p.get("project")))
            elif r.type == "gcp:storage/bucket:Bucket":
                owned.buckets.add(str(p.get("name")))
            elif r.type == "gcp:artifactregistry/repository:Repository":
                owned.repositories |= {str(p.get(key)) for key in ("name", "repositoryId", "id") if p.get(key)}
            elif r.type == "gcp:cloudfunctionsv2/function:Function":
                service_config, build_config = p.get("serviceConfig") or {}, p.get("buildConfig") or {}
                owned.run_services.add(str(service_config.get("service")))
                owned.function_regions.add(str(p.get("location")))
                owned.gcp_projects.add(str(p.get("project")))
                # The accounts the function runs as and builds with are this stack's identities even when they were
                # pre-created (tinyllm:runtimeServiceAccount / buildServiceAccount): those two, and no other account.
                # buildConfig.serviceAccount is `projects/<project>/serviceAccounts/<email>`.
                for account in (
                    service_config.get("serviceAccountEmail"),
                    str(build_config.get("serviceAccount") or "").rsplit("/", 1)[-1],
                ):
                    if account:
                        owned.gcp_service_accounts.add(f"serviceAccount:{known(account, 'the function account')}")
            elif r.type == "azure-native:storage:StorageAccount":
                owned.storage_accounts.add(str(p.get("id")).lower())
            elif r.type == "azure-native:applicationinsights:Component":
                owned.insights_components.add(str(p.get("id")).lower())
            elif r.type == "azure-native:web:WebApp":
                owned.azure_identities.add(str((p.get("identity") or {}).get("principalId")))
        return owned


# Scope kind -> the set of this stack's own targets a grant of that kind must name. ARM ids compare case-insensitively
# (Owned keeps them lowercase).
OWNED_TARGETS: dict[str, Callable[[Owned], set[str]]] = {
    "own-log-group": lambda owned: owned.log_group_streams,
    "lambda-function": lambda owned: owned.lambda_functions,
    "lambda-function-via-url": lambda owned: owned.lambda_functions,
    "lambda-service-same-account": lambda owned: owned.aws_accounts,
    "project": lambda owned: owned.gcp_projects,
    "gcf-v2-sources-bucket": lambda owned: owned.gcf_source_buckets,
    "artifact-registry-repository": lambda owned: owned.repositories,
    "storage-bucket": lambda owned: owned.buckets,
    "cloud-run-service": lambda owned: owned.run_services,
    "storage-account": lambda owned: owned.storage_accounts,
    "application-insights-component": lambda owned: owned.insights_components,
}
ARM_SCOPE_KINDS = {"storage-account", "application-insights-component"}


def _target_is_owned(grant: Grant, owned: Owned) -> bool:
    target = known(grant.target, f"the target of {grant.permission}")
    if grant.scope_kind in ARM_SCOPE_KINDS:
        target = target.lower()
    owned_targets = OWNED_TARGETS.get(grant.scope_kind)
    return owned_targets is not None and target in owned_targets(owned)


def _grantee_is_owned(grant: Grant, owned: Owned, resource: Resource) -> bool:
    """Private grants go to this stack's own identities; invoke grants to anyone configured."""
    if ALLOWED_GRANTS.get(grant.cloud, {}).get((grant.permission, grant.scope_kind)) == "invoke":
        return True
    principal = known(grant.principal, f"the grantee of {grant.permission}")
    if resource.type == "aws:iam/role:Role":
        return True  # the trust policy's principal is checked by its scope kind (Lambda, this account)
    if grant.cloud == "aws":
        return principal in owned.aws_roles
    if grant.cloud == "gcp":
        return principal in owned.gcp_service_accounts
    if grant.cloud == "azure":
        return principal in owned.azure_identities
    return False


def bucket_violations(resources: list[Resource]) -> list[str]:
    """Every S3 bucket of the stack has its four public-access blocks on, ACLs disabled and default encryption (each
    a resource of its own, naming the bucket), and a Lambda's code comes from none but this stack's own buckets."""
    settled: dict[str, set[str]] = {}  # setting type -> the buckets it is rightly set on
    for r in resources:
        if r.type in S3_BUCKET_SETTINGS and not setting_violations(r.type, r.props, allow_public=False):
            settled.setdefault(r.type, set()).add(str(known(r.props.get("bucket"), "the bucket a setting is on")))
    buckets = {str(known(r.props.get("id"), "the bucket's name")) for r in resources if r.type in S3_BUCKETS}
    problems = []
    for bucket in sorted(buckets):
        for kind, what in S3_BUCKET_SETTINGS.items():
            if bucket not in settled.get(kind, set()):
                problems.append(f"S3 bucket {bucket} lacks {what}")
    for r in resources:
        source = r.props.get("s3Bucket") if r.type == "aws:lambda/function:Function" else None
        if source is not None and str(known(source, "the function's code bucket")) not in buckets:
            problems.append(f"{r.name}: its code comes from S3 bucket {source}, which is not this stack's own")
    return problems


def ownership_violations(resources: Iterable[Resource]) -> list[str]:
    """Each allow-listed grant must be on this stack's own resource and to this stack's own identity; each S3 bucket
    private and encrypted, and the only source of a function's code (bucket_violations)."""
    resources = list(resources)
    owned = Owned.of(resources)
    problems = bucket_violations(resources)
    for resource in resources:
        for grant in grants(resource.type, resource.props):
            if (grant.permission, grant.scope_kind) not in ALLOWED_GRANTS.get(grant.cloud, {}):
                continue  # already reported by violations()
            if not _target_is_owned(grant, owned):
                problems.append(
                    f"{resource.name}: {grant.permission} on {grant.target}, which is not this stack's "
                    f"own {grant.scope_kind.removeprefix('own-')}"
                )
            if not _grantee_is_owned(grant, owned, resource):
                problems.append(
                    f"{resource.name}: {grant.permission} granted to {grant.principal}, which is not "
                    f"an identity of this stack"
                )
    return problems
