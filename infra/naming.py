"""Every physical name a stack gives a cloud resource, derived from its `tinyllm:namePrefix` here and nowhere else:
deterministic, and valid for the providers that check them. `Names(prefix)` holds them; the program
(infra/aws.py, gcp.py, azure.py) and the preflight (infra/preflight/) read the same ones.

- The component's logical name is the prefix, and every child's logical name starts with it, so the names the
  providers derive from logical names (AWS role, GCP bucket, Azure group) start with the prefix too: the CI identity
  of PR stacks is limited to `tinyllmpr*` names (docs/ci.md).

- Azure storage account names are 3-24 lowercase letters and digits and globally unique; azure-native's
  autonaming appends 8 characters without truncating, so `tinyllmpr1000host` + suffix is 25 and fails
  (pulumi/pulumi-azure-native#4294). We name the account ourselves: the prefix, padded to exactly 24 characters
  with a hash of where it lives (subscription, stack), so the same stack always gets the same name.
- Logical names and policy statement ids of per-principal resources come from the principal itself, not its
  position in a list: removing one invoker must not rename (and so replace) the grants of the others.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

# One rule for every cloud, so a prefix valid for one stack is valid for all: Azure storage account names allow
# lowercase letters and digits only, and 16 + 8 hash characters fill the 24-character limit.
NAME_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{2,15}")
NAME_PREFIX_RULE = "3 to 16 lowercase letters or digits, starting with a letter"
# Source: learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftstorage
# (storageAccounts: "3-24", "Lowercase letters and numbers.", "Resource name must be unique across Azure").
STORAGE_ACCOUNT_NAME_MAX = 24
STORAGE_ACCOUNT_HASH_MIN = 8


def valid_name_prefix(prefix: str) -> bool:
    return NAME_PREFIX_PATTERN.fullmatch(prefix) is not None


def _hex(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def storage_account_name(prefix: str, *scope: str) -> str:
    """`prefix` then hash characters of `scope`, exactly 24 characters: valid, stable, and distinct per scope."""
    if not valid_name_prefix(prefix):
        raise ValueError(f"name prefix {prefix!r} is not {NAME_PREFIX_RULE}")
    return prefix + _hex(*scope)[: STORAGE_ACCOUNT_NAME_MAX - len(prefix)]


def principal_slug(principal: str) -> str:
    """A short name for a principal: its readable part (lowercase letters, digits, dashes, at most 40 characters) and
    8 hash characters of the whole principal, so two principals that read alike still get different names.
    Fits a Lambda statement id (`[a-zA-Z0-9-_]{1,100}`,
    docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html)."""
    readable = re.sub(r"[^a-z0-9]+", "-", principal.lower()).strip("-")[:40].strip("-") or "principal"
    return f"{readable}-{_hex(principal)[:8]}"


def role_assignment_name(*parts: str) -> str:
    """Azure role assignment names must be GUIDs; derive them from stable strings so a rerun changes nothing."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tinyllm/" + "/".join(parts)))


@dataclass(frozen=True)
class Names:
    """The names of one stack's resources, all from its prefix (already validated by infra.config)."""

    prefix: str

    @property
    def component(self) -> str:
        """The component's logical name; its children are `<component>-<part>`."""
        return self.prefix

    def child(self, part: str) -> str:
        """A child resource's logical name."""
        return f"{self.prefix}-{part}"

    # AWS
    @property
    def lambda_function(self) -> str:
        return self.prefix

    @property
    def lambda_log_group(self) -> str:
        """The group Lambda writes to by default, pre-created so the role never needs logs:CreateLogGroup."""
        return f"/aws/lambda/{self.lambda_function}"

    # GCP
    @property
    def gcp_function(self) -> str:
        return self.prefix

    @property
    def gcp_repository(self) -> str:
        return f"{self.prefix}-images"

    @property
    def gcp_runtime_account(self) -> str:
        return f"{self.prefix}-run"

    @property
    def gcp_build_account(self) -> str:
        return f"{self.prefix}-build"

    def gcp_source_object(self, package_sha256: str) -> str:
        """Named after its content: the same package never re-uploads, a new one always redeploys."""
        return f"{self.prefix}-{package_sha256}.zip"

    # Azure
    def azure_storage_account(self, subscription: str, stack: str) -> str:
        return storage_account_name(self.prefix, subscription, stack)

    def azure_role_assignment(self, stack: str, purpose: str) -> str:
        return role_assignment_name(stack, self.component, purpose)
