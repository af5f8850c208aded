"""Copy: one Map item in, one verified object out, through the transfer engine; and a record of why a file failed.

When a Distributed Map item fails, Step Functions reports only `States.ExceedToleratedFailureThreshold` ("1 of 10
items failed"); the named error (ChecksumMismatch, HubAccessDenied...) stays in the child execution. Each copy
records its own failure under the run prefix (and clears it when a retry succeeds), so the failure notification can
say which file failed and why.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from modelferry.adapters.hub import HubClient
from modelferry.adapters.hub_http import wait_budget_for
from modelferry.adapters.s3 import put_json
from modelferry.adapters.secrets import hub_token
from modelferry.adapters.settings import CopySettings
from modelferry.contract import CopyFailure, CopyItem, CopyResult
from modelferry.errors import CopyTimedOut
from modelferry.transfer.engine import Progress, copy_file

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Long enough for one small PutObject of the record before the runtime stops the function.
DEADLINE_MARGIN_SECONDS = 10.0


def copy_item(
    item: CopyItem,
    settings: CopySettings,
    *,
    s3: S3Client,
    on_progress: Progress | None = None,
    seconds_left: float | None = None,
) -> CopyResult:
    """What the copy Lambda and the Fargate copy task both run for one Map item.

    `seconds_left`: the time before the runner is stopped (the Lambda's remaining time). A stopped Lambda runs no
    `except`, so a timer records CopyTimedOut shortly before; a copy that still finishes clears the record.
    """
    watchdog = _deadline_watchdog(s3, item, seconds_left)
    try:
        try:
            token = hub_token(settings.hf_token_secret_arn)
            with HubClient(settings.hf_endpoint, token, wait_budget_seconds=_wait_budget(seconds_left)) as hub:
                result = copy_file(
                    item.file,
                    hub=hub,
                    repo_id=item.run.repo_id,
                    commit=item.run.commit,
                    bucket=item.run.bucket,
                    s3_client=s3,
                    on_progress=on_progress,
                )
        finally:
            if watchdog is not None:
                watchdog.cancel()
    except Exception as exc:
        record_failure(s3, item, exc)
        raise
    clear_failure(s3, item)
    return result


def _wait_budget(seconds_left: float | None) -> float:
    """A quarter of the time left for 429 waits: the copy itself needs the rest. No limit known (the Fargate task,
    tests): the default budget."""
    return wait_budget_for(seconds_left, reserve_seconds=DEADLINE_MARGIN_SECONDS, share=0.25)


def _deadline_watchdog(s3: S3Client, item: CopyItem, seconds_left: float | None) -> threading.Timer | None:
    if seconds_left is None:
        return None
    error = CopyTimedOut(
        f"{item.file.path} ({item.file.size} bytes) was still copying {DEADLINE_MARGIN_SECONDS:.0f} s before the "
        "copy Lambda's timeout"
    )
    timer = threading.Timer(max(0.0, seconds_left - DEADLINE_MARGIN_SECONDS), record_failure, (s3, item, error))
    timer.daemon = True
    timer.start()
    return timer


def record_failure(s3: S3Client, item: CopyItem, error: BaseException) -> None:
    """Best effort: the copy's own error must reach the state machine even if this write fails."""
    record = CopyFailure(path=item.file.path, error=type(error).__name__, message=str(error)[:1000])
    try:
        put_json(s3, item.run.bucket, item.run.layout.copy_failure(item.file.path), record.model_dump(mode="json"))
    except (BotoCoreError, ClientError):
        return


def clear_failure(s3: S3Client, item: CopyItem) -> None:
    try:
        s3.delete_object(Bucket=item.run.bucket, Key=item.run.layout.copy_failure(item.file.path))
    except (BotoCoreError, ClientError):
        return
