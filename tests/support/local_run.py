"""Reading a local run back: the S3 state, the Lambda calls, the notification (shared by the reliability tests)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import boto3

from modelferry import contract
from modelferry.contract import META_BLOB_SHA1, META_FIXED_SHA256, META_SHA256, Manifest
from modelferry_cli.local.hub import git_blob_sha1
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, ExecutionReport, LocalRig

MiB = 1024 * 1024


@functools.cache
def _shard_repo(seed: int) -> tuple[tuple[str, bytes], ...]:
    return tuple(gpt_oss_repo(shard_bytes=3 * MiB, seed=seed).items())


def shard_repo(seed: int = 0) -> dict[str, bytes]:
    """A GPT-OSS-shaped repo with three 3 MiB shards (multipart with 1 MiB parts), generated once per process."""
    return dict(_shard_repo(seed))


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def keys(prefix: str = "") -> list[str]:
    pages = s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def open_uploads() -> list[dict[str, Any]]:
    return list(s3().list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))


def calls(rig: LocalRig, function: str) -> list[tuple[str, Any, Any]]:
    return [call for call in rig.lambda_calls if call[0] == function]


def errors(rig: LocalRig, function: str) -> list[str]:
    return [r["errorType"] for _, _, r in calls(rig, function) if isinstance(r, dict) and "errorType" in r]


def planned(rig: LocalRig) -> Manifest:
    """The manifest Plan wrote for the (last) run: what every object under the model prefix must be."""
    (*_, (_, _, result)) = [call for call in calls(rig, "PlanFunction") if "errorType" not in call[2]]
    manifest_key = result["manifest"]["manifest_key"]
    return Manifest.model_validate_json(s3().get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())


def cause_message(report: ExecutionReport) -> str:
    """The failing function's message (a Lambda error's Cause is a JSON document holding it), else the cause."""
    return contract.cause_message(report.cause)


@dataclass(frozen=True)
class PrefixState:
    verified: dict[str, int]  # repository path -> size, for every object under the model prefix
    fixed: set[str]  # paths rewritten by Validate in S3 (the index), checked against what it recorded


def assert_only_verified_objects(manifest: Manifest) -> PrefixState:
    """Every object under the model prefix is a planned file whose bytes hash to what the Hub published (or, for a
    file Validate in S3 rewrote, to what it recorded), and its metadata says so; no multipart upload is open."""
    client = s3()
    by_key = {entry.key: entry for entry in manifest.files}
    verified: dict[str, int] = {}
    fixed: set[str] = set()
    for key in keys(manifest.model_prefix):
        entry = by_key.get(key)
        assert entry is not None, f"{key} is under the model prefix but was never planned"
        got = client.get_object(Bucket=BUCKET, Key=key)
        body, metadata = got["Body"].read(), got["Metadata"]
        if META_FIXED_SHA256 in metadata:
            assert hashlib.sha256(body).hexdigest() == metadata[META_FIXED_SHA256], f"{key}: fixed bytes changed"
            fixed.add(entry.path)
        elif entry.sha256 is not None:
            assert len(body) == entry.size, f"{key}: {len(body)} bytes, the Hub published {entry.size}"
            assert hashlib.sha256(body).hexdigest() == entry.sha256, f"{key}: bytes are not the Hub's"
        else:
            assert git_blob_sha1(body) == entry.blob_id, f"{key}: bytes are not the Hub's git blob"
        if entry.sha256 is not None:
            assert metadata.get(META_SHA256) == entry.sha256, f"{key}: metadata does not record the Hub's sha256"
        else:
            assert metadata.get(META_BLOB_SHA1) == entry.blob_id, f"{key}: metadata does not record the blob id"
        verified[entry.path] = len(body)
    assert open_uploads() == [], "a multipart upload was left open"
    return PrefixState(verified, fixed)


def assert_notified(report: ExecutionReport, *, failed_at: str | None = None, error: str | None = None) -> None:
    """One SNS notification and one EventBridge event, saying what happened (and where it failed)."""
    assert len(report.notifications) == 1, report.notifications
    subject, message = report.notifications[0]["subject"], report.notifications[0]["message"]
    assert [event["detail-type"] for event in report.events] == [
        "ModelImportFailed" if failed_at else "ModelImportSucceeded"
    ]
    if failed_at is None:
        assert subject.endswith("imported and verified"), subject
        assert report.imported_model_arn
        assert report.imported_model_arn in message
        return
    assert f"FAILED at {failed_at}" in subject, subject
    # What the subject says is what the typed state says: the stage the definition recorded.
    notify_events = [
        event
        for function, event, _ in report.lambda_calls
        if function == "NotifyFunction" and event["execution_id"] == report.execution_arn
    ]
    state = contract.NotifyEvent.model_validate(notify_events[-1]).state
    assert state.failed_stage is not None
    assert state.failed_stage.label == failed_at
    if error is not None:
        assert error in message, message
        assert json.dumps(report.events[0]["detail"]).count(error) >= 1, report.events[0]["detail"]
