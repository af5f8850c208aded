"""Bedrock's answers, read the same way by the import and verify stages: error codes translated into the named
errors the state machine retries or catches, Bedrock's clock, and the ledger of a wait that outlives one attempt.

Elapsed time is measured on Bedrock's clock (the `Date` of its answers, and the times it reports), so a local run
whose waits are simulated measures the same way as a deployed one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.adapters.s3 import put_json, read_record
from modelferry.errors import (
    BedrockThrottled,
    BedrockUnavailable,
    ImportedModelExists,
    ImportedModelQuotaReached,
    ImportQuotaExceeded,
    ImportRejected,
    ImportRoleNotReady,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Bedrock reports a role it cannot assume yet (IAM propagation) as a ValidationException; its message is the only
# thing that tells it apart from a request that will never pass.
_ROLE_NOT_READY_HINTS = ("role arn is invalid", "unable to assume", "cannot assume", "could not assume")
# ServiceQuotaExceededException covers two quotas: concurrent import jobs (wait) and imported models per account
# (waiting does not help). The second names imported models and says nothing of jobs.
_JOB_QUOTA_HINTS = ("job",)
_MODEL_COUNT_QUOTA_HINTS = ("imported models", "number of models", "custom models")
_RETRYABLE_CODES: dict[str, type[Exception]] = {
    "ThrottlingException": BedrockThrottled,
    "TooManyRequestsException": BedrockThrottled,
    "InternalServerException": BedrockUnavailable,
    "ServiceUnavailableException": BedrockUnavailable,
}


def service_time(response: Mapping[str, Any]) -> datetime:
    """When Bedrock answered: the HTTP `Date` of a response (or of a ClientError's response); now if it has none."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if date:
        try:
            return parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            pass
    return datetime.now(UTC)


def as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def describe_duration(seconds: float) -> str:
    """`5400` -> `1 h 30 min (5400 s)`: a person reads the first part, a script the second."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    parts = ([f"{hours} h"] if hours else []) + ([f"{minutes} min"] if minutes else [])
    return f"{' '.join(parts)} ({seconds} s)"


def is_model_count_quota(message: str) -> bool:
    lowered = message.lower()
    return any(hint in lowered for hint in _MODEL_COUNT_QUOTA_HINTS) and not any(
        hint in lowered for hint in _JOB_QUOTA_HINTS
    )


def translate_bedrock_error(exc: ClientError, action: str) -> Exception:
    """The named error for a Bedrock ClientError: what the state machine retries, or fails with Bedrock's words."""
    code, message = error_code(exc), error_message(exc)
    lowered = message.lower()
    retryable = _RETRYABLE_CODES.get(code)
    if retryable is not None:
        return retryable(f"{action}: Bedrock answered {code}: {message}")
    if code == "ServiceQuotaExceededException" and is_model_count_quota(message):
        return ImportedModelQuotaReached(
            f"{action}: {message} Delete an imported model that is no longer needed "
            "(aws bedrock delete-imported-model) or ask for a higher 'Imported models per account' quota."
        )
    if code == "ServiceQuotaExceededException":
        return ImportQuotaExceeded(f"{action}: another import job is running in this Region (quota 1): {message}")
    if code == "ValidationException" and any(hint in lowered for hint in _ROLE_NOT_READY_HINTS):
        return ImportRoleNotReady(f"{action}: Bedrock cannot use the import role yet: {message}")
    if code == "ConflictException":
        return ImportedModelExists(f"{action}: {message}")
    return ImportRejected(f"{action}: {code}: {message}")


@dataclass(frozen=True)
class WaitLedger:
    """When a wait began, kept under the run prefix: Step Functions retries re-invoke the task with the same input,
    so the first refusal's time can only be remembered outside the state."""

    s3: S3Client
    bucket: str
    key: str

    def note_refusal(self, at: datetime) -> tuple[float, int]:
        """Record one more refusal at `at` (Bedrock's time); return (seconds since the first one, refusals so far)."""
        record = read_record(self.s3, self.bucket, self.key)
        first = as_utc(record.get("first_refused_at")) or at
        refusals = int(record.get("refusals") or 0) + 1
        put_json(
            self.s3,
            self.bucket,
            self.key,
            {"first_refused_at": first.isoformat(), "last_refused_at": at.isoformat(), "refusals": refusals},
        )
        return max(0.0, (at - first).total_seconds()), refusals
