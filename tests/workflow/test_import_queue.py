"""The import queue through the real definition: many models started at once share Bedrock's one import job per
Region in the order they reached the queue, wait without polling Bedrock, and a run stopped while holding the slot
gives it up (the rig delivers the execution status change to the cleanup function, as EventBridge would)."""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import boto3
import pytest

from modelferry.adapters.import_queue import ImportQueue
from modelferry.request import ImportRequest
from modelferry_cli.local.batch import run_batch
from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import IMPORT_QUEUE_TABLE, REGION, LocalRig
from modelferry_cli.main import main

pytestmark = pytest.mark.workflow

REPO = "acme/queue-gpt-oss-tiny"
BATCH = 30


@pytest.fixture
def queue_rig(hub: LocalHub) -> Iterator[LocalRig]:
    # Few files per model: the batch is about the import queue, not the copy.
    hub.add_repo(REPO, gpt_oss_repo(num_shards=1, include_metal=False, include_original=False))
    # Room for every model of the batch (the account quota on imported models is adjustable; the job quota is not).
    behaviour = EmulatorBehaviour(imported_models_quota=BATCH + 5)
    with LocalRig(hf_endpoint=hub.url, behaviour=behaviour) as rig:
        yield rig


def _queue() -> ImportQueue:
    return ImportQueue(boto3.client("dynamodb", region_name=REGION), IMPORT_QUEUE_TABLE, REGION)


def test_a_batch_started_at_once_imports_one_at_a_time_in_queue_order_without_polling_in_line(
    queue_rig: LocalRig,
) -> None:
    requests = [ImportRequest(repo_id=REPO, model_name=f"batch-model-{index:02d}") for index in range(BATCH)]

    batch = run_batch(queue_rig, requests)

    assert batch.succeeded == BATCH, [(run.model_name, run.report.error, run.report.cause) for run in batch.runs]
    # First come, first served: Bedrock saw the imports start in ticket order, and every run waited its turn.
    assert batch.import_order == batch.queue_order()
    assert sorted(run.ticket for run in batch.runs if run.ticket is not None) == sorted(
        {run.ticket for run in batch.runs if run.ticket is not None}
    )
    waits = [run.waited_seconds for run in sorted(batch.runs, key=lambda run: run.ticket or 0)]
    assert waits == sorted(waits), "a later run waited less than an earlier one"
    # One job at a time: each job was created after the previous one ended.
    assert queue_rig.bedrock is not None
    jobs = sorted(queue_rig.bedrock.jobs, key=lambda job: job.creation_time)
    for earlier, later in itertools.pairwise(jobs):
        assert earlier.end_time is not None
        assert later.creation_time >= earlier.end_time, (earlier.name, later.name)
    # Nobody polled Bedrock while in line: no start was refused, each run started once, and the import calls of one
    # run all come before those of the next (a run in line makes none).
    for run in batch.runs:
        assert run.quota_refusals == 0, run.model_name
    starts = [name for name, _, _ in queue_rig.lambda_calls if name == "StartImportFunction"]
    joins = [name for name, _, _ in queue_rig.lambda_calls if name == "JoinImportQueueFunction"]
    assert len(starts) == len(joins) == BATCH
    owners = {job.arn: job.model_name for job in jobs}
    import_calls = [
        call.params.get("importedModelName") or owners.get(str(call.params.get("jobIdentifier")))
        for call in queue_rig.bedrock.calls
        if call.operation in {"CreateModelImportJob", "GetModelImportJob"}
    ]
    blocks = [name for index, name in enumerate(import_calls) if index == 0 or import_calls[index - 1] != name]
    assert blocks == batch.import_order, "the import calls of two runs interleave"
    # The notification says how long each model waited for its turn.
    last = max(batch.runs, key=lambda run: run.ticket or 0)
    notifications = [n for run in batch.runs for n in run.report.notifications]
    (notification,) = [n for n in notifications if f"{last.model_name} imported" in n["subject"]]
    assert f"Waited for the import slot: {last.waited_seconds // 3600} h" in notification["message"]
    assert last.waited_seconds
    # Everyone left the line and the slot is free.
    assert _queue().entries() == []
    assert _queue().slot().holder is None


def _wait_until(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def test_a_run_stopped_while_holding_the_slot_releases_it_to_the_next_in_line(queue_rig: LocalRig) -> None:
    behaviour = queue_rig.bedrock.behaviour if queue_rig.bedrock else None
    assert behaviour is not None
    sfn = boto3.client("stepfunctions", region_name=REGION)
    stopped: list[str] = []
    original = queue_rig._record_call

    def stop_the_holder_once_its_job_started(function: str, event: Any, result: Any) -> None:
        original(function, event, result)
        if function != "StartImportFunction" or stopped or "errorType" in result:
            return
        holder = str(event["execution_id"])
        # Hold on until the other run stands in line behind this one, then kill the holder.
        _wait_until(lambda: len(_queue().waiting()) == 1, "the second run never reached the queue")
        sfn.stop_execution(executionArn=holder, error="Operator.Stopped", cause="stopped by the test")
        stopped.append(holder)
        # The stopped run's job keeps running in Bedrock until the next holder has been refused once by the quota.
        behaviour.import_holds_until_quota_refusals = 1
        behaviour.import_polls = 0

    queue_rig._record_call = stop_the_holder_once_its_job_started  # type: ignore[method-assign]
    arns = [queue_rig.start({"repo_id": REPO, "model_name": name}) for name in ("stop-me", "after-me")]
    reports = {report.execution_arn: report for report in (queue_rig.wait(arn) for arn in arns)}

    (holder,) = stopped
    waiter = next(arn for arn in arns if arn != holder)
    assert reports[holder].status == "ABORTED"
    assert reports[waiter].status == "SUCCEEDED", reports[waiter].cause
    cleanups = [
        (event, result) for name, event, result in queue_rig.lambda_calls if name == "CleanUpImportQueueFunction"
    ]
    assert [(e["detail"]["executionArn"], e["detail"]["status"]) for e, _ in cleanups] == [(holder, "ABORTED")]
    assert cleanups[0][1] == {"released": True, "next_execution": waiter}
    # The stopped run's job was still InProgress when the slot passed on: the new holder met the quota and waited
    # for it, as for an import started outside modelferry.
    assert queue_rig.bedrock is not None
    refused = [c for c in queue_rig.bedrock.calls if c.error == "ServiceQuotaExceededException"]
    assert refused
    assert {c.params["importedModelName"] for c in refused} == {reports[waiter].output["plan"]["run"]["model_name"]}
    assert _queue().entries() == []
    assert _queue().slot().holder is None


# --- modelferry run-local --batch ---------------------------------------------------------------------------------


def _run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(argv)
    return status, out.getvalue()


def test_run_local_batch_prints_one_line_per_model_and_the_order_imports_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    names = ["batch-cli-a", "batch-cli-b", "batch-cli-c"]
    batch_file = tmp_path / "batch.json"
    batch_file.write_text(json.dumps({"requests": [{"repo_id": DEMO_REPO_ID, "model_name": n} for n in names]}))

    status, printed = _run_cli(["run-local", "--batch", str(batch_file)])

    assert status == 0, printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.startswith("batch-cli-")}
    assert set(rows) == set(names)
    assert all(row[1] == "SUCCEEDED" for row in rows.values())
    by_ticket = sorted(names, key=lambda name: int(rows[name][2]))
    assert f"Imports started in this order: {', '.join(by_ticket)}" in printed
    assert "(0 quota refusals in all)" in printed

    status, printed = _run_cli(["run-local", "--batch", str(batch_file), "--json"])
    assert status == 0
    report = json.loads(printed)
    assert report["succeeded"] == 3
    assert report["import_order"] == report["queue_order"]
