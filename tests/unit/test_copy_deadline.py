"""A copy Lambda stopped at its timeout runs no `except`: the file it was copying is recorded just before, so the
failure notification still names it (CopyPath: timed out -> retried -> Map fails -> NotifyFailure reads the record).

The rig cannot stop a function mid-call the way Lambda does; these tests run the deadline with a short clock and a
copy that hangs, against moto's S3.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from modelferry.adapters.settings import CopySettings
from modelferry.contract import CopyItem, CopyResult, ManifestEntry, RunContext, WorkflowState
from modelferry.stages import copy as copy_stage
from modelferry.stages.notify import copy_failures, failure_notification

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "model-bucket"
SETTINGS = CopySettings.model_validate({"MODEL_BUCKET": BUCKET, "HF_ENDPOINT": "http://127.0.0.1:9"})
ITEM = CopyItem(
    execution_id="arn:aws:states:us-east-1:123456789012:execution:modelferry:run-1",
    file=ManifestEntry(
        path="model-00001-of-00002.safetensors", size=10, sha256="0" * 64, key="models/m/c/model-00001.safetensors"
    ),
    run=RunContext(repo_id="org/m", commit="c" * 40, bucket=BUCKET, run_id="run-1", run_prefix="runs/m/run-1/"),
)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def hanging_copy(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """copy_file blocks until the event is set, then returns a result (a copy that finishes late)."""
    release = threading.Event()

    def copy_file(entry: ManifestEntry, **_: Any) -> CopyResult:
        assert release.wait(10)
        return CopyResult(
            path=entry.path,
            key=entry.key,
            size=entry.size,
            skipped=False,
            bytes_copied=entry.size,
            sha256=entry.sha256,
            seconds=1.0,
            parts=1,
            part_size=entry.size,
            peak_buffered_bytes=entry.size,
        )

    monkeypatch.setattr(copy_stage, "copy_file", copy_file)
    monkeypatch.setattr(copy_stage, "HubClient", lambda *_, **__: nullcontext())
    return release


def records(s3: Any) -> list[Any]:
    return copy_failures(s3, BUCKET, ITEM.run.layout)


def test_a_copy_still_running_at_the_deadline_is_recorded_as_timed_out(s3: Any, hanging_copy: threading.Event) -> None:
    seconds_left = copy_stage.DEADLINE_MARGIN_SECONDS + 0.2
    worker = threading.Thread(
        target=copy_stage.copy_item, args=(ITEM, SETTINGS), kwargs={"s3": s3, "seconds_left": seconds_left}
    )
    worker.start()
    try:
        for _ in range(50):
            if records(s3):
                break
            threading.Event().wait(0.1)
        (record,) = records(s3)
        assert (record.path, record.error) == (ITEM.file.path, "CopyTimedOut")
        assert ITEM.file.path in record.message
    finally:
        hanging_copy.set()
        worker.join()


def test_a_copy_that_finishes_after_the_record_clears_it(s3: Any, hanging_copy: threading.Event) -> None:
    worker = threading.Thread(
        target=copy_stage.copy_item,
        args=(ITEM, SETTINGS),
        kwargs={"s3": s3, "seconds_left": copy_stage.DEADLINE_MARGIN_SECONDS},
    )
    worker.start()
    for _ in range(50):
        if records(s3):
            break
        threading.Event().wait(0.1)
    assert records(s3)
    hanging_copy.set()
    worker.join()
    assert records(s3) == []


def test_a_copy_with_time_to_spare_records_nothing(s3: Any, hanging_copy: threading.Event) -> None:
    hanging_copy.set()
    copy_stage.copy_item(ITEM, SETTINGS, s3=s3, seconds_left=900)
    assert records(s3) == []


def test_the_failure_notification_names_the_timed_out_file(s3: Any, hanging_copy: threading.Event) -> None:
    worker = threading.Thread(
        target=copy_stage.copy_item, args=(ITEM, SETTINGS), kwargs={"s3": s3, "seconds_left": 0.0}
    )
    worker.start()
    try:
        for _ in range(50):
            if records(s3):
                break
            threading.Event().wait(0.1)
        failed = json.loads((ROOT / "events" / "notify-failed.json").read_text())["state"]
        failed["failed_stage"] = "copy"
        notification = failure_notification(WorkflowState.model_validate(failed), records(s3))
        assert ITEM.file.path in notification.text
        assert "CopyTimedOut" in notification.text
    finally:
        hanging_copy.set()
        worker.join()
