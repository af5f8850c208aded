"""What the AWS-facing commands (start, watch, status, list) share: the session, the state machine found from the
stack's outputs, execution names turned into ARNs, and AWS errors turned into one line that says what to do."""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from modelferry.naming import execution_arn

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

STATE_MACHINE_OUTPUT = "StateMachineArn"
DEFAULT_STACK = "modelferry"
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# The IAM action behind each call the commands make, to name the missing permission in an AccessDenied line.
IAM_ACTIONS = {
    "DescribeStacks": "cloudformation:DescribeStacks",
    "StartExecution": "states:StartExecution",
    "DescribeExecution": "states:DescribeExecution",
    "GetExecutionHistory": "states:GetExecutionHistory",
    "ListExecutions": "states:ListExecutions",
    "ListMapRuns": "states:ListMapRuns",
    "DescribeMapRun": "states:DescribeMapRun",
    "GetObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObjects": "s3:DeleteObject",
    "GetImportedModel": "bedrock:GetImportedModel",
    "ListImportedModels": "bedrock:ListImportedModels",
    "ListTagsForResource": "bedrock:ListTagsForResource",
    "DeleteImportedModel": "bedrock:DeleteImportedModel",
    "InvokeModel": "bedrock:InvokeModel",
}
_HINTS = {
    "ExecutionDoesNotExist": "check the execution ARN or name and the Region (modelferry list shows recent ones)",
    "StateMachineDoesNotExist": "the stack's state machine is gone: redeploy (make deploy) or pass another --stack",
    "ExecutionAlreadyExists": "an execution with this name exists: pass another --execution-name",
    "ExecutionLimitExceeded": "too many executions are running: wait for some to finish and start again",
    "InvalidArn": "pass a full execution ARN (arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME) or a name",
    "InvalidName": "execution names are 1-80 letters, digits, '-' or '_'",
    "InvalidExecutionInput": "the input is not valid JSON or is larger than 256 KiB",
    "ExpiredToken": "your session expired: sign in again (aws sso login, or refresh the profile's keys)",
    "ExpiredTokenException": "your session expired: sign in again (aws sso login, or refresh the profile's keys)",
    "UnrecognizedClientException": "the credentials are not valid in this account/Region: check AWS_PROFILE",
    "InvalidClientTokenId": "the credentials are not valid in this account/Region: check AWS_PROFILE",
    "ThrottlingException": "AWS is throttling these calls: wait a little and run it again (or raise --interval)",
    "Throttling": "AWS is throttling these calls: wait a little and run it again (or raise --interval)",
    "NoSuchBucket": "the bucket is gone or in another account: check the stack's ModelBucket output",
    "ResourceNotFoundException": "no such imported model in this Region: modelferry models lists them",
}


def add_aws_arguments(parser: argparse.ArgumentParser, *, stack: bool = True) -> None:
    group = parser.add_argument_group("AWS")
    if stack:
        group.add_argument(
            "--stack",
            help="CloudFormation stack of modelferry (default: $MODELFERRY_STACK, else samconfig.toml's stack_name, "
            f"else {DEFAULT_STACK})",
        )
        group.add_argument("--state-machine", metavar="ARN", help="use this state machine instead of the stack's")
    group.add_argument("--region", help="AWS Region (default: the profile's, else samconfig.toml's)")
    group.add_argument("--profile", help="AWS named profile (default: $AWS_PROFILE)")


def _samconfig() -> dict[str, Any]:
    path = Path("samconfig.toml")
    if not path.is_file():
        return {}
    try:
        parameters = tomllib.loads(path.read_text()).get("default", {}).get("global", {}).get("parameters", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return parameters if isinstance(parameters, dict) else {}


def default_stack(args: argparse.Namespace) -> str:
    return str(
        getattr(args, "stack", None)
        or os.environ.get("MODELFERRY_STACK")
        or _samconfig().get("stack_name")
        or DEFAULT_STACK
    )


def session(args: argparse.Namespace, region: str | None = None) -> boto3.Session:
    """A session for the profile; the Region from --region, an ARN, the profile, or samconfig.toml (in that order)."""
    chosen = getattr(args, "region", None) or region
    base = boto3.Session(profile_name=getattr(args, "profile", None), region_name=chosen)
    if base.region_name is None and _samconfig().get("region"):
        return boto3.Session(profile_name=getattr(args, "profile", None), region_name=_samconfig()["region"])
    return base


def region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and arn.startswith("arn:") and parts[3] else None


class StackProblem(Exception):
    """The stack cannot give a state machine (not deployed, wrong Region, not a modelferry stack)."""


def state_machine_arn(args: argparse.Namespace, cloudformation: CloudFormationClient) -> str:
    """--state-machine, else the stack's StateMachineArn output (CloudFormation DescribeStacks)."""
    if getattr(args, "state_machine", None):
        return str(args.state_machine)
    return stack_output(args, cloudformation, STATE_MACHINE_OUTPUT)


def stack_output(args: argparse.Namespace, cloudformation: CloudFormationClient, key: str) -> str:
    """One output of the stack (CloudFormation DescribeStacks); StackProblem names what is missing."""
    stack = default_stack(args)
    try:
        (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in str(exc):
            region = cloudformation.meta.region_name
            raise StackProblem(
                f"stack {stack!r} not found in {region}: deploy it (make deploy), or pass --stack NAME / --region"
            ) from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs") or []}
    if key not in outputs:
        raise StackProblem(
            f"stack {stack!r} ({described.get('StackStatus')}) has no {key} output: is it a modelferry stack (of this "
            "version) that finished deploying? Pass --stack NAME"
            + (" or --state-machine ARN" if key == STATE_MACHINE_OUTPUT else "")
        )
    return outputs[key]


def execution_arn_for(args: argparse.Namespace, execution: str) -> str:
    """An execution ARN as given, or a name completed with the stack's state machine."""
    if execution.startswith("arn:"):
        if ":execution:" not in execution:
            raise StackProblem(f"{execution} is not an execution ARN (arn:...:execution:MACHINE:NAME)")
        return execution
    machine = state_machine_arn(args, session(args).client("cloudformation"))
    return execution_arn(machine, execution)


def describe_aws_error(exc: BaseException) -> str:
    """One line: what AWS said, and what to do about it."""
    if isinstance(exc, StackProblem):
        return str(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE or pass --profile (aws configure / aws sso login first)"
    if isinstance(exc, NoRegionError):
        return (
            "no AWS Region: pass --region or set AWS_REGION (Custom Model Import runs in us-east-1, us-east-2, "
            "us-west-2 and eu-central-1)"
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url')}: check the network or proxy, and the Region"
    if not isinstance(exc, ClientError):
        return f"{type(exc).__name__}: {exc}"
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "Error")
    message = " ".join(str(error.get("Message") or "").split())
    if code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}:
        action = IAM_ACTIONS.get(exc.operation_name, exc.operation_name)
        hint = f"your identity needs {action} (docs/operations.md lists what each command needs)"
    else:
        hint = _HINTS.get(code, "see docs/operations.md#troubleshooting")
    return f"{code} from {exc.operation_name}: {message or 'no message'} -> {hint}"


AWS_ERRORS = (ClientError, BotoCoreError, StackProblem)


def one_line_aws_errors(command: Callable[..., int]) -> Callable[..., int]:
    """Run a command; an AWS error becomes `modelferry: <one line>` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
        try:
            return command(args, out or sys.stdout)
        except AWS_ERRORS as exc:
            print(f"modelferry: {describe_aws_error(exc)}", file=err or sys.stderr)
            return EXIT_ERROR

    return wrapper


def console_url(execution_arn: str) -> str:
    region = region_of(execution_arn) or "us-east-1"
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
