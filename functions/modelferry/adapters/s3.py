"""Small JSON documents in S3 (manifest, reports, ledgers, records) and key helpers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import is_missing

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def put_json(s3: S3Client, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=2, sort_keys=False, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: S3Client, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def read_record(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    """A small JSON record under the run prefix; {} when there is none yet."""
    try:
        document = get_json(s3, bucket, key)
    except ClientError as exc:
        if is_missing(exc):
            return {}
        raise
    return document if isinstance(document, dict) else {}


def list_records(s3: S3Client, bucket: str, prefix: str, limit: int) -> list[dict[str, Any]]:
    """The JSON records under `prefix`, oldest first, at most `limit`."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=100).get("Contents", [])
    return [get_json(s3, bucket, obj["Key"]) for obj in sorted(listed, key=lambda o: o["LastModified"])[:limit]]


def join_prefix(*parts: str) -> str:
    """Join key parts with single slashes; the result ends with '/' (a folder-like prefix) unless empty."""
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    return "/".join(cleaned) + "/" if cleaned else ""
