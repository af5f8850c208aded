"""Step Functions' 256 KiB limit on a state's input, output and task result: exceeding it fails the execution with
States.DataLimitExceeded, which a `States.ALL` Catch does not take ("Handling errors in Step Functions workflows":
a terminal error), so the run ends with no notification. The workflow keeps every state small for that reason (the
copy Map's ResultPath null and the Fargate branch's OutputPath; the manifest lives in S3, not in the state)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.moto_patches import terminal_errors_escape_states_all
from modelferry_cli.local.rig import LocalRig, WorkerStep

pytestmark = pytest.mark.workflow

LIMIT = 256 * 1024


def test_a_task_result_over_256_kib_fails_the_execution_past_its_catch(hub: LocalHub) -> None:
    # Verify's result gains a 256 KiB "reply", as a model answering at great length would.
    verbose_verify = WorkerStep(
        "tests.support.worker_steps:pad_result", ["reply", LIMIT], frozenset({"VerifyModelFunction"})
    )
    hub.add_repo("acme/tiny", gpt_oss_repo())
    with LocalRig(hf_endpoint=hub.url, worker_setup=[verbose_verify]) as rig:
        report = rig.run({"repo_id": "acme/tiny", "model_name": "tiny"})

    assert report.status == "FAILED"
    assert report.error == "States.DataLimitExceeded"
    # VerifyModel's Catch on States.ALL did not take it: no VerifyFailed, no notification, no event.
    assert "VerifyFailed" not in [s.name for s in report.states]
    assert report.notifications == []
    assert report.events == []


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), terminal_errors_escape_states_all():  # type: ignore[typeddict-item]
        yield boto3.client("stepfunctions", region_name="us-east-1")


def _run(sfn: Any, result_size: int) -> dict[str, Any]:
    """A Pass state whose output is `result_size` characters long, then its successor."""
    definition = {
        "StartAt": "Big",
        "States": {
            "Big": {"Type": "Pass", "Result": "y" * result_size, "Next": "After"},
            "After": {"Type": "Pass", "End": True},
        },
    }
    role = "arn:aws:iam::123456789012:role/r"
    machine = sfn.create_state_machine(name=f"m{result_size}", definition=json.dumps(definition), roleArn=role)
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"])["executionArn"]
    for _ in range(600):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return dict(described)
        time.sleep(0.05)
    raise TimeoutError(arn)


def test_a_state_output_over_256_kib_fails_the_execution(interpreter: Any) -> None:
    over = _run(interpreter, LIMIT)
    assert (over["status"], over.get("error")) == ("FAILED", "States.DataLimitExceeded")


def test_a_state_output_under_256_kib_passes(interpreter: Any) -> None:
    under = _run(interpreter, LIMIT - 1024)
    assert under["status"] == "SUCCEEDED"
    assert len(under["output"].encode()) < LIMIT


def _history_size(execution_arn: str) -> int:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return sum(len(page["events"]) for page in pages)


def _run_with_polls(polls: int) -> int:
    from modelferry_cli.local.bedrock import EmulatorBehaviour
    from modelferry_cli.local.hub import LocalHub

    with LocalHub() as hub:
        hub.add_repo("acme/tiny", gpt_oss_repo())
        with LocalRig(hf_endpoint=hub.url, behaviour=EmulatorBehaviour(import_polls=polls)) as rig:
            report = rig.run({"repo_id": "acme/tiny", "model_name": "tiny"})
            assert report.status == "SUCCEEDED", report.cause
            return _history_size(report.execution_arn)


def test_each_poll_round_adds_the_events_the_history_budget_counts() -> None:
    """Grounds tests/unit/test_execution_limits.py's 9 events per round (Wait 2, CheckImport Task 5, Choice 2) on a
    real run of the definition: three more InProgress polls add three rounds to the history, and nothing else."""
    from tests.unit.test_execution_limits import EVENTS_PER_STATE

    per_round = (_run_with_polls(4) - _run_with_polls(1)) / 3
    assert per_round == EVENTS_PER_STATE["Wait"] + EVENTS_PER_STATE["Task"] + EVENTS_PER_STATE["Choice"] == 9
