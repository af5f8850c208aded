"""boto3 clients with the retry policy every stage wants: standard retries absorb S3 SlowDown and throttling."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def client(service: str, *, total_max_attempts: int = 8, read_timeout: int = 120) -> Any:
    """`total_max_attempts=1` leaves retrying to the state machine, where the budget is visible in the history."""
    config = Config(
        retries={"mode": "standard", "total_max_attempts": total_max_attempts},
        connect_timeout=10,
        read_timeout=read_timeout,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]
