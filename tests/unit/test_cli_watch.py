"""`modelferry watch` / `status`: the history read as stages, bytes per file from S3 (objects and multipart uploads in
flight), retries, failures with what to do, and each plain line printed once. (A real local run is watched in
tests/workflow/test_triggers.py; here the history is written out, to reach states a fast local run passes by.)"""

from __future__ import annotations

import inspect
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from pydantic import ValidationError

from modelferry import errors
from modelferry.contract import Stage
from modelferry.stages.notify import NEXT_STEPS
from modelferry_cli import executions_cmd
from modelferry_cli.progress import ROWS, STAGE_OF_STATE, Watcher
from modelferry_cli.watch_view import LiveReporter, PlainReporter, bar, human_bytes, human_seconds, render_block

REGION = "us-east-1"
BUCKET = "modelferry-unit-models"
ARN = "arn:aws:states:us-east-1:123456789012:execution:modelferry:run-1"
T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
MODEL_PREFIX = "models/gpt-oss-20b/abc123/"
MIB = 1024 * 1024
FILES = [
    ("config.json", 1200),
    ("model-00001-of-00002.safetensors", 12 * MIB),
    ("model-00002-of-00002.safetensors", 9 * MIB),
]


def _event(kind: str, second: float, **details: Any) -> dict[str, Any]:
    key = {
        "StateEntered": "stateEnteredEventDetails",
        "StateExited": "stateExitedEventDetails",
        "TaskFailed": "taskFailedEventDetails",
        "ExecutionFailed": "executionFailedEventDetails",
        "ExecutionSucceeded": "executionSucceededEventDetails",
    }
    detail_key = next((v for k, v in key.items() if kind.endswith(k)), None)
    event: dict[str, Any] = {"type": kind, "timestamp": T0 + timedelta(seconds=second)}
    if detail_key:
        event[detail_key] = details
    return event


ITEMS_KEY = "modelferry-runs/run-1/copy-items.json"
# The state documents below are the captured run's (events/notify-succeeded.json) as each state left them, with
# this test's model, files and timings.
CAPTURED = json.loads((Path(__file__).resolve().parents[2] / "events" / "notify-succeeded.json").read_text())["state"]
REQUEST = {"repo_id": "openai/gpt-oss-20b", "model_name": "gpt-oss-20b"}
PLAN = {
    **CAPTURED["plan"],
    "run": {
        **CAPTURED["plan"]["run"],
        **REQUEST,
        "commit": "abc123",
        "bucket": BUCKET,
        "model_prefix": MODEL_PREFIX,
        "s3_uri": f"s3://{BUCKET}/{MODEL_PREFIX}",
    },
    "manifest": {
        **CAPTURED["plan"]["manifest"],
        "bucket": BUCKET,
        "items_key": ITEMS_KEY,
        "file_count": len(FILES),
        "total_bytes": sum(size for _, size in FILES),
    },
}
RECEIVED = {"request": REQUEST, "execution": {"id": ARN, "name": "run-1", "start_time": T0.isoformat()}}
PLAN_OUTPUT = {**RECEIVED, "plan": PLAN}
VALIDATED = {**PLAN_OUTPUT, "validation": {**CAPTURED["validation"], "fixes": []}}
TURN = {
    "region": "us-east-1",
    "ticket": 7,
    "queued_at": "2026-12-02T20:00:11+00:00",
    "granted_at": "2026-12-02T20:00:11+00:00",
    "waited_seconds": 0,
}
QUEUED = {**VALIDATED, "queue": TURN}
IMPORT_STARTED = {**QUEUED, "import": {**CAPTURED["import"], "job_name": "mf-x"}}
IMPORTED = {
    **IMPORT_STARTED,
    "import_status": {**CAPTURED["import_status"], "status": "Completed", "elapsed_seconds": 590},
}
VERIFIED = {**IMPORTED, "verify": CAPTURED["verify"]}
PLANNED = [
    _event("ExecutionStarted", 0),
    _event("TaskStateEntered", 0.1, name="Plan"),
    _event("TaskScheduled", 0.1),
    _event("TaskStateExited", 2.0, name="Plan", output=json.dumps(PLAN_OUTPUT)),
    _event("MapStateEntered", 2.1, name="CopyFiles"),
]


class FakeStepFunctions:
    """The four read calls the watcher makes, answering from a written-out history (pages of two events)."""

    def __init__(self, events: list[dict[str, Any]], status: str = "RUNNING", **described: Any) -> None:
        self.events = [{**event, "id": number} for number, event in enumerate(events, start=1)]
        self.pages_read = 0
        self.honours_reverse_order = True
        self.described = {
            "executionArn": ARN,
            "name": "run-1",
            "status": status,
            "startDate": T0,
            "input": json.dumps({"repo_id": "openai/gpt-oss-20b", "model_name": "gpt-oss-20b"}),
            **described,
        }
        self.map_counts = {"pending": 1, "running": 1, "succeeded": 1, "failed": 0, "total": 3}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        assert executionArn == ARN
        return self.described

    def get_paginator(self, operation: str) -> Any:
        assert operation == "get_execution_history"
        fake = self

        class Paginator:
            def paginate(self, *, reverseOrder: bool = False, **_: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
                events = fake.events[::-1] if reverseOrder and fake.honours_reverse_order else fake.events
                for start in range(0, len(events), 2):
                    fake.pages_read += 1
                    yield {"events": events[start : start + 2]}

        return Paginator()

    def list_map_runs(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"mapRuns": [{"mapRunArn": "arn:aws:states:us-east-1:123456789012:mapRun:modelferry/CopyFiles:1"}]}

    def describe_map_run(self, mapRunArn: str) -> dict[str, Any]:  # noqa: N803
        return {"itemCounts": self.map_counts}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unit")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit")
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET)
        run = {"repo_id": REQUEST["repo_id"], "commit": "abc123", "bucket": BUCKET, "run_id": "run-1"}
        items = [
            {
                "file": {"path": p, "size": s, "key": MODEL_PREFIX + p},
                "run": {**run, "run_prefix": "modelferry-runs/run-1/"},
            }
            for p, s in FILES
        ]
        client.put_object(Bucket=BUCKET, Key=ITEMS_KEY, Body=json.dumps(items).encode())
        yield client


def test_bytes_per_file_come_from_objects_and_uploads_in_flight(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=MODEL_PREFIX + "config.json", Body=b"x" * 1200)
    shard = MODEL_PREFIX + "model-00001-of-00002.safetensors"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=shard)["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=shard, UploadId=upload, PartNumber=1, Body=b"\0" * (5 * MIB))

    snap = Watcher(ARN, sfn=FakeStepFunctions(PLANNED), s3=s3).snapshot()

    assert [(f.path, f.state, f.done_bytes) for f in snap.files] == [
        ("config.json", "done", 1200),
        ("model-00001-of-00002.safetensors", "copying", 5 * MIB),
        ("model-00002-of-00002.safetensors", "waiting", 0),
    ]
    assert snap.current_stage is not None
    assert snap.current_stage.name == "Copy"
    assert [s.state for s in snap.stages] == ["done", "running", "pending", "pending", "pending", "pending", "pending"]
    block = "\n".join(render_block(snap))
    assert f"1/3 files  {bar(1200 + 5 * MIB, 21 * MIB + 1200)}" in block
    assert "model-00001-of-00002.safetensors  [########------------]  42%  5.0 MiB of 12.0 MiB" in block
    assert "  >>  Copy " in block
    assert "  ..  Validate" in block


def test_without_s3_access_the_view_keeps_stages_and_file_counts(s3: Any) -> None:
    class Refusing:
        def get_object(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")

    snap = Watcher(ARN, sfn=FakeStepFunctions(PLANNED), s3=Refusing()).snapshot()

    assert snap.files == []
    assert snap.files_done == 1  # from the map run's item counts
    (note,) = snap.notes
    assert note.startswith("per-file bytes unavailable (AccessDenied)")
    block = "\n".join(render_block(snap))
    assert "1/3 files  [#######-------------]  33%  (1 copying)" in block
    assert f"  note     {note}" in block


def _verify_history(*tail: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *PLANNED,
        _event("MapStateExited", 10, name="CopyFiles", output=json.dumps(PLAN_OUTPUT)),
        _event("TaskStateEntered", 10, name="ValidateInS3"),
        _event("TaskStateExited", 11, name="ValidateInS3", output=json.dumps(VALIDATED)),
        _event("TaskStateEntered", 11, name="JoinImportQueue"),
        _event("TaskStateExited", 11, name="JoinImportQueue", output=json.dumps(QUEUED)),
        _event("TaskStateEntered", 11, name="StartImport"),
        _event("TaskStateExited", 12, name="StartImport", output=json.dumps(IMPORT_STARTED)),
        _event("TaskStateEntered", 600, name="CheckImport"),
        _event("TaskStateExited", 601, name="CheckImport", output=json.dumps(IMPORTED)),
        _event("TaskStateEntered", 601, name="VerifyModel"),
        _event("TaskScheduled", 601),
        _event("TaskFailed", 602, error="ModelNotReady", cause="{}"),
        *tail,
    ]


def test_a_task_being_retried_shows_its_error_and_attempt(s3: Any) -> None:
    waiting = Watcher(ARN, sfn=FakeStepFunctions(_verify_history()), s3=s3).snapshot()
    running = Watcher(ARN, sfn=FakeStepFunctions(_verify_history(_event("TaskScheduled", 662))), s3=s3).snapshot()

    assert waiting.retry == ("VerifyModel", "ModelNotReady", 2)  # failed once: the second attempt comes next
    assert running.retry == ("VerifyModel", "ModelNotReady", 2)  # the second attempt is running
    assert waiting.job_status == "Completed"
    assert waiting.job_polls == 1
    assert "  retry    VerifyModel: attempt 2 after ModelNotReady" in render_block(waiting)
    assert "mf-x  Completed  9 min 50 s (1 polls)" in "\n".join(render_block(waiting))


def test_a_failed_execution_names_the_stage_the_cause_and_what_to_do(s3: Any) -> None:
    message = "imported-model/x is still cold after 20 min (1200 s)"
    cause = json.dumps({"errorType": "ModelNotReadyTimedOut", "errorMessage": message})
    caught = {**IMPORTED, "failure": {"Error": "ModelNotReadyTimedOut", "Cause": cause}}
    recorded = {**caught, "failed_stage": "verify"}
    notified = {**recorded, "notification": {"sns_message_id": "m-1", "subject": "modelferry: gpt-oss-20b FAILED"}}
    events = _verify_history(
        _event("TaskStateExited", 1800, name="VerifyModel", output=json.dumps(caught)),
        _event("PassStateEntered", 1800, name="VerifyFailed"),
        _event("PassStateExited", 1800, name="VerifyFailed", output=json.dumps(recorded)),
        _event("TaskStateEntered", 1800, name="NotifyFailure"),
        _event("TaskStateExited", 1801, name="NotifyFailure", output=json.dumps(notified)),
        _event("FailStateEntered", 1801, name="ImportFailed"),
        _event("ExecutionFailed", 1801, error="ModelNotReadyTimedOut", cause=cause),
    )
    sfn = FakeStepFunctions(
        events, "FAILED", stopDate=T0 + timedelta(seconds=1801), error="ModelNotReadyTimedOut", cause=cause
    )

    snap = Watcher(ARN, sfn=sfn, s3=s3).snapshot()

    assert [(s.name, s.state) for s in snap.stages] == [
        ("Plan", "done"),
        ("Copy", "done"),
        ("Validate", "done"),
        ("Queue", "done"),
        ("Import", "done"),
        ("Verify", "failed"),
        ("Notify", "done"),
    ]
    assert snap.retry is None
    block = render_block(snap)
    assert "  result   FAILED at Verify after 30 min 1 s: ModelNotReadyTimedOut" in block
    assert f"  cause    {message}" in block
    assert f"  next     {NEXT_STEPS['ModelNotReadyTimedOut']}" in block
    assert snap.to_json()["stages"][5] == {"name": "Verify", "state": "failed", "seconds": 1199.0}


def test_plain_lines_are_printed_once_and_the_live_view_redraws_over_itself(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key=MODEL_PREFIX + "config.json", Body=b"x" * 1200)
    snap = Watcher(ARN, sfn=FakeStepFunctions(PLANNED), s3=s3).snapshot()
    out = io.StringIO()
    plain = PlainReporter(out)
    plain.show(snap)
    first = out.getvalue()
    plain.show(snap)
    assert out.getvalue() == first
    assert [line[10:] for line in first.splitlines()] == [
        f"watching run-1 ({ARN})",
        "openai/gpt-oss-20b -> gpt-oss-20b",
        "Plan started",
        "Plan done in 1.9 s: 3 files, 21.0 MiB at commit abc123",
        "Copy started",
        "  copied config.json (1.2 KiB)",
        f"Copy 1/3 files  {bar(1200, 21 * MIB + 1200)}  1.2 KiB of 21.0 MiB",
    ]

    screen = io.StringIO()
    live = LiveReporter(screen)
    live.show(snap)
    height = len(screen.getvalue().splitlines())
    live.show(snap)
    assert screen.getvalue().count(f"\x1b[{height}F\x1b[J") == 1


@pytest.mark.parametrize(
    ("function", "value", "text"),
    [
        (human_bytes, 0, "0 B"),
        (human_bytes, 1536, "1.5 KiB"),
        (human_bytes, 5 * 1024**3, "5.0 GiB"),
        (human_bytes, 3 * 1024**4, "3072.0 GiB"),
        (human_seconds, 59.94, "59.9 s"),
        (human_seconds, 125, "2 min 5 s"),
        (human_seconds, 3725, "1 h 2 min"),
    ],
)
def test_sizes_and_durations_read_as_people_write_them(function: Any, value: float, text: str) -> None:
    assert function(value) == text


def test_bars_are_clamped_and_an_empty_total_is_complete() -> None:
    assert bar(1, 4) == "[#####---------------]  25%"
    assert bar(9, 4) == "[####################] 100%"
    assert bar(0, 0) == "[####################] 100%"


def test_the_troubleshooting_table_covers_every_error_a_run_can_end_with() -> None:
    """docs/operations.md: one row per named error (the ERROR `watch` prints), each with a next step."""
    table = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text().split("## Troubleshooting")[1]
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| `")}
    named = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ModelferryError) and cls is not errors.ModelferryError
    }
    documented = {name.strip("`") for row in rows for name in row.split(", ")}
    assert named - documented == set(), "errors missing from the troubleshooting table in docs/operations.md"
    assert set(NEXT_STEPS) - documented == set()


@pytest.mark.parametrize("honours_reverse_order", [True, False])
def test_each_poll_reads_only_the_history_it_has_not_seen(s3: Any, honours_reverse_order: bool) -> None:
    """An import polled for hours has thousands of events: the watcher reads newest first and stops at what it has
    (and reads everything, still correctly, from a server that ignores reverseOrder, like moto)."""
    sfn = FakeStepFunctions(PLANNED)
    sfn.honours_reverse_order = honours_reverse_order
    watcher = Watcher(ARN, sfn=sfn, s3=s3)
    assert watcher.snapshot().current_stage.name == "Copy"  # type: ignore[union-attr]
    sfn.events += [
        {**_event("MapStateExited", 10, name="CopyFiles", output=json.dumps(PLAN_OUTPUT)), "id": 6},
        {**_event("TaskStateEntered", 10, name="ValidateInS3"), "id": 7},
    ]
    sfn.pages_read = 0

    snap = watcher.snapshot()

    assert sfn.pages_read == (2 if honours_reverse_order else 4)  # newest first: the new events, then event 5
    assert [(s.name, s.state) for s in snap.stages[:3]] == [("Plan", "done"), ("Copy", "done"), ("Validate", "running")]


# --- the state read as typed documents ------------------------------------------------------------------------------
def test_every_state_of_the_definition_shows_on_the_row_of_its_stage() -> None:
    """Rows come from contract.Stage; each failure state belongs to the stage it records in failed_stage."""
    asl = json.loads((Path(__file__).resolve().parents[2] / "statemachine" / "modelferry.asl.json").read_text())
    states = asl["States"]
    shown = {name for name, state in states.items() if state["Type"] not in {"Succeed", "Fail"}}
    assert set(STAGE_OF_STATE) == shown
    for name, state in states.items():
        if state.get("ResultPath") == "$.failed_stage":
            assert STAGE_OF_STATE[name] == Stage(state["Result"]), name
    assert ROWS == ("Plan", "Copy", "Validate", "Queue", "Import", "Verify", "Notify")


def test_a_succeeded_run_shows_the_model_and_reply_its_state_recorded(s3: Any) -> None:
    notified = {**VERIFIED, "notification": {"sns_message_id": "m-1", "subject": "modelferry: gpt-oss-20b imported"}}
    events = [
        *_verify_history()[:-2],  # VerifyModel succeeds at once
        _event("TaskStateExited", 620, name="VerifyModel", output=json.dumps(VERIFIED)),
        _event("TaskStateEntered", 620, name="NotifySuccess"),
        _event("TaskStateExited", 621, name="NotifySuccess", output=json.dumps(notified)),
        _event("SucceedStateEntered", 621, name="ImportSucceeded"),
        _event("ExecutionSucceeded", 621, output=json.dumps(notified)),
    ]
    described = {"stopDate": T0 + timedelta(seconds=621), "output": json.dumps(notified)}
    sfn = FakeStepFunctions(events, "SUCCEEDED", **described)

    snap = Watcher(ARN, sfn=sfn, s3=s3).snapshot()

    model_arn = CAPTURED["import_status"]["imported_model_arn"]
    block = render_block(snap)
    assert [s.state for s in snap.stages] == ["done"] * 7
    assert f"  model    {model_arn}" in block
    assert f"  reply    {CAPTURED['verify']['reply']!r}" in block
    assert snap.to_json()["imported_model_arn"] == model_arn
    assert snap.to_json()["failed_stage"] is None
    assert executions_cmd._outcome_of(sfn.described) == model_arn  # the OUTCOME column of `modelferry list`


@pytest.mark.parametrize(
    ("failure_state", "recorded", "row"),
    [
        ("StartImportFailed", "start_import", "Import"),
        ("WaitForImportFailed", "wait_for_import", "Import"),
        ("VerifyFailed", "verify", "Verify"),
        ("NotifySuccessFailed", "notify", "Notify"),
    ],
)
def test_a_failed_run_shows_the_stage_its_state_recorded(s3: Any, failure_state: str, recorded: str, row: str) -> None:
    failed = {**IMPORTED, "failure": {"Error": "SomeError", "Cause": "it broke"}, "failed_stage": recorded}
    events = [
        *_verify_history()[:-3],  # up to VerifyModel's start; the failure states follow whichever stage failed
        _event("PassStateEntered", 700, name=failure_state),
        _event("PassStateExited", 700, name=failure_state, output=json.dumps(failed)),
        _event("TaskStateEntered", 700, name="NotifyFailure"),
        _event("TaskStateExited", 701, name="NotifyFailure", output=json.dumps(failed)),
        _event("FailStateEntered", 701, name="ImportFailed"),
        _event("ExecutionFailed", 701, error="SomeError", cause="it broke"),
    ]
    sfn = FakeStepFunctions(events, "FAILED", stopDate=T0 + timedelta(seconds=701), error="SomeError")

    snap = Watcher(ARN, sfn=sfn, s3=s3).snapshot()

    assert [s.name for s in snap.stages if s.state == "failed"] == [row]
    assert snap.to_json()["failed_stage"] == recorded
    assert f"  result   FAILED at {row} after 11 min 41 s: SomeError" in render_block(snap)


@pytest.mark.parametrize("request_", [["not", "an", "object"], "text", 7])
def test_a_run_whose_input_is_not_an_object_shows_it_failed_in_plan(s3: Any, request_: Any) -> None:
    received = {**RECEIVED, "request": request_}
    caught = {**received, "failure": {"Error": "InvalidRequest", "Cause": "the input is not a JSON object"}}
    events = [
        _event("ExecutionStarted", 0),
        _event("PassStateEntered", 0, name="ReceiveRequest"),
        _event("PassStateExited", 0, name="ReceiveRequest", output=json.dumps(received)),
        _event("TaskStateEntered", 0, name="Plan"),
        _event("TaskStateExited", 1, name="Plan", output=json.dumps(caught)),
        _event("PassStateEntered", 1, name="PlanFailed"),
        _event("PassStateExited", 1, name="PlanFailed", output=json.dumps({**caught, "failed_stage": "plan"})),
        _event("TaskStateEntered", 1, name="NotifyFailure"),
        _event("TaskStateExited", 2, name="NotifyFailure", output=json.dumps({**caught, "failed_stage": "plan"})),
        _event("FailStateEntered", 2, name="ImportFailed"),
        _event("ExecutionFailed", 2, error="InvalidRequest", cause="the input is not a JSON object"),
    ]
    sfn = FakeStepFunctions(
        events, "FAILED", input=json.dumps(request_), stopDate=T0 + timedelta(seconds=2), error="InvalidRequest"
    )

    snap = Watcher(ARN, sfn=sfn, s3=s3).snapshot()

    assert (snap.repo_id, snap.model_name) == (None, None)
    assert [(s.name, s.state) for s in snap.stages if s.started] == [("Plan", "failed"), ("Notify", "done")]
    assert "  result   FAILED at Plan after 2.0 s: InvalidRequest" in render_block(snap)


def test_a_state_document_that_breaks_the_contract_is_refused_not_read_as_missing(s3: Any) -> None:
    """Were the watcher to read such a document as empty, the view would quietly lose the plan."""
    broken = {key: value for key, value in PLAN_OUTPUT.items() if key != "execution"}
    events = [*PLANNED[:3], _event("TaskStateExited", 2.0, name="Plan", output=json.dumps(broken))]

    with pytest.raises(ValidationError, match="execution"):
        Watcher(ARN, sfn=FakeStepFunctions(events), s3=s3).snapshot()
