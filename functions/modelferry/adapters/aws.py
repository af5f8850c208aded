"""boto3 clients with the retry policy every stage wants, and the two questions every caller asks of a ClientError.

Standard retries absorb S3 SlowDown and throttling; `total_max_attempts=1` leaves retrying to the state machine,
where the budget is visible in the execution history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    # Development-only stubs (requirements-dev.txt): the Lambda artifact has none of them.
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

# How S3 says "no such object": GetObject answers NoSuchKey, HeadObject (no body) a bare 404 / NotFound.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
CONNECT_TIMEOUT_SECONDS = 10


# One overload per service the code builds a client for, so each caller gets that service's client type.
@overload
def client(service: Literal["s3"], *, total_max_attempts: int = ..., read_timeout: int = ...) -> S3Client: ...
@overload
def client(service: Literal["bedrock"], *, total_max_attempts: int = ..., read_timeout: int = ...) -> BedrockClient: ...
@overload
def client(
    service: Literal["bedrock-runtime"], *, total_max_attempts: int = ..., read_timeout: int = ...
) -> BedrockRuntimeClient: ...
@overload
def client(
    service: Literal["stepfunctions"], *, total_max_attempts: int = ..., read_timeout: int = ...
) -> SFNClient: ...
@overload
def client(
    service: Literal["dynamodb"], *, total_max_attempts: int = ..., read_timeout: int = ...
) -> DynamoDBClient: ...
@overload
def client(service: Literal["sns"], *, total_max_attempts: int = ..., read_timeout: int = ...) -> SNSClient: ...
@overload
def client(
    service: Literal["events"], *, total_max_attempts: int = ..., read_timeout: int = ...
) -> EventBridgeClient: ...
def client(service: str, *, total_max_attempts: int = 8, read_timeout: int = 120) -> Any:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]  # service: one of the Literals above


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_missing(exc: ClientError) -> bool:
    """The object (or key) does not exist."""
    return error_code(exc) in _MISSING_CODES
