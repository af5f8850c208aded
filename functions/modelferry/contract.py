"""The workflow contract: every state's input and result, and the state document they build up.

This is the ground floor of the package: it imports only pydantic and the standard library, so every stage, the
handlers, the CLI and the tests can share it without loading anything heavy. `statemachine/modelferry.asl.json`
moves these documents between states; tests/unit/test_contract.py checks that each `ResultSelector` and `Parameters`
block of the definition names exactly the fields of the model here, so the two cannot drift.

The state document (`WorkflowState`) grows as the execution runs:

    ReceiveRequest  -> request, execution
    Plan            -> plan          (PlanResult)
    CopyFiles       -> (nothing: each file's result stays in its Map child)
    ValidateInS3    -> validation    (ValidateResult)
    JoinImportQueue -> queue         (QueueTurn: sent with the task token when the slot is this run's)
    StartImport     -> import        (ImportStarted)
    CheckImport     -> import_status (ImportStatus; UseExistingModel writes one too)
    ReleaseImportSlot -> queue_release (SlotReleased)
    VerifyModel     -> verify        (VerifyResult)
    Notify*         -> notification  (NotifyResult)
    any Catch       -> failure (Failure), failed_stage (Stage)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

# --- Stages -------------------------------------------------------------------------------------------------------


class Stage(StrEnum):
    """Where an execution is, or where it failed. The value is what the definition's failure states record in
    `failed_stage`; `label` is what a person reads (notifications, `modelferry watch`)."""

    PLAN = "plan"
    COPY = "copy"
    VALIDATE = "validate"
    QUEUE = "queue"
    START_IMPORT = "start_import"
    WAIT_FOR_IMPORT = "wait_for_import"
    VERIFY = "verify"
    NOTIFY = "notify"

    @property
    def label(self) -> str:
        return _STAGE_LABELS[self]


_STAGE_LABELS = {
    Stage.PLAN: "Plan",
    Stage.COPY: "Copy files",
    Stage.VALIDATE: "Validate in S3",
    Stage.QUEUE: "Wait for the import slot",
    Stage.START_IMPORT: "Start import",
    Stage.WAIT_FOR_IMPORT: "Wait for import",
    Stage.VERIFY: "Verify model",
    Stage.NOTIFY: "Notify success",
}


# --- The run and its layout in S3 ---------------------------------------------------------------------------------


class ExecutionInfo(BaseModel):
    """The Step Functions execution (from the context object, `$$.Execution`)."""

    id: str = Field(description="The execution ARN: the correlation id of every stage's logs.")
    name: str
    start_time: str


class RunInfo(BaseModel):
    """Everything later stages need about the run; small enough to travel in the state."""

    run_id: str
    execution_id: str
    started_at: str
    repo_id: str
    revision: str
    commit: str
    model_name: str
    bucket: str
    model_prefix: str
    s3_uri: str
    run_prefix: str
    job_name: str
    client_request_token: str
    import_role_arn: str
    poll_seconds: int
    queue_wait_seconds: int = Field(
        default=172800,
        description="Ceiling on the time in line for the import slot (stack parameter ImportQueueWaitSeconds); the "
        "JoinImportQueue task's TimeoutSecondsPath.",
    )
    if_exists: Literal["fail", "reuse", "replace"]
    verify_prompt: str
    verify_expect: str | None
    verify_max_tokens: int
    allow_quantized: bool
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_prefix)


@dataclass(frozen=True)
class RunLayout:
    """Every key under a run's prefix (`RUNS_PREFIX/<model>/<run id>/`): what each stage records for the others,
    for retries of itself and for people. Only this class spells those keys."""

    run_prefix: str

    @property
    def manifest(self) -> str:
        return f"{self.run_prefix}manifest.json"

    @property
    def copy_items(self) -> str:
        """The Distributed Map's item list: a JSON array of CopyItem (without the per-execution fields)."""
        return f"{self.run_prefix}copy-items.json"

    @property
    def copy_failures(self) -> str:
        """Folder of CopyFailure records, one per file that failed (the Map itself reports only a count)."""
        return f"{self.run_prefix}copy-failures/"

    def copy_failure(self, path: str) -> str:
        return f"{self.copy_failures}{hashlib.sha256(path.encode()).hexdigest()[:16]}.json"

    @property
    def hub_report(self) -> str:
        return f"{self.run_prefix}validation/hub-report.json"

    @property
    def s3_report(self) -> str:
        return f"{self.run_prefix}validation/s3-report.json"

    @property
    def originals(self) -> str:
        """Folder holding the Hub's version of every file Validate in S3 rewrote."""
        return f"{self.run_prefix}original/"

    @property
    def quota_ledger(self) -> str:
        return f"{self.run_prefix}import/quota-wait.json"

    @property
    def replace_ledger(self) -> str:
        return f"{self.run_prefix}import/replaced-model.json"

    @property
    def not_ready_ledger(self) -> str:
        return f"{self.run_prefix}verify/not-ready.json"

    @property
    def verify_result(self) -> str:
        return f"{self.run_prefix}verify/result.json"


# --- The manifest and the copy items ------------------------------------------------------------------------------

# Object metadata written by the copy stage (S3 lowercases user metadata keys).
META_SHA256 = "sha256"
META_BLOB_SHA1 = "git-blob-sha1"
META_SOURCE_COMMIT = "source-commit"
META_SOURCE_REPO = "source-repo"
# Set by Validate in S3 on a file it rewrote (the index): what the object holds now, beside the Hub's checksum.
META_FIXED_SHA256 = "fixed-sha256"


class ManifestEntry(BaseModel):
    """One file to copy from the Hub to S3."""

    model_config = ConfigDict(frozen=True)

    path: str = Field(description="Path inside the Hub repository, e.g. 'model-00001-of-00009.safetensors'.")
    size: int = Field(ge=0, description="Size in bytes as published by the Hub.")
    sha256: str | None = Field(default=None, description="LFS sha256 (hex) for LFS files, else None.")
    blob_id: str | None = Field(default=None, description="Git blob sha1 (hex) for non-LFS files.")
    key: str = Field(description="Destination S3 key.")
    runner: Literal["lambda", "fargate"] = "lambda"


class ExcludedFile(BaseModel):
    path: str
    size: int
    reason: str


class Manifest(BaseModel):
    """What Plan decided to copy, where to, and how to check it. Lives in S3 (`RunLayout.manifest`): it can
    outgrow the 256 KiB state limit."""

    repo_id: str
    revision: str
    commit: str
    bucket: str
    model_prefix: str = Field(description="S3 key prefix the model is copied under; ends with '/'.")
    files: list[ManifestEntry]
    excluded: list[ExcludedFile] = []

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


class RunContext(BaseModel):
    """What every copy task needs to know about its run (small: it is repeated in every Map item)."""

    repo_id: str
    commit: str
    bucket: str
    run_id: str
    run_prefix: str = Field(description="Where a failed copy records its error (RunLayout.copy_failure).")

    @property
    def layout(self) -> RunLayout:
        return RunLayout(self.run_prefix)


class ManifestRef(BaseModel):
    bucket: str
    manifest_key: str
    items_key: str
    file_count: int
    total_bytes: int
    fargate_files: int


class FargateNetwork(BaseModel):
    """Where the Fargate copy task runs (only used when a file is above the Lambda threshold)."""

    subnets: list[str]
    security_groups: list[str]
    assign_public_ip: Literal["ENABLED", "DISABLED"]

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented form
    @property
    def awsvpc_configuration(self) -> dict[str, Any]:
        """RunTask's AwsVpcConfiguration as the definition hands it over. SecurityGroups only when some are given:
        omitted, the task gets the VPC's default security group (Amazon ECS API reference, AwsVpcConfiguration);
        an empty list is not what the API documents."""
        configuration: dict[str, Any] = {"Subnets": self.subnets, "AssignPublicIp": self.assign_public_ip}
        if self.security_groups:
            configuration["SecurityGroups"] = self.security_groups
        return configuration


class HubCheck(BaseModel):
    """Plan's validation of the model on the Hub, before anything is copied; the report is in S3."""

    verdict: Literal["ok", "fixable", "failed"]
    report_key: str
    error: int = 0
    fixable: int = 0
    warning: int = 0
    info: int = 0


# --- Stage inputs (the Lambda payloads the definition builds) -----------------------------------------------------


class StageEvent(BaseModel):
    """Every stage's payload carries the execution ARN: the one correlation id of its logs."""

    execution_id: str


class PlanEvent(StageEvent):
    request: Any = Field(description="The execution input as given; Plan validates it before any side effect.")
    execution: ExecutionInfo


class PlannedCopy(BaseModel):
    """One entry of `RunLayout.copy_items`: the file and its run."""

    file: ManifestEntry
    run: RunContext


class CopyItem(PlannedCopy, StageEvent):
    """One Distributed Map item: a PlannedCopy plus the execution ARN the Map's ItemSelector adds. The Fargate
    copy task receives the same document."""


class ValidateEvent(StageEvent):
    run: RunInfo
    manifest: ManifestRef


class StartImportEvent(StageEvent):
    run: RunInfo


class JoinQueueEvent(StageEvent):
    run: RunInfo
    task_token: str = Field(description="$$.Task.Token: SendTaskSuccess with it gives this run the import slot.")


class ReleaseSlotEvent(StageEvent):
    """The holder gives the slot up (its job ended); the next in line gets it."""


class CheckImportEvent(StageEvent):
    job_arn: str


class VerifyEvent(StageEvent):
    run: RunInfo
    model_arn: str


# --- Stage results ------------------------------------------------------------------------------------------------


class PlanResult(BaseModel):
    run: RunInfo
    manifest: ManifestRef
    validation: HubCheck
    fargate: FargateNetwork


class CopyResult(BaseModel):
    path: str
    key: str
    size: int
    sha256: str | None = Field(description="sha256 of the bytes copied (for a skipped file: the recorded one).")
    skipped: bool = Field(description="The object was already there, verified: nothing was read from the Hub.")
    bytes_copied: int
    seconds: float
    parts: int = Field(description="1 for a single PutObject, 0 when skipped.")
    part_size: int
    peak_buffered_bytes: int = Field(description="Most bytes held in part buffers at once.")


class CopyFailure(BaseModel):
    """What a failed copy records under `RunLayout.copy_failure(path)` for the failure notification: a failed
    Distributed Map item reaches the parent only as `States.ExceedToleratedFailureThreshold`."""

    path: str
    error: str
    message: str


class AppliedFixSummary(BaseModel):
    path: str
    rule_code: str
    original_sha256: str
    fixed_sha256: str
    backup: str


class ValidateResult(BaseModel):
    verdict: Literal["ok", "fixable", "failed"]
    files_verified: int
    bytes_verified: int
    fixes: list[AppliedFixSummary]
    report_key: str
    warnings: int


class ImportJobStatus(StrEnum):
    """The job statuses the workflow acts on. Bedrock's GetModelImportJob answers InProgress, Completed or Failed
    (botocore's `bedrock` model); `Reused` is the workflow's own, written by the UseExistingModel state when an
    existing model is verified instead of imported."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    REUSED = "Reused"


class QueueTurn(BaseModel):
    """The output of SendTaskSuccess to a run waiting in line: the import slot is its own from `granted_at`."""

    region: str
    ticket: int = Field(description="Place in the order of arrival: tickets grow by one per run that joins.")
    queued_at: str
    granted_at: str
    waited_seconds: int


class QueuePlace(BaseModel):
    """Where a run stands in line (what JoinImportQueue logs, `modelferry status` and `modelferry queue` show)."""

    execution_arn: str
    model_name: str
    ticket: int
    queued_at: str
    position: int = Field(description="0 for the slot holder, 1 for the first in line, ...")
    holder: str | None = Field(description="Execution ARN of the run holding the slot, if any.")
    holder_model: str | None = None


class SlotReleased(BaseModel):
    released: bool = Field(description="This run held the slot and gave it up now (False on a repeated call).")
    next_execution: str | None = Field(description="The run the slot went to, if anyone was in line.")


class ImportStarted(BaseModel):
    job_arn: str | None
    job_name: str
    started_at: str
    reused_model_arn: str | None = None
    replaced_model_arn: str | None = None


class ImportStatus(BaseModel):
    # A plain string: a status Bedrock may add later reaches the definition's UnexpectedImportStatus state.
    status: str
    job_arn: str | None
    imported_model_arn: str | None = None
    elapsed_seconds: int


class ModelDescription(BaseModel):
    model_arn: str
    architecture: str | None
    instruct_supported: bool | None
    custom_model_units: int | None
    custom_model_units_version: str | None
    created_at: str | None = Field(
        default=None, description="GetImportedModel's creationTime: when the import made the model (ISO 8601)."
    )


class VerifyResult(BaseModel):
    model: ModelDescription
    reply: str
    reasoning: str | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    latency_ms: int
    tokens_per_second: float | None = Field(description="Completion tokens over the call's latency.")
    cold_start_seconds: int | None = Field(
        description="From the import's completion (the model's creationTime) to this first answer (the reply's Date), "
        "both on Bedrock's clock; None for a model this run did not import (reused)."
    )


class NotifyResult(BaseModel):
    sns_message_id: str
    subject: str


class Failure(BaseModel):
    """What a Catch records: the error name (an exception class name, or a `States.*` error) and its cause."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(alias="Error")
    cause: str | None = Field(default=None, alias="Cause")

    @property
    def message(self) -> str:
        return cause_message(self.cause)


def cause_message(cause: str | None) -> str:
    """What a person reads of a failure's Cause: a Lambda failure's is a JSON document holding `errorMessage`;
    other causes are plain text."""
    if not cause:
        return ""
    try:
        document = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(document, dict):
        return str(document.get("errorMessage") or document.get("Cause") or cause)
    return cause


# --- The whole state document -------------------------------------------------------------------------------------


class WorkflowState(BaseModel):
    """The execution's state document, as Notify receives it and as `DescribeExecution` returns it."""

    model_config = ConfigDict(populate_by_name=True)

    request: Any = Field(description="The execution input as given: a dict when it is well formed, else anything.")
    execution: ExecutionInfo
    plan: PlanResult | None = None
    validation: ValidateResult | None = None
    queue: QueueTurn | None = None
    import_: ImportStarted | None = Field(default=None, alias="import")
    import_status: ImportStatus | None = None
    queue_release: SlotReleased | None = None
    verify: VerifyResult | None = None
    notification: NotifyResult | None = None
    failure: Failure | None = None
    failed_stage: Stage | None = None
    notification_error: Failure | None = None

    @property
    def run(self) -> RunInfo | None:
        return self.plan.run if self.plan else None

    def request_field(self, name: str) -> str | None:
        """A field of the execution input as short printable text, or None: before Plan validated it, the input
        may hold anything, even a non-object."""
        value = self.request.get(name) if isinstance(self.request, dict) else None
        return value[:100] if isinstance(value, str) and value.isprintable() else None


class NotifyEvent(StageEvent):
    outcome: Literal["succeeded", "failed"]
    state: WorkflowState
