"""Start and watch the Bedrock Custom Model Import job.

Ceilings the definition cannot hold (JSON ASL takes no number from a template parameter) are kept here: the quota
wait is measured from the first refusal, recorded under the run prefix in S3 so that every retry of the same task
measures from the same moment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.adapters.bedrock import (
    WaitLedger,
    as_utc,
    describe_duration,
    is_model_count_quota,
    service_time,
    translate_bedrock_error,
)
from modelferry.adapters.s3 import put_json, read_record
from modelferry.contract import ImportJobStatus, ImportStarted, ImportStatus, RunInfo
from modelferry.errors import (
    ImportedModelExists,
    ImportJobFailed,
    ImportQuotaExceeded,
    ImportQuotaWaitTimedOut,
    ImportRejected,
    ImportTimedOut,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_s3 import S3Client

# Bedrock's message when a job name is taken: here, by an earlier attempt of this task whose reply was lost.
_JOB_NAME_IN_USE = "job name is currently in use"
_TAG_FORBIDDEN = re.compile(r"[^a-zA-Z0-9\s._:/=+@-]")


def _tag(value: str) -> str:
    return _TAG_FORBIDDEN.sub("-", value)[:256]


def create_job_request(run: RunInfo) -> dict[str, Any]:
    """The CreateModelImportJob parameters of a run: every name and the token derive from the execution."""
    source = _tag(f"{run.repo_id}@{run.commit}")
    return {
        "jobName": run.job_name,
        "importedModelName": run.model_name,
        "roleArn": run.import_role_arn,
        "modelDataSource": {"s3DataSource": {"s3Uri": run.s3_uri}},
        "clientRequestToken": run.client_request_token,
        "jobTags": [
            {"key": "modelferry:execution", "value": _tag(run.run_id)},
            {"key": "modelferry:source", "value": source},
        ],
        "importedModelTags": [
            {"key": "modelferry:source", "value": source},
            {"key": "modelferry:s3-uri", "value": _tag(run.s3_uri)},
        ],
    }


def start_import(
    run: RunInfo, *, bedrock: BedrockClient, s3: S3Client, quota_wait_seconds: int, now: datetime | None = None
) -> ImportStarted:
    """Create this run's import job once, whatever the number of retries; honour `if_exists`.

    An imported model of the same name is this run's own (a retry after its job finished: carry on with that job),
    the same weights imported earlier (a re-run of the same input: verify it, import nothing), or another model:
    `fail`, `reuse` or `replace` as the input says.
    """
    started_at = (now or datetime.now(UTC)).isoformat()
    quota = WaitLedger(s3, run.bucket, run.layout.quota_ledger)
    existing = _get_imported_model(bedrock, run.model_name)
    # An earlier attempt of this task may have deleted the old model already (replace, then refused by the quota).
    replaced = _replaced_earlier(s3, run)
    if existing is not None:
        model_arn = str(existing["modelArn"])
        if existing.get("jobName") == run.job_name:
            job_arn = existing.get("jobArn") or _job_arn(bedrock, run)
            return ImportStarted(
                job_arn=job_arn, job_name=run.job_name, started_at=started_at, replaced_model_arn=replaced
            )
        same_source = (_source_of(existing) or "").rstrip("/") == run.s3_uri.rstrip("/")
        if run.if_exists == "reuse" or (run.if_exists == "fail" and same_source):
            return ImportStarted(job_arn=None, job_name=run.job_name, started_at=started_at, reused_model_arn=model_arn)
        if run.if_exists != "replace":
            raise ImportedModelExists(
                f"an imported model named {run.model_name!r} already exists ({model_arn}, imported from "
                f'{_source_of(existing) or "an unknown source"}): start again with "if_exists": "reuse" to verify '
                'it, "replace" to import over it, or another model_name'
            )
        # Delete only once the import can start: the old model keeps serving while another job holds the quota.
        _require_free_import_slot(bedrock, run, quota, quota_wait_seconds)
        _delete_imported_model(bedrock, model_arn)
        replaced = model_arn
        put_json(s3, run.bucket, run.layout.replace_ledger, {"replaced_model_arn": model_arn})
    try:
        response = bedrock.create_model_import_job(**create_job_request(run))
    except ClientError as exc:
        code, message = error_code(exc), error_message(exc)
        if code == "ServiceQuotaExceededException" and not is_model_count_quota(message):
            raise _quota_refusal(quota, service_time(exc.response), quota_wait_seconds, message) from exc
        if code == "ValidationException" and _JOB_NAME_IN_USE in message.lower():
            # The job name is unique to this execution: an earlier attempt created the job and lost the reply.
            return ImportStarted(
                job_arn=_job_arn(bedrock, run),
                job_name=run.job_name,
                started_at=started_at,
                replaced_model_arn=replaced,
            )
        raise translate_bedrock_error(exc, "CreateModelImportJob") from exc
    return ImportStarted(
        job_arn=response["jobArn"], job_name=run.job_name, started_at=started_at, replaced_model_arn=replaced
    )


def _replaced_earlier(s3: S3Client, run: RunInfo) -> str | None:
    if run.if_exists != "replace":
        return None
    replaced = read_record(s3, run.bucket, run.layout.replace_ledger).get("replaced_model_arn")
    return str(replaced) if replaced else None


def _quota_refusal(ledger: WaitLedger, at: datetime, ceiling: int, message: str) -> Exception:
    waited, refusals = ledger.note_refusal(at)
    if waited >= ceiling:
        return ImportQuotaWaitTimedOut(
            f"other import jobs kept the one-job-per-Region quota busy for {describe_duration(waited)} "
            f"({refusals} attempts), past the ceiling of {describe_duration(ceiling)} (stack parameter "
            f"ImportQuotaWaitSeconds); Bedrock said: {message}"
        )
    return ImportQuotaExceeded(
        f"another import job is running in this Region (quota 1); waiting since {describe_duration(waited)} "
        f"ago, attempt {refusals}, ceiling {describe_duration(ceiling)}: {message}"
    )


def _require_free_import_slot(bedrock: BedrockClient, run: RunInfo, ledger: WaitLedger, ceiling: int) -> None:
    try:
        response = bedrock.list_model_import_jobs(statusEquals=ImportJobStatus.IN_PROGRESS.value, maxResults=10)
    except ClientError as exc:
        raise translate_bedrock_error(exc, "ListModelImportJobs") from exc
    running = [job for job in response.get("modelImportJobSummaries", []) if job.get("jobName") != run.job_name]
    if running:
        raise _quota_refusal(
            ledger, service_time(response), ceiling, f"import job {running[0].get('jobArn')} is InProgress"
        )


def _job_arn(bedrock: BedrockClient, run: RunInfo) -> str:
    """This run's job, found by its name (unique to the execution)."""
    try:
        job = bedrock.get_model_import_job(jobIdentifier=run.job_name)
    except ClientError as exc:
        raise translate_bedrock_error(exc, "GetModelImportJob") from exc
    if job.get("importedModelName") not in (None, run.model_name):
        raise ImportRejected(
            f"import job {run.job_name} exists but imports {job.get('importedModelName')!r}, not {run.model_name!r}"
        )
    return str(job["jobArn"])


def check_import(job_arn: str, *, bedrock: BedrockClient, timeout_seconds: int) -> ImportStatus:
    """One poll: `Failed` raises ImportJobFailed with Bedrock's failureMessage, the ceiling raises ImportTimedOut."""
    try:
        job = bedrock.get_model_import_job(jobIdentifier=job_arn)
    except ClientError as exc:
        raise translate_bedrock_error(exc, "GetModelImportJob") from exc
    status = str(job.get("status") or "")
    answered_at = service_time(job)
    created = as_utc(job.get("creationTime")) or answered_at
    ended = as_utc(job.get("endTime")) if status != ImportJobStatus.IN_PROGRESS else None
    elapsed = int(((ended or answered_at) - created).total_seconds())
    if status == ImportJobStatus.FAILED:
        raise ImportJobFailed(
            f"import job {job_arn} failed after {describe_duration(elapsed)}: "
            f"{job.get('failureMessage') or 'Bedrock gave no failureMessage'}"
        )
    if status == ImportJobStatus.IN_PROGRESS and elapsed > timeout_seconds:
        raise ImportTimedOut(
            f"import job {job_arn} still InProgress after waiting {describe_duration(elapsed)} (ceiling "
            f"{describe_duration(timeout_seconds)}, stack parameter ImportTimeoutSeconds); it keeps running in "
            "Bedrock: check it in the console"
        )
    model_arn = job.get("importedModelArn")
    if status == ImportJobStatus.COMPLETED and not model_arn:
        # Bedrock has always named the model of a Completed job; if it ever does not, find it by name.
        model = _get_imported_model(bedrock, str(job.get("importedModelName") or ""))
        if model is None:
            raise ImportJobFailed(f"import job {job_arn} is Completed but its imported model cannot be found")
        model_arn = model["modelArn"]
    return ImportStatus(status=status, job_arn=job_arn, imported_model_arn=model_arn, elapsed_seconds=max(0, elapsed))


def _get_imported_model(bedrock: BedrockClient, identifier: str) -> dict[str, Any] | None:
    if not identifier:
        return None
    try:
        return dict(bedrock.get_imported_model(modelIdentifier=identifier))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise translate_bedrock_error(exc, "GetImportedModel") from exc


def _source_of(model: dict[str, Any]) -> str | None:
    source = (model.get("modelDataSource") or {}).get("s3DataSource") or {}
    uri = source.get("s3Uri")
    return str(uri) if uri else None


def _delete_imported_model(bedrock: BedrockClient, model_arn: str) -> None:
    try:
        bedrock.delete_imported_model(modelIdentifier=model_arn)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise translate_bedrock_error(exc, "DeleteImportedModel") from exc
