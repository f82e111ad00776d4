"""GCP: a Cloud Run function (cloudfunctionsv2, python312) built by a dedicated build service account from a
content-named object in a private bucket, run by a service account with no roles, invoked via roles/run.invoker.

Facts relied on:
- Custom build service account roles (logging.logWriter, artifactregistry.writer on the repository it pushes
  to, storage.objectViewer on the source): https://cloud.google.com/functions/docs/securing/build-custom-sa; for
  the source Cloud Run copies to its managed bucket Google names Storage Object Admin ("for retrieving the function
  source from the Cloud Storage bucket": cloud.google.com/run/docs/configuring/services/build-service-account), so
  that is the role of the conditioned grant below.
- Cloud Run functions copy the uploaded source into the Google-managed bucket
  `gcf-v2-sources-<project-number>-<region>` and the build fetches it from *there*: first deploys fail with
  "failed to download archive gs://gcf-v2-sources-…/function-source.zip: Access to bucket gcf-v2-sources-…
  denied. You must grant Storage Object Viewer permission to <build account>"
  (GoogleCloudPlatform/marketing-analytics-jumpstart#153, hashicorp/terraform-provider-google#20571). The
  provider's own `cloudfunctions2_basic_builder` example grants the builder object access at project level and
  waits 60 s "for builder permissions to stabilize", and still fails about half the time (#20571 is open). We
  grant Google's documented role at project level, with an IAM condition that limits it to that one bucket and its
  objects, wait `tinyllm:iamWaitSeconds` (120 s: Google documents policy changes as propagating in "typically 2
  minutes, potentially 7 minutes or longer", cloud.google.com/iam/docs/access-change-propagation), and
  `make deploy` (infra/deploy.py) re-runs `pulumi up` once if the build still hits that error.
- A function's invoker permission lives on its underlying Cloud Run service (roles/run.invoker):
  https://cloud.google.com/functions/docs/securing/managing-access-iam
- Pre-created accounts (`tinyllm:runtimeServiceAccount`, `tinyllm:buildServiceAccount`): the function names them
  in `serviceConfig.serviceAccountEmail` ("The email of the service account for this function") and
  `buildConfig.serviceAccount` ("The fully-qualified name of the service account to be used for building the
  container", `projects/{project}/serviceAccounts/{email}`): pulumi-gcp cloudfunctionsv2 Function docs. Attaching
  them needs the deployer to hold iam.serviceAccounts.actAs *on those accounts* ("To attach a service account as
  the service identity, the deployer account must have access on the service identity resource":
  cloud.google.com/run/docs/configuring/service-accounts; Service Account User for the build account:
  cloud.google.com/run/docs/configuring/services/build-service-account). In that mode the program grants only roles
  on this stack's own resources (repository, source bucket); the two project-level build roles are granted once by
  whoever creates the accounts (docs/ci.md), because a project-level member binding is not owned by one stack:
  PR stacks share the accounts, and destroying one stack would remove the binding from all of them.
- The function's own `url` is the cloudfunctions.net form, whose path handling differs from Cloud Run's
  (GoogleCloudPlatform/functions-framework-python#54); `service_config.uri` is the run.app URL, which passes
  paths through unchanged, so that is the one exported.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
import pulumiverse_time as time

from infra.config import Package, StackConfig, function_environment, provided
from infra.naming import Names, principal_slug

RUNTIME = "python312"
ENTRY_POINT = "serve"
INVOKER_ROLE = "roles/run.invoker"
# The build account's role on the managed source bucket, as Google documents it (module docstring).
GCF_SOURCES_ROLE = "roles/storage.objectAdmin"
# Every API the program calls, directly or through the services it creates. They are listed (README, docs/ci.md)
# and checked by `python -m infra.preflight`, not enabled by the program: enabling needs serviceusage.services.enable
# on the whole project, more than the deploying identity otherwise needs.
REQUIRED_APIS = (
    "cloudfunctions.googleapis.com",  # the function
    "run.googleapis.com",  # the Cloud Run service behind it, and its invoker bindings
    "cloudbuild.googleapis.com",  # builds the function's image
    "artifactregistry.googleapis.com",  # the image repository
    "storage.googleapis.com",  # the source bucket
    "iam.googleapis.com",  # the two service accounts
    "cloudresourcemanager.googleapis.com",  # project-level IAM members (gcp.projects.IAMMember)
    "logging.googleapis.com",  # build and function logs
)


def gcf_sources_condition(project_number: str, region: str) -> gcp.projects.IAMMemberConditionArgsDict:
    """An IAM condition true only for the Google-managed source bucket of this project and region, and its objects.

    Cloud Storage resource names in IAM conditions: `projects/_/buckets/BUCKET` for a bucket,
    `projects/_/buckets/BUCKET/objects/OBJECT` for an object.
    Source: cloud.google.com/iam/docs/conditions-resource-attributes (Resource name format, Cloud Storage).
    """
    bucket = f"projects/_/buckets/gcf-v2-sources-{project_number}-{region}"
    return {
        "title": "gcf-v2-sources-only",
        "description": "Read the function source that Cloud Run functions copies to its managed bucket",
        "expression": f'resource.name == "{bucket}" || resource.name.startsWith("{bucket}/objects/")',
    }


def service_account_email(account: str, project_id: str) -> str:
    """A configured account as an email: an account id is one of the deploying project's own accounts."""
    return account if "@" in account else f"{account}@{project_id}.iam.gserviceaccount.com"


def service_account_name(email: str) -> str:
    """The fully-qualified name `buildConfig.serviceAccount` takes; the project is the one in the account's email."""
    project_id = email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com")
    return f"projects/{project_id}/serviceAccounts/{email}"


@dataclass(frozen=True)
class BuildAccounts:
    """The accounts the function runs as and is built by: emails, and the build account's full name."""

    runtime_email: pulumi.Output[str]
    build_email: pulumi.Output[str]
    build_name: pulumi.Output[str]


class GcpFunction(pulumi.ComponentResource):
    """Everything tinyllm needs on GCP; `url` is the HTTPS endpoint."""

    url: pulumi.Output[str]

    def __init__(self, stack: StackConfig, package: Package, opts: pulumi.ResourceOptions | None = None):
        names = Names(stack.name_prefix)
        super().__init__("tinyllm:gcp:Function", names.component, None, opts)
        # The provider's project (gcp:project): its number names the managed source bucket.
        project = gcp.organizations.get_project_output(opts=pulumi.InvokeOutputOptions(parent=self))

        source_bucket, source_object = self._source(names, stack, package)
        images = self._image_repository(names, stack)
        accounts, build_ready = self._accounts_and_grants(names, stack, project, source_bucket, images)
        function = self._function(names, stack, project, accounts, source_bucket, source_object, images, build_ready)
        self._invokers(names, stack, function)

        self.url = function.service_config.apply(
            lambda config: provided(provided(config, "function.service_config").uri, "function.service_config.uri")
        )
        self.register_outputs({"url": self.url})

    def _child(self, **options) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **options)

    def _source(
        self, names: Names, stack: StackConfig, package: Package
    ) -> tuple[gcp.storage.Bucket, gcp.storage.BucketObject]:
        """A private bucket and the package in it, named after its content."""
        bucket = gcp.storage.Bucket(
            names.child("source"),
            location=stack.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,  # only build inputs live here; `pulumi destroy` must not get stuck on them
            opts=self._child(),
        )
        source_object = gcp.storage.BucketObject(
            names.child("package"),
            bucket=bucket.name,
            name=names.gcp_source_object(package.sha256),
            source=pulumi.FileAsset(str(package.zip_path)),
            opts=self._child(),
        )
        return bucket, source_object

    def _image_repository(self, names: Names, stack: StackConfig) -> gcp.artifactregistry.Repository:
        return gcp.artifactregistry.Repository(
            names.child("images"),
            location=stack.region,
            repository_id=names.gcp_repository,
            format="DOCKER",
            opts=self._child(),
        )

    def _accounts_and_grants(
        self,
        names: Names,
        stack: StackConfig,
        project: pulumi.Output[gcp.organizations.GetProjectResult],
        source_bucket: gcp.storage.Bucket,
        images: gcp.artifactregistry.Repository,
    ) -> tuple[BuildAccounts, list[pulumi.Resource]]:
        """The runtime and build accounts (this stack's own, or the pre-created ones), the build account's grants,
        and what the function must wait for before its build starts."""
        own_accounts = not stack.runtime_service_account
        if own_accounts:
            runtime_sa = gcp.serviceaccount.Account(
                names.child("runtime"),
                account_id=names.gcp_runtime_account,
                display_name="tinyllm runtime (no roles)",
                opts=self._child(),
            )
            build_sa = gcp.serviceaccount.Account(
                names.child("build"),
                account_id=names.gcp_build_account,
                display_name="tinyllm function build",
                opts=self._child(),
            )
            accounts = BuildAccounts(runtime_sa.email, build_sa.email, build_sa.id)
        else:
            build_email = project.project_id.apply(lambda p: service_account_email(stack.build_service_account, p))
            accounts = BuildAccounts(
                runtime_email=project.project_id.apply(
                    lambda p: service_account_email(stack.runtime_service_account, p)
                ),
                build_email=build_email,
                build_name=build_email.apply(service_account_name),
            )
        build_member = pulumi.Output.concat("serviceAccount:", accounts.build_email)
        build_grants: dict[str, pulumi.CustomResource] = {
            "images": gcp.artifactregistry.RepositoryIamMember(
                names.child("build-images"),
                project=images.project,
                location=images.location,
                repository=images.name,
                role="roles/artifactregistry.writer",
                member=build_member,
                opts=self._child(),
            ),
            "source": gcp.storage.BucketIAMMember(
                names.child("build-source"),
                bucket=source_bucket.name,
                role="roles/storage.objectViewer",
                member=build_member,
                opts=self._child(),
            ),
        }
        if own_accounts:  # pre-created accounts get these two once, from docs/ci.md (see the module docstring)
            # Cloud Logging has no scope below the project for writing log entries.
            build_grants["logs"] = gcp.projects.IAMMember(
                names.child("build-logs"),
                project=project.project_id,
                role="roles/logging.logWriter",
                member=build_member,
                opts=self._child(),
            )
            # The managed bucket is not ours, so the grant is at project level, conditioned to that bucket only.
            build_grants["gcf-sources"] = gcp.projects.IAMMember(
                names.child("build-gcf-sources"),
                project=project.project_id,
                role=GCF_SOURCES_ROLE,
                member=build_member,
                condition=project.number.apply(lambda n: gcf_sources_condition(n, stack.region)),
                opts=self._child(),
            )
        if not stack.iam_wait_seconds:
            return accounts, list(build_grants.values())
        # New IAM grants take up to a minute to apply. The wait runs when it is created, and again only when a
        # grant is replaced (its id is a trigger), not on every `pulumi up`.
        # Source: pulumi.com/registry/packages/time/api-docs/sleep ("triggers: Arbitrary map of values that,
        # when changed, will run any creation or destroy delays again"; "Updating [createDuration] by itself
        # will not trigger a delay").
        wait = time.Sleep(
            names.child("iam-propagation"),
            create_duration=f"{stack.iam_wait_seconds}s",
            triggers={key: grant.id for key, grant in build_grants.items()},
            opts=self._child(depends_on=list(build_grants.values())),
        )
        return accounts, [wait]

    def _function(
        self,
        names: Names,
        stack: StackConfig,
        project: pulumi.Output[gcp.organizations.GetProjectResult],
        accounts: BuildAccounts,
        source_bucket: gcp.storage.Bucket,
        source_object: gcp.storage.BucketObject,
        images: gcp.artifactregistry.Repository,
        build_ready: list[pulumi.Resource],
    ) -> gcp.cloudfunctionsv2.Function:
        return gcp.cloudfunctionsv2.Function(
            names.child("function"),
            name=names.gcp_function,
            location=stack.region,
            build_config={
                "runtime": RUNTIME,
                "entry_point": ENTRY_POINT,
                "service_account": accounts.build_name,
                "docker_repository": images.id,
                "source": {"storage_source": {"bucket": source_bucket.name, "object": source_object.name}},
            },
            service_config={
                "service_account_email": accounts.runtime_email,
                "available_memory": f"{stack.memory_mb}Mi",
                "timeout_seconds": stack.timeout_seconds,
                "max_instance_count": stack.max_instances,
                "ingress_settings": "ALLOW_ALL",
                "all_traffic_on_latest_revision": True,
                # Cloud Logging links a log line to its trace only as `projects/<id>/traces/<trace>`, and newer
                # runtimes set no project variable: "[GOOGLE_CLOUD_PROJECT] must be user-supplied on deployment for
                # newer runtimes" (GoogleCloudPlatform/python-docs-samples#4823). functions/gcp/main.py reads it.
                "environment_variables": {**function_environment(stack), "GOOGLE_CLOUD_PROJECT": project.project_id},
            },
            opts=self._child(depends_on=build_ready),
        )

    def _invokers(self, names: Names, stack: StackConfig, function: gcp.cloudfunctionsv2.Function) -> None:
        """One binding per principal, named after it: removing one invoker leaves the others untouched."""
        members = ["allUsers"] if stack.public else list(stack.invokers)
        for member in members:
            gcp.cloudrunv2.ServiceIamMember(
                names.child(f"invoker-{principal_slug(member)}"),
                project=function.project,
                location=function.location,
                name=function.service_config.apply(lambda config: provided(config, "function.service_config").service),
                role=INVOKER_ROLE,
                member=member,
                opts=self._child(),
            )
