"""AWS preflight with boto3: whose credentials, and whether Lambda will accept the reserved concurrency.

Lambda keeps a minimum of the account's concurrency unreserved: 100 ("as long as you leave at least 100
simultaneous executions unreserved", docs.aws.amazon.com/lambda/latest/api/API_PutFunctionConcurrency.html), or
the whole limit when the account's limit is lower: new accounts with a limit of 10 get "Specified
ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value
of [10]" (and [50] for a limit of 50), so no reservation at all fits. GetAccountSettings reports the limit and the
unreserved count (docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html: AccountLimit.
ConcurrentExecutions, UnreservedConcurrentExecutions); a reservation this function already holds counts as room.
"""

from __future__ import annotations

from infra.config import StackConfig
from infra.naming import Names
from infra.preflight import Report, one_line

MINIMUM_UNRESERVED = 100


def reservation_problem(limit: int, unreserved: int, current: int, requested: int) -> str | None:
    """Why Lambda would refuse reserving `requested` (this function holds `current` now), or None if it fits."""
    minimum = min(MINIMUM_UNRESERVED, limit)
    left = unreserved + current - requested
    if left >= minimum:
        return None
    return (
        f"reserving {requested} would leave {left} of the account's {limit} concurrent executions unreserved, "
        f"below Lambda's minimum of {minimum}"
    )


def check(stack: StackConfig, values: dict[str, str], report: Report, session=None) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    session = session or boto3.Session()
    try:
        identity = session.client("sts", region_name=stack.region).get_caller_identity()
    except NoCredentialsError:
        report.problem(
            "no AWS credentials found (environment, shared config and credentials files, SSO, web "
            "identity; instance metadata is not probed)",
            "run `aws sso login` or `aws configure`, or set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
        return
    except (ClientError, BotoCoreError) as error:
        report.problem(
            f"AWS refused the credentials: {one_line(error)}",
            "refresh them (`aws sso login`) or choose another AWS_PROFILE",
        )
        return
    report.good(f"AWS identity {identity['Arn']} (account {identity['Account']}), region {stack.region}")

    if stack.max_instances == 0:
        report.good(
            "tinyllm:maxInstances is 0: no reserved concurrency, so no cost cap (the policy pack refuses "
            "it unless run with --policy-pack-config policy/uncapped.json)"
        )
        return
    lambda_client = session.client("lambda", region_name=stack.region)
    function_name = Names(stack.name_prefix).lambda_function
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
    except (ClientError, BotoCoreError) as error:
        report.problem(
            f"cannot read the Lambda account settings in {stack.region}: {one_line(error)}",
            "allow lambda:GetAccountSettings to the deploying identity, or check the region",
        )
        return
    try:
        current = lambda_client.get_function_concurrency(FunctionName=function_name)
        current = current.get("ReservedConcurrentExecutions") or 0
    except lambda_client.exceptions.ResourceNotFoundException:
        current = 0  # the function does not exist yet
    except (ClientError, BotoCoreError) as error:
        report.problem(
            f"cannot read the reserved concurrency of {function_name}: {one_line(error)}",
            "allow lambda:GetFunctionConcurrency on the function to the deploying identity",
        )
        return
    limit, unreserved = limits["ConcurrentExecutions"], limits["UnreservedConcurrentExecutions"]
    problem = reservation_problem(limit, unreserved, current, stack.max_instances)
    if problem:
        most = unreserved + current - min(MINIMUM_UNRESERVED, limit)
        lower = f"lower tinyllm:maxInstances to {most}, " if most > 0 else ""
        report.problem(
            f"AWS Lambda in {stack.region}: {problem}",
            "ask for a higher 'Concurrent executions' quota (Service Quotas > AWS Lambda), "
            f"{lower}or set tinyllm:maxInstances to 0 (no reservation, no cost cap)",
        )
    else:
        report.good(
            f"AWS Lambda concurrency: {unreserved} of {limit} unreserved, room to reserve {stack.max_instances}"
        )
