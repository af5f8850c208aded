"""Where an execution is: its stages, the copy's bytes per file, the import job, the outcome.

Built only from reads a person's credentials allow: Step Functions DescribeExecution, GetExecutionHistory,
ListMapRuns / DescribeMapRun, and S3 reads of the run's item list, the copied objects and the multipart uploads in
flight. Nothing here writes. S3 reads are best effort: without them the view still shows stages and file counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter

from modelferry.contract import ExecutionInfo, PlannedCopy, QueuePlace, Stage, WorkflowState
from modelferry.contract import cause_message as lambda_error_message
from modelferry.stages.queue import place_of

if TYPE_CHECKING:
    from modelferry.adapters.import_queue import ImportQueue


def row_of(stage: Stage) -> str:
    """The row `watch` shows a stage on: the stage's last word, so that starting the import and waiting for it share
    one row ("Import") and the rows stay one word wide."""
    return stage.value.rsplit("_", 1)[-1].capitalize()


ROWS = tuple(dict.fromkeys(row_of(stage) for stage in Stage))  # Plan, Copy, Validate, Queue, Import, Verify, Notify

# Top-level states of statemachine/modelferry.asl.json -> their stage; each failure state (PlanFailed...) belongs to
# the stage it records in failed_stage. A state not listed (added to the definition later) shows under its own name.
STAGE_OF_STATE: dict[str, Stage] = {
    "ReceiveRequest": Stage.PLAN,
    "Plan": Stage.PLAN,
    "PlanFailed": Stage.PLAN,
    "CopyFiles": Stage.COPY,
    "CopyFailed": Stage.COPY,
    "ValidateInS3": Stage.VALIDATE,
    "ValidateFailed": Stage.VALIDATE,
    "JoinImportQueue": Stage.QUEUE,
    "ImportQueueWaitTimedOut": Stage.QUEUE,
    "QueueFailed": Stage.QUEUE,
    "StartImport": Stage.START_IMPORT,
    "IsExistingModelReused": Stage.START_IMPORT,
    "UseExistingModel": Stage.START_IMPORT,
    "StartImportFailed": Stage.START_IMPORT,
    "WaitForImport": Stage.WAIT_FOR_IMPORT,
    "CheckImport": Stage.WAIT_FOR_IMPORT,
    "IsImportComplete": Stage.WAIT_FOR_IMPORT,
    "UnexpectedImportStatus": Stage.WAIT_FOR_IMPORT,
    "WaitForImportFailed": Stage.WAIT_FOR_IMPORT,
    "ReleaseImportSlot": Stage.WAIT_FOR_IMPORT,
    "VerifyModel": Stage.VERIFY,
    "VerifyFailed": Stage.VERIFY,
    "NotifySuccess": Stage.NOTIFY,
    "NotifySuccessFailed": Stage.NOTIFY,
    "NotifyFailure": Stage.NOTIFY,
}
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_ITEM_LIST = TypeAdapter(list[PlannedCopy])


@dataclass
class StageRow:
    name: str
    state: str = "pending"  # pending | running | done | failed
    started: datetime | None = None
    ended: datetime | None = None

    def shows(self, stage: Stage) -> bool:
        return self.name == row_of(stage)

    def seconds(self, now: datetime) -> float | None:
        if self.started is None:
            return None
        return ((self.ended or now) - self.started).total_seconds()


@dataclass
class FileProgress:
    path: str
    size: int
    done_bytes: int = 0
    state: str = "waiting"  # waiting | copying | done


@dataclass
class Snapshot:
    execution_arn: str
    name: str
    status: str
    started: datetime
    stopped: datetime | None
    now: datetime
    stages: list[StageRow]
    repo_id: str | None = None
    model_name: str | None = None
    commit: str | None = None
    s3_uri: str | None = None
    file_count: int | None = None
    total_bytes: int | None = None
    items_location: tuple[str, str] | None = None  # (bucket, key) of the Map's item list written by Plan
    files: list[FileProgress] = field(default_factory=list)
    map_counts: dict[str, int] = field(default_factory=dict)
    queue_place: QueuePlace | None = None  # where the run stands in line, read from the queue's table while it waits
    queue_waited_seconds: int | None = None  # how long it waited for the slot, once it got it
    job_name: str | None = None
    job_status: str | None = None
    job_elapsed_seconds: float | None = None
    job_polls: int = 0
    retry: tuple[str, str, int] | None = None  # (state, last error, attempt running or next) of a retried Task
    fixes: list[str] = field(default_factory=list)
    reply: str | None = None
    imported_model_arn: str | None = None
    failed_stage: Stage | None = None
    error: str | None = None
    cause: str | None = None
    notes: list[str] = field(default_factory=list)

    def row(self, stage: Stage) -> StageRow:
        return next(row for row in self.stages if row.shows(stage))

    @property
    def current_stage(self) -> StageRow | None:
        running = [s for s in self.stages if s.state == "running"]
        return running[-1] if running else None

    @property
    def done_bytes(self) -> int:
        return sum(f.done_bytes for f in self.files)

    @property
    def files_done(self) -> int:
        if self.files:
            return sum(f.state == "done" for f in self.files)
        return self.map_counts.get("succeeded", 0)

    @property
    def elapsed_seconds(self) -> float:
        return ((self.stopped or self.now) - self.started).total_seconds()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "name": self.name,
            "status": self.status,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "stage": self.current_stage.name if self.current_stage else None,
            "stages": [
                {"name": s.name, "state": s.state, "seconds": s.seconds(self.now)} for s in self.stages if s.started
            ],
            "repo_id": self.repo_id,
            "model_name": self.model_name,
            "commit": self.commit,
            "s3_uri": self.s3_uri,
            "files": {"count": self.file_count, "done": self.files_done, "map": self.map_counts},
            "bytes": {"total": self.total_bytes, "done": self.done_bytes if self.files else None},
            "queue": {
                "position": self.queue_place.position if self.queue_place else None,
                "holder": self.queue_place.holder if self.queue_place else None,
                "holder_model": self.queue_place.holder_model if self.queue_place else None,
                "waited_seconds": self.queue_waited_seconds,
            },
            "import": {
                "job_name": self.job_name,
                "status": self.job_status,
                "elapsed_seconds": self.job_elapsed_seconds,
                "polls": self.job_polls,
            },
            "imported_model_arn": self.imported_model_arn,
            "failed_stage": self.failed_stage.value if self.failed_stage else None,
            "reply": self.reply,
            "error": self.error,
            "cause": self.cause,
            "notes": self.notes,
        }


# --- reading AWS ---------------------------------------------------------------------------------------------------
def new_history_events(sfn: Any, execution_arn: str, after_id: int) -> list[dict[str, Any]]:
    """The events after `after_id`, oldest first. Asks for the newest first and stops once past what was already
    seen, so polling an import that runs for hours does not read the whole history every few seconds. (A server
    that ignores reverseOrder, as moto does, is read to the end: slower, still right.)"""
    newer: dict[int, dict[str, Any]] = {}
    previous: int | None = None
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, includeExecutionData=True, reverseOrder=True
    )
    for page in pages:
        for event in page["events"]:
            number = int(event["id"])
            if number > after_id:
                newer[number] = event
            elif previous is not None and previous > number:
                return [newer[key] for key in sorted(newer)]
            previous = number
    return [newer[key] for key in sorted(newer)]


class Watcher:
    """Takes snapshots of one execution; keeps the history read so far and the item list between them."""

    def __init__(self, execution_arn: str, *, sfn: Any, s3: Any, queue: ImportQueue | None = None) -> None:
        self.execution_arn = execution_arn
        self.sfn = sfn
        self.s3 = s3
        self.queue = queue  # the Region's import line (DynamoDB), to say where a waiting run stands
        self._items: list[PlannedCopy] | None = None
        self._events: list[dict[str, Any]] = []
        self._s3_note: str | None = None

    def snapshot(self) -> Snapshot:
        described = self.sfn.describe_execution(executionArn=self.execution_arn)
        last_id = self._events[-1]["id"] if self._events else 0
        self._events.extend(new_history_events(self.sfn, self.execution_arn, last_id))
        events = self._events
        now = datetime.now(UTC)
        snap = from_history(described, events, now)
        if snap.row(Stage.COPY).started is not None:
            self._add_map_counts(snap)
            self._add_file_bytes(snap)
        if snap.row(Stage.QUEUE).state == "running" and not snap.finished:
            self._add_queue_place(snap)
        if self._s3_note:
            snap.notes.append(self._s3_note)
        return snap

    def _add_queue_place(self, snap: Snapshot) -> None:
        if self.queue is None:
            return
        try:
            snap.queue_place = place_of(self.queue, self.execution_arn)
        except LookupError:
            snap.notes.append("not in the import line yet (or just left it)")
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            snap.notes.append(
                f"place in line unavailable ({code}); it needs dynamodb:GetItem and dynamodb:Query on the stack's "
                "ImportQueueTableName"
            )

    def _add_map_counts(self, snap: Snapshot) -> None:
        runs = self.sfn.list_map_runs(executionArn=self.execution_arn).get("mapRuns") or []
        if runs:
            counts = self.sfn.describe_map_run(mapRunArn=runs[-1]["mapRunArn"]).get("itemCounts") or {}
            snap.map_counts = {k: int(v) for k, v in counts.items() if isinstance(v, int)}

    def _add_file_bytes(self, snap: Snapshot) -> None:
        if self.s3 is None or snap.s3_uri is None:
            return
        copy = snap.row(Stage.COPY)
        try:
            items = self._item_list(snap)
            if items is None:
                return
            bucket, prefix = _split_s3_uri(snap.s3_uri)
            files = [FileProgress(item.file.path, item.file.size) for item in items]
            if copy.state == "done":
                for f in files:
                    f.done_bytes, f.state = f.size, "done"
            else:
                present = self._present_keys(bucket, prefix)
                in_flight = self._bytes_in_flight(bucket, prefix)
                for item, f in zip(items, files, strict=True):
                    key = item.file.key
                    if key in present:
                        f.done_bytes, f.state = f.size, "done"
                    elif key in in_flight:
                        f.done_bytes, f.state = min(in_flight[key], f.size), "copying"
            snap.files = files
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
            self._s3_note = (
                f"per-file bytes unavailable ({code}); they need s3:GetObject on the runs prefix and s3:ListBucket, "
                "s3:ListBucketMultipartUploads, s3:ListMultipartUploadParts on the model bucket"
            )

    def _item_list(self, snap: Snapshot) -> list[PlannedCopy] | None:
        if self._items is None and snap.items_location is not None:
            bucket, key = snap.items_location
            self._items = _ITEM_LIST.validate_json(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return self._items

    def _present_keys(self, bucket: str, prefix: str) -> set[str]:
        keys: set[str] = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.update(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def _bytes_in_flight(self, bucket: str, prefix: str) -> dict[str, int]:
        """Bytes already uploaded per key, from the multipart uploads in progress (the largest if several)."""
        found: dict[str, int] = {}
        uploads = self.s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads") or []
        for upload in uploads:
            parts = self.s3.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]).get("Parts")
            done = sum(int(p["Size"]) for p in parts or [])
            found[upload["Key"]] = max(found.get(upload["Key"], 0), done)
        return found


def _split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


# --- the history, read as stages ---------------------------------------------------------------------------------
def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def _state_of(details: dict[str, Any]) -> WorkflowState | None:
    """The state document an exited state (or the execution) output. Every top-level state outputs a whole
    WorkflowState, partial until the run ends; a Distributed Map's children are separate executions, not in this
    history. None only when Step Functions left the output out: truncated, or the history read without data."""
    output = details.get("output")
    if not isinstance(output, str) or (details.get("outputDetails") or {}).get("truncated"):
        return None
    return WorkflowState.model_validate_json(output)


def error_message(cause: str | None) -> str | None:
    """What a person reads of an execution's cause (None when it has none)."""
    return lambda_error_message(cause) if cause is not None else None


def initial_state(described: Mapping[str, Any]) -> WorkflowState:
    """The state document as ReceiveRequest makes it from the execution's input: readable before the first state
    ran, and whatever the input holds (Plan refuses a malformed one; it may not even be an object)."""
    text = described.get("input")
    try:
        request = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        request = text
    return WorkflowState(
        request=request,
        execution=ExecutionInfo(
            id=described["executionArn"],
            name=_name_of(described),
            start_time=described["startDate"].isoformat(),
        ),
    )


def _name_of(described: Mapping[str, Any]) -> str:
    return str(described.get("name") or described["executionArn"].rsplit(":", 1)[-1])


def from_history(described: dict[str, Any], events: list[dict[str, Any]], now: datetime) -> Snapshot:
    snap = Snapshot(
        execution_arn=described["executionArn"],
        name=_name_of(described),
        status=described["status"],
        started=described["startDate"],
        stopped=described.get("stopDate"),
        now=now,
        stages=[StageRow(name) for name in ROWS],
    )
    request = initial_state(described)
    snap.repo_id, snap.model_name = request.request_field("repo_id"), request.request_field("model_name")
    reader = _HistoryReader(snap)
    for event in events:
        reader.read(event)
    reader.finish()
    if snap.status in TERMINAL and snap.status != "SUCCEEDED":
        snap.error = described.get("error") or snap.status
        snap.cause = error_message(described.get("cause"))
    return snap


class _HistoryReader:
    """Walks the history once: which stage runs, which finished or failed, what each state reported."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.rows = {s.name: s for s in snap.stages}
        self.current: StageRow | None = None
        self.task_state: str | None = None
        self.attempts = 0
        self.last_error: str | None = None
        self.waiting_to_retry = False
        self.last_exit: datetime | None = None  # when the current stage's latest state exited

    def read(self, event: dict[str, Any]) -> None:
        kind, details, at = event["type"], _details(event), event["timestamp"]
        if kind.endswith("StateEntered"):
            self._entered(kind, details.get("name", ""), at)
        elif kind == "TaskScheduled":
            self.attempts += 1
            self.waiting_to_retry = False
        elif kind in {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed"}:
            self.last_error = details.get("error")
            self.waiting_to_retry = True
        elif kind.endswith("StateExited"):
            state = _state_of(details)
            if state is not None:
                _read_state(self.snap, details.get("name", ""), state)
                if state.failed_stage is not None and self.snap.failed_stage is None:
                    self._failed(state.failed_stage, at)
            self.last_exit = at
            if details.get("name") == self.task_state:
                self.last_error = None
        elif kind in {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}:
            self._end("done" if kind == "ExecutionSucceeded" else "failed", at)
            state = _state_of(details) if kind == "ExecutionSucceeded" else None
            if state is not None:
                _read_state(self.snap, "", state)

    def _entered(self, kind: str, name: str, at: datetime) -> None:
        if kind.startswith(("Fail", "Succeed")):
            self._end("done", at)  # the last stage finished; the execution's own event says how it ended
            return
        stage = STAGE_OF_STATE.get(name)
        row_name = row_of(stage) if stage is not None else name
        row = self.rows.get(row_name)
        if row is None:
            row = self.rows[row_name] = StageRow(row_name)
            self.snap.stages.append(row)
        if row.state == "failed":
            return  # NotifyFailure after NotifySuccess failed: that row stays failed
        if row is not self.current:
            self._end("done", at)
            row.state, row.started, row.ended = "running", row.started or at, None
            self.current, self.last_exit = row, None
        self.task_state, self.attempts, self.last_error = name, 0, None

    def _failed(self, stage: Stage, at: datetime) -> None:
        """The state now records the failed stage (a failure state ran): its row failed, whichever row was open."""
        self.snap.failed_stage = stage
        row = self.rows[row_of(stage)]
        if row is self.current:
            self.current = None
        else:
            self._end("done", at)
        row.state, row.started, row.ended = "failed", row.started or at, at

    def _end(self, state: str, at: datetime) -> None:
        """Close the running stage: a finished one at its last state's exit, a failed one at the failure."""
        if self.current is not None and self.current.state == "running":
            ended = self.last_exit if state == "done" and self.last_exit is not None else at
            self.current.state, self.current.ended = state, ended
        self.current = None

    def finish(self) -> None:
        if self.current is not None and self.task_state and self.last_error and self.attempts >= 1:
            attempt = self.attempts + 1 if self.waiting_to_retry else self.attempts
            self.snap.retry = (self.task_state, self.last_error, attempt)


def _read_state(snap: Snapshot, state_name: str, state: WorkflowState) -> None:
    if state.plan is not None:
        run, manifest = state.plan.run, state.plan.manifest
        snap.repo_id, snap.model_name, snap.commit, snap.s3_uri = run.repo_id, run.model_name, run.commit, run.s3_uri
        snap.file_count, snap.total_bytes = manifest.file_count, manifest.total_bytes
        snap.items_location = (manifest.bucket, manifest.items_key)
    if state.validation is not None:
        snap.fixes = [f"{fix.path} ({fix.rule_code})" for fix in state.validation.fixes]
    if state.queue is not None:
        snap.queue_waited_seconds = state.queue.waited_seconds
    if state.import_ is not None:
        snap.job_name = state.import_.job_name
    if state.import_status is not None:
        snap.job_status = state.import_status.status
        snap.job_elapsed_seconds = state.import_status.elapsed_seconds
        snap.imported_model_arn = state.import_status.imported_model_arn
        if state_name == "CheckImport":
            snap.job_polls += 1
    if state.verify is not None:
        snap.reply = state.verify.reply
