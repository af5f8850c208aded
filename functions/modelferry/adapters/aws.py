"""boto3 clients with the retry policy every stage wants, and the two questions every caller asks of a ClientError.

Standard retries absorb S3 SlowDown and throttling; `total_max_attempts=1` leaves retrying to the state machine,
where the budget is visible in the execution history.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# How S3 says "no such object": GetObject answers NoSuchKey, HeadObject (no body) a bare 404 / NotFound.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def client(service: str, *, total_max_attempts: int = 8, read_timeout: int = 120) -> Any:
    config = Config(
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
        connect_timeout=10,
        read_timeout=read_timeout,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def is_missing(exc: ClientError) -> bool:
    """The object (or key) does not exist."""
    return error_code(exc) in _MISSING_CODES
