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
from modelferry_cli.local.rig import LocalRig

pytestmark = pytest.mark.workflow

LIMIT = 256 * 1024


def test_a_task_result_over_256_kib_fails_the_execution_past_its_catch(
    hub: LocalHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelferry.handlers import verify_model

    real = verify_model.handler

    def verbose_verify(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = real(event, context)
        return {**result, "reply": "x" * LIMIT}  # as a model answering at great length would

    monkeypatch.setattr(verify_model, "handler", verbose_verify)
    hub.add_repo("acme/tiny", gpt_oss_repo())
    with LocalRig(hf_endpoint=hub.url) as rig:
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
