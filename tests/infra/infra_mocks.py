"""Helpers to run the real Pulumi program (infra/__main__.py) under `pulumi.runtime.set_mocks`, no cloud, no CLI.

`run_stack("aws", public=True)` loads the committed infra/Pulumi.aws.yaml as the stack's config (plus any
overrides), runs the program with a small fixture zip standing in for the bundle, and returns a `Deployment`:
every resource the program registered (type, logical name, resolved inputs), in registration order (a resource
that depends on others registers after them), and the exported outputs.
The mocks only invent what a provider would compute (ids, ARNs, URLs); inputs are the program's own.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import yaml
from pulumi.runtime import mocks, rpc

from infra.model_info import ModelInfo, gpt2_parameters, read_model

INFRA = Path(__file__).resolve().parents[2] / "infra"
ACCOUNT_ID = "123456789012"
GCP_PROJECT_NUMBER = "314159265358"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class FixturePackage:
    cloud: str
    directory: Path
    zip_path: Path
    sha256: str
    model: ModelInfo
    upload_through_storage: bool = False


# The default model's shape (train.config's default preset, tiny), as infra.model_info describes a model.
DEFAULT_MODEL = {"vocab_size": 1024, "n_positions": 256, "n_embd": 128, "n_layer": 1}


@dataclass(frozen=True)
class Registered:
    type: str
    name: str
    inputs: dict


@dataclass
class Deployment:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    options: dict[str, pulumi.ResourceOptions] = field(default_factory=dict)  # by logical name

    def of_type(self, type_: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_]

    def index(self, name: str) -> int:
        """Registration position of the resource with this logical name."""
        (position,) = [i for i, r in enumerate(self.resources) if r.name == name]
        return position

    def one(self, type_: str) -> Registered:
        found = self.of_type(type_)
        assert len(found) == 1, f"expected one {type_}, found {len(found)}"
        return found[0]

    def inventory(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.resources:
            counts[r.type] = counts.get(r.type, 0) + 1
        return counts


def comparable(value):
    """Inputs with assets replaced by (kind, path), so two runs can be compared with ==."""
    if isinstance(value, (pulumi.asset.Asset, pulumi.asset.Archive)):
        return (type(value).__name__, getattr(value, "path", None))
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def is_secret(value) -> bool:
    """A secret input reaches the mocks wrapped, {SIG: SECRET_SIG, "value": ...} (pulumi/runtime/rpc.py)."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def with_fields(value: dict, **fields) -> dict:
    """An input object with output fields added; inside a secret's wrapper, since the runtime keeps only "value"."""
    if is_secret(value):
        return {**value, "value": {**value["value"], **fields}}
    return {**value, **fields}


def _computed(type_: str, name: str, inputs: dict) -> dict:
    """What the provider would add to the inputs once the resource exists."""
    if type_ == "aws:cloudwatch/logGroup:LogGroup":
        return {"arn": f"arn:aws:logs:eu-west-1:{ACCOUNT_ID}:log-group:{inputs['name']}"}
    if type_ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", "name": name}
    if type_ == "aws:lambda/function:Function":
        return {"arn": f"arn:aws:lambda:eu-west-1:{ACCOUNT_ID}:function:{inputs['name']}"}
    if type_ == "aws:s3/bucket:Bucket":  # auto-named: the logical name and a random suffix
        return {"id": f"{name}-4f2a9c1", "bucket": f"{name}-4f2a9c1", "arn": f"arn:aws:s3:::{name}-4f2a9c1"}
    if type_ == "aws:lambda/functionUrl:FunctionUrl":
        return {"functionUrl": "https://abc123.lambda-url.eu-west-1.on.aws/"}
    if type_ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@my-project.iam.gserviceaccount.com"
        return {"email": email, "project": "my-project", "id": f"projects/my-project/serviceAccounts/{email}"}
    if type_ == "gcp:storage/bucket:Bucket":
        return {"name": f"{name}-bucket"}
    if type_ == "gcp:artifactregistry/repository:Repository":
        return {
            "project": "my-project",
            "name": inputs["repositoryId"],
            "id": f"projects/my-project/locations/{inputs['location']}/repositories/{inputs['repositoryId']}",
        }
    if type_ == "gcp:cloudfunctionsv2/function:Function":
        # As the API reports them: `url` in the cloudfunctions.net form, `serviceConfig.uri` the Cloud Run one.
        service_config = with_fields(
            inputs.get("serviceConfig", {}),
            service=f"projects/my-project/locations/{inputs['location']}/services/{inputs['name']}",
            uri=f"https://{inputs['name']}-abc123xyz-ew.a.run.app",
        )
        return {
            "project": "my-project",
            "serviceConfig": service_config,
            "url": f"https://{inputs['location']}-my-project.cloudfunctions.net/{inputs['name']}",
        }
    if type_.startswith("azure-native:"):
        provider_type = {
            "azure-native:resources:ResourceGroup": "",
            "azure-native:storage:StorageAccount": "/providers/Microsoft.Storage/storageAccounts",
            "azure-native:web:AppServicePlan": "/providers/Microsoft.Web/serverfarms",
            "azure-native:web:WebApp": "/providers/Microsoft.Web/sites",
            "azure-native:operationalinsights:Workspace": "/providers/Microsoft.OperationalInsights/workspaces",
            "azure-native:applicationinsights:Component": "/providers/Microsoft.Insights/components",
        }.get(type_)
        extra: dict = {"name": inputs.get("name") or name}
        if type_ == "azure-native:resources:ResourceGroup":
            extra["id"] = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{name}"
        elif provider_type is not None:
            extra["id"] = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg{provider_type}/{name}"
        if type_ == "azure-native:storage:StorageAccount":
            extra["name"] = inputs["accountName"]
            extra["primaryEndpoints"] = {"blob": f"https://{inputs['accountName']}.blob.core.windows.net/"}
        if type_ == "azure-native:applicationinsights:Component":
            extra["connectionString"] = (
                "InstrumentationKey=00000000-0000-0000-0000-000000000001;"
                "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/"
            )
        if type_ == "azure-native:web:WebApp":
            extra["defaultHostName"] = f"{name}.azurewebsites.net"
            extra["identity"] = {"type": "SystemAssigned", "principalId": "11111111-2222-3333-4444-555555555555"}
        return extra
    return {}


class RecordingMocks(mocks.Mocks):
    def __init__(self, deployment: Deployment):
        self.deployment = deployment

    def new_resource(self, args: mocks.MockResourceArgs):
        self.deployment.resources.append(Registered(args.typ, args.name, args.inputs))
        state = {**args.inputs, **_computed(args.typ, args.name, args.inputs)}
        return state.pop("id", f"{args.name}-id"), state

    def call(self, args: mocks.MockCallArgs):
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/ci", "userId": "ci"}, []
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": "my-project", "number": GCP_PROJECT_NUMBER, "name": "my-project"}, []
        if args.token == "azure-native:resources:getResourceGroup":  # an existing group (tinyllm:resourceGroupName)
            group = args.args["resourceGroupName"]
            return {
                "name": group,
                "location": "westeurope",
                "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}",
            }, []
        if args.token == "azure-native:authorization:getClientConfig":
            return {"subscriptionId": SUBSCRIPTION, "tenantId": SUBSCRIPTION, "clientId": "c", "objectId": "o"}, []
        raise AssertionError(f"unexpected invoke {args.token}")


def stack_config(stack: str, overrides: dict | None = None) -> dict[str, str]:
    """The committed Pulumi.<stack>.yaml as the engine would hand it to the program (values as strings)."""
    values = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text())["config"]
    values.update(overrides or {})
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def make_package(
    directory: Path, cloud: str, model_dir: Path | None = None, upload_through_storage: bool = False
) -> FixturePackage:
    """A small real zip: test data standing in for dist/<cloud>.zip, baking `model_dir` (read, not copied) or a
    model of the default's size."""
    zip_path = directory / f"{cloud}.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        # A fixed timestamp: the same fixture bytes (and sha256) on every run, like the real bundle.
        archive.writestr(zipfile.ZipInfo("README.txt", date_time=(2024, 1, 1, 0, 0, 0)), f"fixture for {cloud}\n")
    if model_dir is not None:
        model = read_model(model_dir, verify=False)
    else:
        weights = 4 * gpt2_parameters(DEFAULT_MODEL)
        model = ModelInfo(
            directory / "model", "tinyllm", "numpy", "fp32", weights // 4, weights + 10_000, weights, **DEFAULT_MODEL
        )
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    return FixturePackage(cloud, directory, zip_path, digest, model, upload_through_storage)
