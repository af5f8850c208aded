"""The restJson1 side of the control plane: request fields, Smithy-style validation messages, pagination, times."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, NamedTuple

from modelferry_cli.local.bedrock.errors import BedrockError

# Patterns and lengths copied from botocore's bedrock service model.
JOB_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*"
MODEL_NAME_PATTERN = r"([0-9a-zA-Z][_-]?)+"
ROLE_ARN_PATTERN = r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+"
S3_URI_PATTERN = r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
CLIENT_REQUEST_TOKEN_PATTERN = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?"  # noqa: S105 - a pattern, not a secret


def validation_errors(checks: list[tuple[str, Any, str, int, bool]]) -> list[str]:
    """Smithy-style constraint messages for (field, value, pattern, max length, required)."""
    errors = []
    for name, value, pattern, max_length, required in checks:
        if value is None:
            if required:
                errors.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
        elif not isinstance(value, str) or not value:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must be a non-empty string"
            )
        elif len(value) > max_length:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {max_length}"
            )
        elif not re.fullmatch(pattern, value):
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    return errors


def validation_exception(errors: list[str]) -> BedrockError:
    count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
    return BedrockError("ValidationException", f"{count}: {'; '.join(errors)}")


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CreateRequest(NamedTuple):
    job_name: Any
    model_name: Any
    role_arn: Any
    s3_uri: Any
    token: Any
    model_tags: list[dict[str, str]]


def parse_create_request(body: bytes) -> CreateRequest:
    """The CreateModelImportJob fields, not yet validated (validation reports every bad field at once)."""
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        raise BedrockError("ValidationException", "The request body is not a JSON object.")
    data_source = request.get("modelDataSource")
    s3_source = data_source.get("s3DataSource") if isinstance(data_source, dict) else None
    return CreateRequest(
        job_name=request.get("jobName"),
        model_name=request.get("importedModelName"),
        role_arn=request.get("roleArn"),
        s3_uri=s3_source.get("s3Uri") if isinstance(s3_source, dict) else None,
        token=request.get("clientRequestToken"),
        model_tags=[
            {"key": str(tag["key"]), "value": str(tag["value"])}
            for tag in request.get("importedModelTags") or []
            if isinstance(tag, dict) and "key" in tag and "value" in tag
        ],
    )


def parse_tags_request(body: bytes) -> str:
    """ListTagsForResource's `resourceARN` (a POST with a JSON body in botocore's bedrock model)."""
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    arn = request.get("resourceARN") if isinstance(request, dict) else None
    if not isinstance(arn, str) or not arn:
        raise validation_exception(
            ["Value null at 'resourceARN' failed to satisfy constraint: Member must not be null"]
        )
    return arn


def paginate(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
    try:
        start = int(query.get("nextToken", "0"))
        size = int(query.get("maxResults", "1000"))
    except ValueError:
        raise BedrockError("ValidationException", "Invalid nextToken or maxResults.") from None
    if not 1 <= size <= 1000:
        raise BedrockError(
            "ValidationException",
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
            "Member must have value less than or equal to 1000",
        )
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page


def apply_time_query(records: list[Any], query: dict[str, str]) -> list[Any]:
    """Filter by creationTimeAfter/Before and sort by creation time (sortOrder, newest first by default)."""
    after, before = query.get("creationTimeAfter"), query.get("creationTimeBefore")
    if after:
        records = [r for r in records if r.creation_time > datetime.fromisoformat(after)]
    if before:
        records = [r for r in records if r.creation_time < datetime.fromisoformat(before)]
    return sorted(records, key=lambda r: r.creation_time, reverse=query.get("sortOrder", "Descending") == "Descending")
