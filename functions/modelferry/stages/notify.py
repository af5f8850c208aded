"""Notify: one SNS message a person can read (what happened, what to do next, details as JSON) and the same
outcome as an EventBridge event (`ModelImportSucceeded` / `ModelImportFailed`) for other systems."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from modelferry.adapters.bedrock import describe_duration
from modelferry.adapters.s3 import list_records
from modelferry.adapters.settings import NotifySettings
from modelferry.contract import CopyFailure, ImportJobStatus, NotifyResult, RunLayout, WorkflowState
from modelferry.errors import NotificationFailed

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

EVENT_SOURCE = "modelferry"
SUCCEEDED = "ModelImportSucceeded"
FAILED = "ModelImportFailed"

# What a person should do next, by the error name the state machine caught.
NEXT_STEPS: dict[str, str] = {
    "InvalidRequest": "Fix the named field in the execution input and start again.",
    "HubRepoNotFound": "Check the repo_id; for a private repo store a token that can read it in the HF token secret.",
    "HubRevisionNotFound": "Check the revision (branch, tag or commit sha) on the Hub.",
    "HubAccessDenied": "Accept the model's licence on the Hub with the account whose token is in the HF token secret.",
    "HubRateLimited": "The Hub kept rate-limiting: store a token (higher limits) or start again later.",
    "HubUnavailable": "The Hub was unavailable: start again later; copied files are kept and not copied twice.",
    "ModelNotImportable": "Bedrock would refuse this model: see the findings in the Hub validation report.",
    "FileTooLargeForLambda": "Configure the Fargate copy task (CopyTaskImageUri) or raise LambdaMaxFileBytes.",
    "ChecksumMismatch": "The Hub served bytes that do not match its checksum: start again; report it if it persists.",
    "SizeMismatch": "The Hub served a different size than it published: start again.",
    "SourceChanged": "The repository changed during the copy: start again to copy the new commit, or pin a revision.",
    "TransferInterrupted": "A transfer kept failing: start again; files already verified are not copied twice.",
    "CopyTimedOut": (
        "One file did not finish within the copy Lambda's 15 minutes: lower LambdaMaxFileBytes so files this size go "
        "to the Fargate copy task (CopyTaskImageUri), then start again; finished files are skipped."
    ),
    "StorageAccessDenied": "Give the copy functions write access to the model bucket and prefix.",
    "CopyIncomplete": "Some files were not verified in S3: start again; verified files are skipped.",
    "ModelValidationFailed": "The copied model breaks a Bedrock rule: see the S3 validation report.",
    "ImportQuotaExceeded": "Another import kept the one-job quota busy: start again when it ends.",
    "ImportQuotaWaitTimedOut": (
        "Other imports held the one-job-per-Region quota past ImportQuotaWaitSeconds: see them with "
        "aws bedrock list-model-import-jobs --status-equals InProgress, then start again (copied files are kept)."
    ),
    "ImportQueueWaitTimedOut": (
        "The runs ahead in line kept the import slot past ImportQueueWaitSeconds: see the line with modelferry "
        "queue, then start again (copied files are kept), or raise the parameter for long batches."
    ),
    "ImportQueueUnavailable": "The import queue's table or Step Functions kept failing: start again.",
    "ImportedModelQuotaReached": (
        "Delete an imported model you no longer need (aws bedrock delete-imported-model) or ask for a higher "
        "'Imported models per account' quota, then start again."
    ),
    "BedrockThrottled": "Bedrock kept throttling: start again later.",
    "BedrockUnavailable": "Bedrock kept answering with internal errors: start again later.",
    "ImportRoleNotReady": "Check the import role's trust policy (bedrock.amazonaws.com) and its S3 read access.",
    "ImportRejected": "Bedrock refused the import request: read its message above.",
    "ImportedModelExists": 'Use "if_exists": "reuse" or "replace", or another model_name.',
    "ImportJobFailed": "Bedrock could not import the model: read its failureMessage above, fix the files, start again.",
    "ImportTimedOut": (
        "The job is still running in Bedrock: follow it with aws bedrock get-model-import-job; raise "
        "ImportTimeoutSeconds if imports of this size take longer."
    ),
    "UnexpectedImportStatus": "Bedrock reported a job status modelferry does not know: check the job in the console.",
    "ModelNotReady": "The model did not warm up within the verify budget: invoke it again in a few minutes.",
    "ModelNotReadyTimedOut": (
        'The model is imported but stayed cold past ModelNotReadyBudgetSeconds: start again with "if_exists": '
        '"reuse" in a few minutes to verify it without importing again.'
    ),
    "InvocationFailed": "The imported model could not be invoked: read the error above.",
    "VerificationFailed": (
        "The model answered, but not with a usable chat completion: check its chat template and generation_config.json."
    ),
    "NotificationFailed": (
        "The model is imported and verified, but the outcome could not be published: check the topic and event bus "
        "permissions of the notify function."
    ),
    "States.Timeout": "A step ran out of time: start again; verified files are not copied twice.",
    "States.ExceedToleratedFailureThreshold": (
        "A file failed to copy: the Map Run of this execution (Step Functions console) shows each file's error; "
        "start again once fixed: verified files are not copied twice."
    ),
    "States.TaskFailed": "The Fargate copy task stopped with an error: its log group (stack output) says which.",
}
_VERIFICATION_FIELDS = (
    "reply",
    "reasoning",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "tokens_per_second",
    "cold_start_seconds",
)
DEFAULT_NEXT_STEP = "Read the error and cause above; the execution history shows the failing step."


class Notification(BaseModel):
    outcome: str
    subject: str
    text: str
    details: dict[str, Any]


def _duration(start: str | None, end: datetime) -> int | None:
    if not start:
        return None
    try:
        begun = datetime.fromisoformat(start.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int((end - begun).total_seconds())


def _subject(text: str) -> str:
    return text if len(text) <= 100 else text[:97] + "..."


def _cost(units: int | None, settings: NotifySettings) -> dict[str, Any] | None:
    if not units:
        return None
    return {
        "custom_model_units_per_copy": units,
        "estimated_usd_per_5_minute_window": round(units * settings.price_per_cmu_minute * 5, 4),
        "estimated_usd_storage_per_month": round(units * settings.storage_price_per_cmu_month, 4),
        "price_per_cmu_minute": settings.price_per_cmu_minute,
        "storage_price_per_cmu_month": settings.storage_price_per_cmu_month,
    }


def success_notification(state: WorkflowState, settings: NotifySettings) -> Notification:
    run, plan, verify = state.run, state.plan, state.verify
    if run is None or plan is None or verify is None:
        raise ValueError("a succeeded execution's state holds plan and verify results")
    started = state.import_
    status = state.import_status
    reused = status is not None and status.status == ImportJobStatus.REUSED
    model = verify.model
    now = datetime.now(UTC)
    cost = _cost(model.custom_model_units, settings)
    details = {
        "outcome": "succeeded",
        "execution_id": state.execution.id,
        "repo_id": run.repo_id,
        "commit": run.commit,
        "model_name": run.model_name,
        "imported_model_arn": model.model_arn,
        "s3_uri": run.s3_uri,
        "job_arn": started.job_arn if started else None,
        "reused": reused,
        "replaced_model_arn": started.replaced_model_arn if started else None,
        "files": plan.manifest.file_count,
        "bytes": plan.manifest.total_bytes,
        "duration_seconds": _duration(run.started_at, now),
        "import_seconds": status.elapsed_seconds if status else None,
        "queue_wait_seconds": state.queue.waited_seconds if state.queue else None,
        "validation": state.validation.model_dump(mode="json") if state.validation else None,
        "verification": verify.model_dump(mode="json", include=set(_VERIFICATION_FIELDS)),
        "model": model.model_dump(mode="json"),
        "cost": cost,
    }
    if reused:
        what = (
            f"{run.model_name} already existed in Amazon Bedrock, so nothing was imported; it answered a test "
            f"prompt. Source: {run.repo_id} (commit {run.commit[:12]})."
        )
    else:
        what = (
            f"{run.repo_id} (commit {run.commit[:12]}) is imported into Amazon Bedrock as {run.model_name} "
            "and answered a test prompt."
        )
    lines = [
        what,
        "",
        f"Model ARN:  {model.model_arn}",
        f"Weights:    {run.s3_uri} ({details['files']} files, {details['bytes']} bytes)",
        f"Took:       {details['duration_seconds']} s in all, {details['import_seconds']} s importing",
    ]
    if state.queue is not None:
        lines.append(
            f"Waited for the import slot: {describe_duration(state.queue.waited_seconds)} in line "
            f"(ticket {state.queue.ticket} in {state.queue.region}; Bedrock runs one import job per Region)"
        )
    lines += [
        f"Reply:      {verify.reply[:300]!r} ({verify.latency_ms} ms, "
        f"{verify.total_tokens} tokens, finish_reason {verify.finish_reason})",
    ]
    speed = f"{verify.tokens_per_second} tokens/s" if verify.tokens_per_second is not None else "speed unknown"
    if verify.cold_start_seconds is not None:
        lines.append(
            f"Cold start: {describe_duration(verify.cold_start_seconds)} from the import's end to the first answer; "
            f"{speed}"
        )
    else:
        lines.append(f"Speed:      {speed}")
    if details["replaced_model_arn"]:
        lines.insert(3, f"Replaced:   {details['replaced_model_arn']} (deleted, as if_exists=replace asked)")
    if cost:
        lines.append(
            f"Cost:       {cost['custom_model_units_per_copy']} Custom Model Units per copy: about "
            f"${cost['estimated_usd_per_5_minute_window']} per active 5-minute window, "
            f"${cost['estimated_usd_storage_per_month']} storage per month (from the stack's price parameters)"
        )
    lines += [
        "",
        "Next: invoke it with bedrock-runtime InvokeModel and an OpenAI chat-completions body, modelId = the ARN.",
    ]
    return Notification(
        outcome="succeeded",
        subject=_subject(
            f"modelferry: {run.model_name} {'verified (already imported)' if reused else 'imported and verified'}"
        ),
        text="\n".join(lines),
        details=details,
    )


def failure_notification(state: WorkflowState, copy_failures: list[CopyFailure] | None = None) -> Notification:
    """`copy_failures`: what each failed file recorded (the Map itself reports only how many items failed)."""
    error = state.failure.error if state.failure else "Unknown"
    message = state.failure.message if state.failure else ""
    stage = state.failed_stage.label if state.failed_stage else "unknown stage"
    run = state.run
    model_name = (run.model_name if run else None) or state.request_field("model_name") or "model"
    repo_id = (run.repo_id if run else None) or state.request_field("repo_id") or "(no repo_id)"
    copy_failures = copy_failures or []
    first_error = copy_failures[0].error if copy_failures else error
    next_step = NEXT_STEPS.get(first_error, DEFAULT_NEXT_STEP)
    details = {
        "outcome": "failed",
        "execution_id": state.execution.id,
        "stage": stage,
        "error": error,
        "cause": message,
        "repo_id": repo_id,
        "model_name": model_name,
        "commit": run.commit if run else None,
        "s3_uri": run.s3_uri if run else None,
        "job_arn": state.import_.job_arn if state.import_ else None,
        "queue_wait_seconds": state.queue.waited_seconds if state.queue else None,
        "failed_files": [record.model_dump(mode="json") for record in copy_failures],
        "next_step": next_step,
    }
    lines = [f"Importing {repo_id} as {model_name} failed at {stage}.", "", f"Error:  {error}", f"Cause:  {message}"]
    for record in copy_failures:
        lines.append(f"File:   {record.path}: {record.error}: {record.message}")
    lines += ["", f"Next:   {next_step}"]
    text = "\n".join(lines)
    return Notification(
        outcome="failed",
        subject=_subject(f"modelferry: {model_name} FAILED at {stage} ({error})"),
        text=text,
        details=details,
    )


def copy_failures(s3: S3Client, bucket: str, layout: RunLayout, limit: int = 5) -> list[CopyFailure]:
    """What the failed copies of a run recorded (at most `limit`), oldest first."""
    return [CopyFailure.model_validate(r) for r in list_records(s3, bucket, layout.copy_failures, limit)]


def event_detail(notification: Notification) -> dict[str, Any]:
    """The EventBridge event's detail: the details as data, and the text a person reads (the SNS message's first
    part), so that a consumer showing the outcome never cuts it out of the SNS body."""
    return {**notification.details, "text": notification.text}


def publish(
    notification: Notification, settings: NotifySettings, *, sns: SNSClient, events: EventBridgeClient
) -> NotifyResult:
    body = f"{notification.text}\n\nDetails:\n{json.dumps(notification.details, indent=2, default=str)}\n"
    message_id = sns.publish(
        TopicArn=settings.topic_arn,
        Subject=notification.subject,
        Message=body,
        MessageAttributes={"outcome": {"DataType": "String", "StringValue": notification.outcome}},
    )["MessageId"]
    response = events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": SUCCEEDED if notification.outcome == "succeeded" else FAILED,
                "Detail": json.dumps(event_detail(notification), default=str),
                "EventBusName": settings.event_bus_name,
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise NotificationFailed(f"EventBridge refused the outcome event: {response['Entries']}")
    return NotifyResult(sns_message_id=message_id, subject=notification.subject)
