"""The workflow contract (modelferry.contract) against the definition: each payload the definition builds is the
stage's input model, each result it keeps is the stage's result model, every key of the state document is a field
of WorkflowState, and the names the definition writes (stages, job statuses) are the enums' values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from modelferry import contract
from modelferry.contract import (
    CheckImportEvent,
    CopyItem,
    CopyResult,
    ImportJobStatus,
    ImportStarted,
    ImportStatus,
    JoinQueueEvent,
    NotifyEvent,
    NotifyResult,
    PlanEvent,
    PlanResult,
    QueueTurn,
    ReleaseSlotEvent,
    RunInfo,
    RunLayout,
    SlotReleased,
    Stage,
    StartImportEvent,
    ValidateEvent,
    ValidateResult,
    VerifyEvent,
    VerifyResult,
    WorkflowState,
)

ROOT = Path(__file__).resolve().parents[2]
ASL = json.loads((ROOT / "statemachine" / "modelferry.asl.json").read_text())
STATES = ASL["States"]
MAP_STATES = STATES["CopyFiles"]["ItemProcessor"]["States"]
EVENTS = ROOT / "events"

# Lambda task state -> (payload model, result model)
LAMBDA_TASKS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "Plan": (PlanEvent, PlanResult),
    "ValidateInS3": (ValidateEvent, ValidateResult),
    "StartImport": (StartImportEvent, ImportStarted),
    "CheckImport": (CheckImportEvent, ImportStatus),
    "ReleaseImportSlot": (ReleaseSlotEvent, SlotReleased),
    "VerifyModel": (VerifyEvent, VerifyResult),
    "NotifySuccess": (NotifyEvent, NotifyResult),
    "NotifyFailure": (NotifyEvent, NotifyResult),
}


def _keys(block: dict[str, Any]) -> set[str]:
    """Field names of a Parameters/ResultSelector block (`name.$` selects, `name` is literal)."""
    return {key.removesuffix(".$") for key in block}


def _aliases(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


@pytest.mark.parametrize("state_name", sorted(LAMBDA_TASKS))
def test_each_lambda_payload_is_the_stage_input_model(state_name: str) -> None:
    payload_model, _ = LAMBDA_TASKS[state_name]
    assert _keys(STATES[state_name]["Parameters"]["Payload"]) == _aliases(payload_model)


@pytest.mark.parametrize("state_name", sorted(LAMBDA_TASKS))
def test_each_lambda_result_kept_is_the_stage_result_model(state_name: str) -> None:
    _, result_model = LAMBDA_TASKS[state_name]
    selector = STATES[state_name]["ResultSelector"]
    assert _keys(selector) == _aliases(result_model)
    assert all(value == f"$.Payload.{key.removesuffix('.$')}" for key, value in selector.items())


def test_the_queue_task_sends_its_token_and_keeps_the_turn_sendtasksuccess_gives_it() -> None:
    """A `.waitForTaskToken` task's result is the output of SendTaskSuccess, not a Lambda reply: no `Payload`."""
    state = STATES["JoinImportQueue"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    payload = state["Parameters"]["Payload"]
    assert _keys(payload) == _aliases(JoinQueueEvent)
    assert payload["task_token.$"] == "$$.Task.Token"
    selector = state["ResultSelector"]
    assert _keys(selector) == _aliases(QueueTurn)
    assert all(value == f"$.{key.removesuffix('.$')}" for key, value in selector.items())
    assert state["ResultPath"] == "$.queue"
    assert state["TimeoutSecondsPath"] == "$.plan.run.queue_wait_seconds"
    assert "queue_wait_seconds" in RunInfo.model_fields


def test_the_copy_item_is_the_copy_input_model_and_keeps_a_bounded_part_of_the_result() -> None:
    selector = STATES["CopyFiles"]["ItemSelector"]
    # The Map item also carries the Fargate network settings, which the copy task's RunTask reads.
    assert _keys(selector) == _aliases(CopyItem) | {"fargate"}
    # A Map's output is bounded (256 KiB): each copy keeps only a few of its result's fields.
    kept = _keys(MAP_STATES["CopyFileOnLambda"]["ResultSelector"])
    assert kept <= _aliases(CopyResult)
    assert "path" in kept


def test_every_key_the_definition_writes_into_the_state_is_a_workflow_state_field() -> None:
    fields = _aliases(WorkflowState)
    written = _keys(STATES["ReceiveRequest"]["Parameters"])
    for state in STATES.values():
        for key in ("ResultPath",):
            path = state.get(key)
            if isinstance(path, str) and path != "$":
                written.add(path.removeprefix("$.").split(".")[0])
        for catch in state.get("Catch", []):
            written.add(catch["ResultPath"].removeprefix("$.").split(".")[0])
    assert written <= fields
    assert written >= {"request", "execution", "plan", "validation", "import", "import_status", "verify", "failure"}


def test_the_request_has_one_home_set_by_the_first_state() -> None:
    first = STATES[ASL["StartAt"]]
    assert first["Type"] == "Pass"
    assert first["Parameters"]["request.$"] == "$"
    uses = re.findall(r'"(\$\.request[^"]*)"', json.dumps(ASL))
    assert uses == ["$.request"]  # only Plan reads it, whole: it is Plan's to validate


def test_every_failure_state_records_a_stage_and_every_stage_has_one() -> None:
    recorded = {
        state["Result"]
        for state in STATES.values()
        if state["Type"] == "Pass" and state.get("ResultPath") == "$.failed_stage"
    }
    assert recorded == {stage.value for stage in Stage}
    assert all(stage.label for stage in Stage)


def test_the_statuses_the_definition_branches_on_are_the_known_job_statuses() -> None:
    compared = {choice["StringEquals"] for choice in STATES["IsImportComplete"]["Choices"]}
    assert compared == {ImportJobStatus.COMPLETED, ImportJobStatus.IN_PROGRESS}
    reused = STATES["UseExistingModel"]["Parameters"]
    assert _keys(reused) == _aliases(ImportStatus)
    assert reused["status"] == ImportJobStatus.REUSED


def test_every_payload_carries_the_execution_arn_as_its_correlation_id() -> None:
    payloads = [STATES[name]["Parameters"]["Payload"] for name in [*LAMBDA_TASKS, "JoinImportQueue"]]
    payloads.append(STATES["CopyFiles"]["ItemSelector"])
    assert all(p["execution_id.$"] == "$.execution.id" for p in payloads)
    handlers = (ROOT / "functions" / "modelferry" / "handlers").glob("*.py")
    paths = {m for h in handlers for m in re.findall(r'correlation_id_path="([^"]+)"', h.read_text())}
    # The request-file trigger runs before any execution: the EventBridge event id is its correlation id. The
    # import queue's cleanup serves an execution that has ended: the ARN its status-change event names.
    assert paths == {"execution_id", "id", "detail.executionArn"}


@pytest.mark.parametrize(
    ("file_name", "model"),
    [
        ("plan.json", PlanEvent),
        ("copy-file.json", CopyItem),
        ("validate-in-s3.json", ValidateEvent),
        ("start-import.json", StartImportEvent),
        ("check-import.json", CheckImportEvent),
        ("verify-model.json", VerifyEvent),
        ("notify-succeeded.json", NotifyEvent),
        ("notify-failed.json", NotifyEvent),
    ],
)
def test_the_captured_payloads_are_valid_stage_inputs(file_name: str, model: type[BaseModel]) -> None:
    document = json.loads((EVENTS / file_name).read_text())
    model.model_validate(document)
    extra = {"fargate"} if model is CopyItem else set()
    assert set(document) == _aliases(model) | extra


def test_a_failed_state_document_reads_as_typed_data() -> None:
    state = NotifyEvent.model_validate(json.loads((EVENTS / "notify-failed.json").read_text())).state
    assert state.failed_stage is Stage.PLAN
    assert state.failure is not None
    assert state.failure.error == "ModelNotImportable"
    assert "ARCHITECTURE_UNSUPPORTED" in state.failure.message
    assert state.plan is None
    assert state.request_field("model_name") == "phi3-tiny"


def test_a_non_object_input_still_makes_a_state_document() -> None:
    state = WorkflowState.model_validate(
        {"request": ["not", "an", "object"], "execution": {"id": "arn:x", "name": "x", "start_time": "t"}}
    )
    assert state.request_field("model_name") is None


def test_the_run_layout_keeps_every_record_under_the_run_prefix() -> None:
    layout = RunLayout("runs/m/r1/")
    keys = [
        getattr(layout, name)
        for name, value in vars(RunLayout).items()
        if isinstance(value, property) and name != "run_prefix"
    ]
    keys.append(layout.copy_failure("model-00001-of-00002.safetensors"))
    assert len(keys) == len(set(keys)) >= 10
    assert all(key.startswith("runs/m/r1/") and ".." not in key for key in keys)
    assert layout.copy_failure("a") != layout.copy_failure("b")


def test_the_contract_imports_only_pydantic_and_the_standard_library() -> None:
    source = Path(contract.__file__).read_text()
    imported = set(re.findall(r"^(?:from|import) ([\w.]+)", source, flags=re.MULTILINE))
    assert imported <= {"__future__", "hashlib", "json", "dataclasses", "enum", "typing", "pydantic"}


def test_the_run_task_network_names_security_groups_only_when_there_are_some() -> None:
    """Amazon ECS API reference, AwsVpcConfiguration: no securityGroups means the VPC's default security group."""
    from modelferry.contract import FargateNetwork

    none = FargateNetwork(subnets=["subnet-1"], security_groups=[], assign_public_ip="DISABLED")
    some = FargateNetwork(subnets=["subnet-1"], security_groups=["sg-1"], assign_public_ip="ENABLED")
    assert none.model_dump()["awsvpc_configuration"] == {"Subnets": ["subnet-1"], "AssignPublicIp": "DISABLED"}
    assert some.model_dump()["awsvpc_configuration"]["SecurityGroups"] == ["sg-1"]
    # The state document round-trips: the computed field is ignored on the way back in.
    assert FargateNetwork.model_validate(none.model_dump()) == none
