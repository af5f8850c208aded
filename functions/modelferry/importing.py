"""Start and watch the Bedrock Custom Model Import job.

Bedrock's error codes are translated into named errors the state machine retries or catches: the one-job-per-Region
quota and throttling wait, an import role not yet visible to Bedrock waits, everything else fails with Bedrock's
own words.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from modelferry.errors import (
    BedrockThrottled,
    ImportedModelExists,
    ImportJobFailed,
    ImportQuotaExceeded,
    ImportRejected,
    ImportRoleNotReady,
    ImportTimedOut,
)
from modelferry.planning import RunInfo

# Bedrock reports a role it cannot assume yet (IAM propagation) as a ValidationException; its message is the only
# thing that tells it apart from a request that will never pass.
_ROLE_NOT_READY_HINTS = ("role arn is invalid", "unable to assume", "cannot assume", "could not assume")


class ImportStarted(BaseModel):
    job_arn: str | None
    job_name: str
    started_at: str
    reused_model_arn: str | None = None
    replaced_model_arn: str | None = None


class ImportStatus(BaseModel):
    status: str
    job_arn: str
    imported_model_arn: str | None = None
    elapsed_seconds: int


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def translate_bedrock_error(exc: ClientError, action: str) -> Exception:
    code, message = _code(exc), _message(exc)
    if code == "ServiceQuotaExceededException":
        return ImportQuotaExceeded(f"{action}: another import job is running in this Region (quota 1): {message}")
    if code in {"ThrottlingException", "TooManyRequestsException"}:
        return BedrockThrottled(f"{action}: Bedrock throttled the request: {message}")
    if code == "ValidationException" and any(hint in message.lower() for hint in _ROLE_NOT_READY_HINTS):
        return ImportRoleNotReady(f"{action}: Bedrock cannot use the import role yet: {message}")
    if code == "ConflictException":
        return ImportedModelExists(f"{action}: {message}")
    return ImportRejected(f"{action}: {code}: {message}")


def start_import(run: RunInfo, *, bedrock: Any, now: datetime | None = None) -> ImportStarted:
    started_at = (now or datetime.now(UTC)).isoformat()
    existing = _imported_model_arn(bedrock, run.model_name)
    replaced = None
    if existing:
        if run.if_exists == "reuse":
            return ImportStarted(job_arn=None, job_name=run.job_name, started_at=started_at, reused_model_arn=existing)
        if run.if_exists == "fail" and not _is_this_runs_model(bedrock, existing, run):
            raise ImportedModelExists(
                f"an imported model named {run.model_name!r} already exists ({existing}): start again with "
                '"if_exists": "reuse" to verify it, "replace" to import over it, or another model_name'
            )
        if run.if_exists == "replace":
            _delete_imported_model(bedrock, existing)
            replaced = existing
    try:
        response = bedrock.create_model_import_job(
            jobName=run.job_name,
            importedModelName=run.model_name,
            roleArn=run.import_role_arn,
            modelDataSource={"s3DataSource": {"s3Uri": run.s3_uri}},
            clientRequestToken=run.client_request_token,
            jobTags=[
                {"key": "modelferry:execution", "value": run.run_id[:256]},
                {"key": "modelferry:source", "value": f"{run.repo_id}@{run.commit}"[:256]},
            ],
            importedModelTags=[{"key": "modelferry:source", "value": f"{run.repo_id}@{run.commit}"[:256]}],
        )
    except ClientError as exc:
        raise translate_bedrock_error(exc, "CreateModelImportJob") from exc
    return ImportStarted(
        job_arn=response["jobArn"], job_name=run.job_name, started_at=started_at, replaced_model_arn=replaced
    )


def check_import(job_arn: str, *, bedrock: Any, timeout_seconds: int, now: datetime | None = None) -> ImportStatus:
    try:
        job = bedrock.get_model_import_job(jobIdentifier=job_arn)
    except ClientError as exc:
        raise translate_bedrock_error(exc, "GetModelImportJob") from exc
    status = job["status"]
    created = job.get("creationTime") or datetime.now(UTC)
    elapsed = int(((now or datetime.now(UTC)) - created).total_seconds())
    if status == "Failed":
        raise ImportJobFailed(
            f"import job {job_arn} failed: {job.get('failureMessage') or 'Bedrock gave no failureMessage'}"
        )
    if status == "InProgress" and elapsed > timeout_seconds:
        raise ImportTimedOut(
            f"import job {job_arn} still InProgress after {elapsed} s (ceiling {timeout_seconds} s, stack "
            "parameter ImportTimeoutSeconds); it keeps running in Bedrock: check it in the console"
        )
    return ImportStatus(
        status=status, job_arn=job_arn, imported_model_arn=job.get("importedModelArn"), elapsed_seconds=elapsed
    )


def _imported_model_arn(bedrock: Any, name: str) -> str | None:
    try:
        return str(bedrock.get_imported_model(modelIdentifier=name)["modelArn"])
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise translate_bedrock_error(exc, "GetImportedModel") from exc


def _is_this_runs_model(bedrock: Any, model_arn: str, run: RunInfo) -> bool:
    """A retried StartImport after this run's own job completed must not call the model someone else's."""
    try:
        model = bedrock.get_imported_model(modelIdentifier=model_arn)
    except ClientError:
        return False
    return bool(model.get("jobName") == run.job_name)


def _delete_imported_model(bedrock: Any, model_arn: str) -> None:
    try:
        bedrock.delete_imported_model(modelIdentifier=model_arn)
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise translate_bedrock_error(exc, "DeleteImportedModel") from exc
