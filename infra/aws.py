"""AWS: a Lambda function (python3.12, arm64 by default) behind a Function URL, with a role that can only write
to its own pre-created log group and reserved concurrency as the cost cap.

Facts relied on:
- Function URL auth types and the resource-based permissions they need (since October 2025 both
  lambda:InvokeFunctionUrl and lambda:InvokeFunction, the latter with InvokedViaFunctionUrl):
  https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html
- With authorization NONE, the provider's FunctionUrl itself adds both public statements when it *creates* the URL
  ("the `lambda:InvokeFunctionUrl` permission allowing a public endpoint and `lambda:InvokeFunction` permission
  with the `InvokedViaFunctionUrl` flag set to `true` are automatically added to the Lambda function on creation.
  These policies are NOT removed from AWS when the resource is destroyed": pulumi-aws 7.51.1 lambda_/function_url.py),
  under the ids `FunctionURLAllowPublicAccess` and `FunctionURLAllowInvokeAction` (hashicorp/terraform-provider-aws
  #44858; untracked in state, #38260). The provider's source tolerates an existing `FunctionURLAllowPublicAccess`
  (internal/service/lambda/function_url.go: "The statement id (FunctionURLAllowPublicAccess) provided already
  exists" is logged, not returned), but whether it tolerates an existing `FunctionURLAllowInvokeAction` could not
  be checked (the post-#44858 source is not available to us). So the program never creates statements under those
  ids: a public URL gets exactly the provider's two, and a change of auth type *replaces* the URL (the provider
  only adds them on create, not on update), so a private stack turned public gets them too.
- Reserved concurrency: -1 removes any limit ("A value of 0 disables lambda from being triggered and -1 removes
  any concurrency limitations", pulumi-aws lambda.Function `reservedConcurrentExecutions`). Lambda refuses a
  reservation that leaves less than its minimum unreserved (100, or the account limit when that is lower:
  "decreases account's UnreservedConcurrentExecution below its minimum value of [10]"); `infra.preflight`
  checks that before anything is created.
- `source_code_hash` is the base64 sha256 of the package (Pulumi/Terraform aws_lambda_function docs).
- A package over 50 MiB zipped cannot be uploaded directly ("50 MB (zipped, when uploading through the Lambda API
  or SDKs). Upload larger files with Amazon S3.": docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html;
  infra.bundle decides, `Package.upload_through_storage`). It goes to an object in a bucket this stack owns, which
  must be "in the same AWS Region as your function" (FunctionCode.S3Bucket, docs.aws.amazon.com/lambda/latest/api/
  API_FunctionCode.html): private (all four public-access blocks, ACLs disabled by BucketOwnerEnforced),
  encrypted (SSE-S3) and content-named (`<sha256>.zip`: a new package is a new object, so the function redeploys
  and no versioning is needed). Lambda copies the object when the function is created or updated, with the
  *caller's* permissions ("please make sure your request credentials have permission to GetObject for
  <bucket>/<key>", the CreateFunction error in awslabs/lambda-streams-to-firehose#21): the function's role gets
  no S3 permission; the deploying identity needs the bucket's (docs/ci.md).
"""

from __future__ import annotations

import base64
import json

import pulumi
import pulumi_aws as aws

from infra.config import Package, StackConfig, function_environment
from infra.naming import Names, principal_slug

RUNTIME = "python3.12"
HANDLER = "handler.handler"
# The package's exec wrapper (functions/aws/stream-runtime): the managed runtime starts through it and it runs the
# package's streaming Runtime API client, so the RESPONSE_STREAM URL below gets each event as it is decoded
# (docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper: "specify the script by adding its
# path as a value of the AWS_LAMBDA_EXEC_WRAPPER environment variable"; the package is unpacked in /var/task).
STREAM_WRAPPER = "/var/task/stream-runtime"
NO_RESERVATION = -1


def trust_policy(account_id: str) -> str:
    """Only Lambda, acting for this account, may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        },
        sort_keys=True,
    )


def logging_policy(log_group_arn: str) -> str:
    """The role's only permissions: create streams in, and write events to, its own log group.

    `<log-group-arn>:*` is the form AWS documents for a function's own log group (it covers the group's
    streams and nothing else)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteOwnLogGroup",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": [f"{log_group_arn}:*"],
                }
            ],
        },
        sort_keys=True,
    )


def lambda_code_hash(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()


def package_code(names: Names, package: Package, parent: pulumi.Resource) -> dict:
    """The function's code arguments: the zip itself when Lambda takes it directly, else the bucket and key of the
    private, encrypted object this stack uploads it to (see the module docstring)."""
    if not package.upload_through_storage:
        return {"code": pulumi.FileArchive(str(package.zip_path))}
    child = pulumi.ResourceOptions(parent=parent)
    # Auto-named from the logical name, so the bucket's name starts with the stack's prefix (docs/ci.md scopes the
    # deploying identity's S3 grants to `<prefix>-code-*`); force_destroy: `pulumi destroy` empties it first.
    bucket = aws.s3.Bucket(names.child("code"), force_destroy=True, opts=child)
    private = aws.s3.BucketPublicAccessBlock(
        names.child("code-private"),
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    owner = aws.s3.BucketOwnershipControls(
        names.child("code-owner"), bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}, opts=child
    )
    encrypted = aws.s3.BucketServerSideEncryptionConfiguration(
        names.child("code-encrypted"),
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=child,
    )
    code = aws.s3.BucketObjectv2(
        names.child("code-object"),
        bucket=bucket.id,
        key=f"{package.sha256}.zip",
        source=pulumi.FileAsset(str(package.zip_path)),
        server_side_encryption="AES256",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[private, owner, encrypted]),
    )
    return {"s3_bucket": bucket.id, "s3_key": code.key}


class AwsFunction(pulumi.ComponentResource):
    """Everything tinyllm needs on AWS; `url` is the Function URL."""

    url: pulumi.Output[str]

    def __init__(self, stack: StackConfig, package: Package, opts: pulumi.ResourceOptions | None = None):
        names = Names(stack.name_prefix)
        super().__init__("tinyllm:aws:Function", names.component, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        environment = {**function_environment(stack), "AWS_LAMBDA_EXEC_WRAPPER": STREAM_WRAPPER}
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        # Created before the function so Lambda never needs logs:CreateLogGroup, and so retention is ours.
        log_group = aws.cloudwatch.LogGroup(
            names.child("logs"),
            name=names.lambda_log_group,
            retention_in_days=stack.log_retention_days,
            opts=child,
        )
        role = aws.iam.Role(
            names.child("role"),
            assume_role_policy=account_id.apply(trust_policy),
            # The most this role can ever be allowed, whatever policy is put on it (tinyllm:permissionsBoundary).
            permissions_boundary=stack.permissions_boundary or None,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            names.child("logs-write"),
            role=role.id,
            policy=log_group.arn.apply(logging_policy),
            opts=child,
        )

        function = aws.lambda_.Function(
            names.child("function"),
            name=names.lambda_function,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[stack.architecture],
            **package_code(names, package, self),
            source_code_hash=lambda_code_hash(package.sha256),
            role=role.arn,
            memory_size=stack.memory_mb,
            timeout=stack.timeout_seconds,
            reserved_concurrent_executions=stack.max_instances or NO_RESERVATION,  # 0: no reservation, no cap
            environment={"variables": environment},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, role_policy]),
        )
        auth_type = "NONE" if stack.public else "AWS_IAM"
        # Who may call an AWS_IAM URL besides same-account principals with their own identity policy: the
        # configured invokers. Two statements per principal, since October 2025: lambda:InvokeFunctionUrl and
        # lambda:InvokeFunction with InvokedViaFunctionUrl (urls-auth.html). A public URL's two statements are the
        # provider's own (see the module docstring), never created here.
        for principal in stack.invokers:
            slug = principal_slug(principal)
            aws.lambda_.Permission(
                names.child(f"invoke-url-{slug}"),
                function=function.name,
                action="lambda:InvokeFunctionUrl",
                principal=principal,
                function_url_auth_type=auth_type,
                statement_id=f"InvokeFunctionUrl-{slug}",
                opts=child,
            )
            aws.lambda_.Permission(
                names.child(f"invoke-{slug}"),
                function=function.name,
                action="lambda:InvokeFunction",
                principal=principal,
                invoked_via_function_url=True,
                statement_id=f"InvokeFunction-{slug}",
                opts=child,
            )
        # Replaced (old URL deleted first: one URL per function) when the auth type changes, so that turning a
        # private stack public runs the provider's create, which adds the two public statements.
        function_url = aws.lambda_.FunctionUrl(
            names.child("url"),
            function_name=function.name,
            authorization_type=auth_type,
            # InvokeWithResponseStream: the client gets what the runtime writes as it writes it, up to 200 MB
            # (docs.aws.amazon.com/lambda/latest/dg/config-rs-invoke-furls.html); SigV4 auth is unchanged.
            invoke_mode="RESPONSE_STREAM",
            opts=pulumi.ResourceOptions(
                parent=self, replace_on_changes=["authorizationType"], delete_before_replace=True
            ),
        )

        self.url = function_url.function_url
        self.register_outputs({"url": self.url})
