"""GCP: a Cloud Run function (cloudfunctionsv2, python312) built by a dedicated build service account from a
content-named object in a private bucket, run by a service account with no roles, invoked via roles/run.invoker.

Facts relied on:
- Custom build service account roles (logging.logWriter, artifactregistry.writer on the repository it pushes
  to, storage.objectViewer on the source): https://cloud.google.com/functions/docs/securing/build-custom-sa
- A function's invoker permission lives on its underlying Cloud Run service (roles/run.invoker):
  https://cloud.google.com/functions/docs/securing/managing-access-iam
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp

from infra.config import Package, StackConfig, function_environment, provided

RUNTIME = "python312"
ENTRY_POINT = "serve"
INVOKER_ROLE = "roles/run.invoker"


class GcpFunction(pulumi.ComponentResource):
    """Everything tinyllm needs on GCP; `url` is the HTTPS endpoint."""

    url: pulumi.Output[str]

    def __init__(self, name: str, stack: StackConfig, package: Package, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tinyllm:gcp:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = stack.name_prefix

        source_bucket = gcp.storage.Bucket(
            f"{name}-source",
            location=stack.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=True,  # only build inputs live here; `pulumi destroy` must not get stuck on them
            opts=child,
        )
        # Named after its content: the same package never re-uploads, a new one always redeploys.
        source_object = gcp.storage.BucketObject(
            f"{name}-package",
            bucket=source_bucket.name,
            name=f"{prefix}-{package.sha256}.zip",
            source=pulumi.FileAsset(str(package.zip_path)),
            opts=child,
        )
        images = gcp.artifactregistry.Repository(
            f"{name}-images",
            location=stack.region,
            repository_id=f"{prefix}-images",
            format="DOCKER",
            opts=child,
        )

        runtime_sa = gcp.serviceaccount.Account(
            f"{name}-runtime", account_id=f"{prefix}-run", display_name="tinyllm runtime (no roles)", opts=child
        )
        build_sa = gcp.serviceaccount.Account(
            f"{name}-build", account_id=f"{prefix}-build", display_name="tinyllm function build", opts=child
        )
        build_member = build_sa.email.apply(lambda email: f"serviceAccount:{email}")
        build_grants = [
            # Cloud Logging has no scope below the project for writing log entries.
            gcp.projects.IAMMember(
                f"{name}-build-logs", project=build_sa.project, role="roles/logging.logWriter",
                member=build_member, opts=child,
            ),
            gcp.artifactregistry.RepositoryIamMember(
                f"{name}-build-images", project=images.project, location=images.location,
                repository=images.name, role="roles/artifactregistry.writer", member=build_member, opts=child,
            ),
            gcp.storage.BucketIAMMember(
                f"{name}-build-source", bucket=source_bucket.name, role="roles/storage.objectViewer",
                member=build_member, opts=child,
            ),
        ]

        function = gcp.cloudfunctionsv2.Function(
            f"{name}-function",
            name=prefix,
            location=stack.region,
            build_config={
                "runtime": RUNTIME,
                "entry_point": ENTRY_POINT,
                "service_account": build_sa.id,
                "docker_repository": images.id,
                "source": {"storage_source": {"bucket": source_bucket.name, "object": source_object.name}},
            },
            service_config={
                "service_account_email": runtime_sa.email,
                "available_memory": f"{stack.memory_mb}Mi",
                "timeout_seconds": stack.timeout_seconds,
                "max_instance_count": stack.max_instances,
                "ingress_settings": "ALLOW_ALL",
                "all_traffic_on_latest_revision": True,
                "environment_variables": function_environment(stack),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=build_grants),
        )

        members = ["allUsers"] if stack.public else list(stack.invokers)
        for index, member in enumerate(members):
            gcp.cloudrunv2.ServiceIamMember(
                f"{name}-invoker-{index}",
                project=function.project,
                location=function.location,
                name=function.service_config.apply(lambda config: provided(config, "function.service_config").service),
                role=INVOKER_ROLE,
                member=member,
                opts=child,
            )

        self.url = function.url
        self.register_outputs({"url": self.url})
