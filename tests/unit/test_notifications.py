"""Notifications: what a person reads (subject, what happened, what to do next), the details as JSON, and the same
outcome on EventBridge. The states are the real payloads the state machine sends (events/notify-*.json)."""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from modelferry import errors
from modelferry.adapters.bedrock import describe_duration
from modelferry.adapters.settings import NotifySettings
from modelferry.contract import NotifyResult, Stage, WorkflowState
from modelferry.errors import NotificationFailed
from modelferry.stages.notify import (
    DEFAULT_NEXT_STEP,
    NEXT_STEPS,
    failure_notification,
    publish,
    success_notification,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
SUCCEEDED = json.loads((EVENTS / "notify-succeeded.json").read_text())
FAILED = json.loads((EVENTS / "notify-failed.json").read_text())
SETTINGS = NotifySettings(
    TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:modelferry-outcomes",
    EVENT_BUS_NAME="modelferry-outcomes",
    PRICE_PER_CMU_MINUTE=0.0785,
    STORAGE_PRICE_PER_CMU_MONTH=1.95,
)
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-import-job/abcdefghijkl"


def succeeded_state(**changes: Any) -> WorkflowState:
    state = copy.deepcopy(SUCCEEDED["state"])
    state["verify"]["model"]["custom_model_units"] = 2
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = state
        for parent in parents:
            node = node[parent]
        node[leaf] = value
    return WorkflowState.model_validate(state)


def failed_state(error: str, message: str, stage: Stage = Stage.WAIT_FOR_IMPORT, **changes: Any) -> WorkflowState:
    state = copy.deepcopy(SUCCEEDED["state"])
    del state["verify"]
    state["failed_stage"] = stage.value
    state["failure"] = {
        "Error": error,
        "Cause": json.dumps({"errorType": error, "errorMessage": message, "stackTrace": ["..."]}),
    }
    state["plan"]["run"].update(changes)
    return WorkflowState.model_validate(state)


# --- what a person reads ----------------------------------------------------------------------------------------------


def test_every_error_the_workflow_raises_has_a_next_step() -> None:
    raised = {
        name
        for name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.ModelferryError) and cls is not errors.ModelferryError
    }
    assert raised - set(NEXT_STEPS) == set()
    assert all(step and step != DEFAULT_NEXT_STEP for step in NEXT_STEPS.values())


def test_success_says_what_was_imported_what_it_costs_and_what_to_do_next() -> None:
    notification = success_notification(succeeded_state(), SETTINGS)

    run = SUCCEEDED["state"]["plan"]["run"]
    model_arn = SUCCEEDED["state"]["verify"]["model"]["model_arn"]
    assert notification.subject == f"modelferry: {run['model_name']} imported and verified"
    assert notification.text.startswith(f"{run['repo_id']} (commit {run['commit'][:12]}) is imported")
    assert model_arn in notification.text
    assert "2 Custom Model Units per copy: about $0.785 per active 5-minute window, $3.9 storage per month" in (
        notification.text
    )
    assert "Next: invoke it" in notification.text
    assert notification.details["cost"] == {
        "custom_model_units_per_copy": 2,
        "estimated_usd_per_5_minute_window": 0.785,
        "estimated_usd_storage_per_month": 3.9,
        "price_per_cmu_minute": 0.0785,
        "storage_price_per_cmu_month": 1.95,
    }
    assert notification.details["verification"]["total_tokens"] == SUCCEEDED["state"]["verify"]["total_tokens"]
    assert notification.details["reused"] is False
    verify = SUCCEEDED["state"]["verify"]
    assert f"Cold start: {describe_duration(verify['cold_start_seconds'])} from the import's end" in notification.text
    assert f"{verify['tokens_per_second']} tokens/s" in notification.text
    assert notification.details["verification"]["cold_start_seconds"] == verify["cold_start_seconds"]


def test_a_reused_model_reports_its_speed_but_no_cold_start() -> None:
    state = succeeded_state(**{"verify.cold_start_seconds": None, "verify.tokens_per_second": 12.5})
    notification = success_notification(state, SETTINGS)
    assert "Cold start" not in notification.text
    assert "Speed:      12.5 tokens/s" in notification.text


def test_a_reused_model_is_reported_as_verified_not_imported() -> None:
    state = succeeded_state(**{"import.job_arn": None, "import_status.status": "Reused"})

    notification = success_notification(state, SETTINGS)

    assert notification.subject.endswith("verified (already imported)")
    assert "so nothing was imported" in notification.text
    assert notification.details["reused"] is True


def test_a_replaced_model_is_named() -> None:
    old = "arn:aws:bedrock:us-east-1:123456789012:imported-model/oldoldoldold"
    notification = success_notification(succeeded_state(**{"import.replaced_model_arn": old}), SETTINGS)
    assert f"Replaced:   {old}" in notification.text
    assert notification.details["replaced_model_arn"] == old


def test_no_cost_line_when_bedrock_reported_no_units() -> None:
    state = succeeded_state(**{"verify.model.custom_model_units": None})
    notification = success_notification(state, SETTINGS)
    assert "Cost:" not in notification.text
    assert notification.details["cost"] is None


@pytest.mark.parametrize(
    ("error", "message", "stage", "next_words"),
    [
        (
            "ImportJobFailed",
            f"import job {JOB_ARN} failed: unsupported tensor",
            Stage.WAIT_FOR_IMPORT,
            "failureMessage",
        ),
        ("ImportTimedOut", f"import job {JOB_ARN} still InProgress", Stage.WAIT_FOR_IMPORT, "ImportTimeoutSeconds"),
        (
            "ImportQuotaWaitTimedOut",
            "other import jobs kept the quota busy",
            Stage.START_IMPORT,
            "list-model-import-jobs",
        ),
        ("ModelNotReadyTimedOut", "still answered ModelNotReadyException", Stage.VERIFY, '"if_exists": "reuse"'),
        ("VerificationFailed", "the reply has no content", Stage.VERIFY, "chat template"),
    ],
)
def test_a_failure_names_the_stage_the_error_bedrocks_words_and_the_next_step(
    error: str, message: str, stage: Stage, next_words: str
) -> None:
    notification = failure_notification(failed_state(error, message, stage))

    assert notification.subject == f"modelferry: gpt-oss-tiny-demo FAILED at {stage.label} ({error})"
    lines = notification.text.splitlines()
    assert lines[0] == f"Importing modelferry-demo/gpt-oss-tiny as gpt-oss-tiny-demo failed at {stage.label}."
    assert f"Error:  {error}" in lines
    assert f"Cause:  {message}" in lines  # the errorMessage, not the Lambda error document around it
    assert next_words in notification.text
    assert notification.details["cause"] == message
    assert notification.details["next_step"] == NEXT_STEPS[error]


def test_a_failure_before_plan_still_reads_well() -> None:
    notification = failure_notification(WorkflowState.model_validate(FAILED["state"]))
    assert notification.subject == "modelferry: phi3-tiny FAILED at Plan (ModelNotImportable)"
    assert "ARCHITECTURE_UNSUPPORTED" in notification.details["cause"]
    assert "stackTrace" not in notification.text


def test_a_long_subject_is_cut_to_what_sns_accepts() -> None:
    state = failed_state("ImportQuotaWaitTimedOut", "busy", Stage.START_IMPORT, model_name="m" * 63)
    subject = failure_notification(state).subject
    assert len(subject) <= 100
    assert subject.endswith("...")


# --- where it goes ----------------------------------------------------------------------------------------------------


@pytest.fixture
def clients() -> Iterator[tuple[Any, Stubber, Any, Stubber]]:
    def make(service: str) -> Any:
        return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    sns, events = make("sns"), make("events")
    with Stubber(sns) as sns_stub, Stubber(events) as events_stub:
        yield sns, sns_stub, events, events_stub
        sns_stub.assert_no_pending_responses()
        events_stub.assert_no_pending_responses()


def test_publish_sends_the_text_with_details_to_sns_and_the_outcome_to_eventbridge(
    clients: tuple[Any, Stubber, Any, Stubber],
) -> None:
    sns, sns_stub, events, events_stub = clients
    notification = failure_notification(failed_state("ImportJobFailed", "bad tensor"))
    sns_stub.add_response(
        "publish",
        {"MessageId": "m-1"},
        {
            "TopicArn": SETTINGS.topic_arn,
            "Subject": notification.subject,
            "Message": ANY,
            "MessageAttributes": {"outcome": {"DataType": "String", "StringValue": "failed"}},
        },
    )
    events_stub.add_response(
        "put_events",
        {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]},
        {
            "Entries": [
                {
                    "Source": "modelferry",
                    "DetailType": "ModelImportFailed",
                    "Detail": json.dumps({**notification.details, "text": notification.text}, default=str),
                    "EventBusName": SETTINGS.event_bus_name,
                }
            ]
        },
    )

    sent = publish(notification, SETTINGS, sns=sns, events=events)

    assert sent == NotifyResult(sns_message_id="m-1", subject=notification.subject)


def test_the_sns_message_ends_with_the_details_as_json(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    sns, sns_stub, events, events_stub = clients
    notification = success_notification(succeeded_state(), SETTINGS)
    captured: dict[str, Any] = {}
    sns.meta.events.register("provide-client-params.sns.Publish", lambda params, **_: captured.update(params))
    sns_stub.add_response("publish", {"MessageId": "m-1"})
    events_stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e-1"}]})

    publish(notification, SETTINGS, sns=sns, events=events)

    text, _, details = captured["Message"].partition("\n\nDetails:\n")
    assert text == notification.text
    assert json.loads(details) == json.loads(json.dumps(notification.details, default=str))


def test_a_refused_event_fails_the_notification(clients: tuple[Any, Stubber, Any, Stubber]) -> None:
    sns, sns_stub, events, events_stub = clients
    sns_stub.add_response("publish", {"MessageId": "m-1"})
    events_stub.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "AccessDeniedException", "ErrorMessage": "denied"}]},
    )
    notification = success_notification(succeeded_state(), SETTINGS)
    with pytest.raises(NotificationFailed, match="AccessDeniedException"):
        publish(notification, SETTINGS, sns=sns, events=events)
