"""Small JSON documents in S3 (manifest, reports, results) and key helpers."""

from __future__ import annotations

import json
from typing import Any


def put_json(s3: Any, bucket: str, key: str, document: Any) -> None:
    body = json.dumps(document, indent=2, sort_keys=False, default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def join_prefix(*parts: str) -> str:
    """Join key parts with single slashes; the result ends with '/' (a folder-like prefix) unless empty."""
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    return "/".join(cleaned) + "/" if cleaned else ""
