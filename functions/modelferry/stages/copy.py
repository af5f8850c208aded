"""The copy stage around the transfer engine: one Map item in, one verified object out, and a record of why a
file failed to copy, kept under the run prefix for the failure notification.

When a Distributed Map item fails, Step Functions reports only `States.ExceedToleratedFailureThreshold` ("1 of 10
items failed"); the named error (ChecksumMismatch, HubAccessDenied...) stays in the child execution. Each copy
records its own failure here (and clears it when a retry succeeds), so the notification can say which file failed
and why.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from modelferry.adapters.hub import HubClient
from modelferry.adapters.secrets import hub_token
from modelferry.adapters.settings import CopySettings
from modelferry.manifest import CopyItem
from modelferry.transfer.engine import CopyResult, Progress, copy_file

COPY_FAILURES_FOLDER = "copy-failures/"


def copy_item(item: CopyItem, settings: CopySettings, *, s3: Any, on_progress: Progress | None = None) -> CopyResult:
    """What the copy Lambda and the Fargate copy task both run for one Map item."""
    try:
        with HubClient(settings.hf_endpoint, hub_token(settings.hf_token_secret_arn)) as hub:
            result = copy_file(
                item.file,
                hub=hub,
                repo_id=item.run.repo_id,
                commit=item.run.commit,
                bucket=item.run.bucket,
                s3_client=s3,
                on_progress=on_progress,
            )
    except Exception as exc:
        record_failure(s3, item, exc)
        raise
    clear_failure(s3, item)
    return result


def _key(item: CopyItem) -> str:
    return f"{item.run.failures_prefix}{hashlib.sha256(item.file.path.encode()).hexdigest()[:16]}.json"


def record_failure(s3: Any, item: CopyItem, error: BaseException) -> None:
    """Best effort: the copy's own error must reach the state machine even if this write fails."""
    if not item.run.failures_prefix:
        return
    record = {"path": item.file.path, "error": type(error).__name__, "message": str(error)[:1000]}
    try:
        s3.put_object(Bucket=item.run.bucket, Key=_key(item), Body=json.dumps(record).encode())
    except (BotoCoreError, ClientError):
        return


def clear_failure(s3: Any, item: CopyItem) -> None:
    if not item.run.failures_prefix:
        return
    try:
        s3.delete_object(Bucket=item.run.bucket, Key=_key(item))
    except (BotoCoreError, ClientError):
        return


def list_failures(s3: Any, bucket: str, run_prefix: str, limit: int = 5) -> list[dict[str, str]]:
    """The recorded failures of a run (at most `limit`), oldest first."""
    prefix = f"{run_prefix}{COPY_FAILURES_FOLDER}"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=100).get("Contents", [])
    records = []
    for obj in sorted(listed, key=lambda o: o["LastModified"])[:limit]:
        records.append(json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return records
