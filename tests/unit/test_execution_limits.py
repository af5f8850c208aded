"""Limits Step Functions enforces that the local rig does not: execution history size, timeouts on long tasks, and the
size of a Map's output. Static tests of template.yaml and the definition.

Sources (AWS Step Functions developer guide): "Step Functions service quotas" (25,000 events in one execution's
history; 256 KiB per state input or output, a Map's output included); "Handling errors in Step Functions workflows"
(each retry attempt is a new TaskScheduled/TaskStarted/TaskFailed round). An execution that reaches the history limit
fails outside every Catch, so no notification is sent: the longest run the parameters allow must stay well under it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from modelferry_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
HISTORY_LIMIT = 25_000
# What the longest import poll loop may use, leaving the rest for retries and every other state.
LOOP_BUDGET = HISTORY_LIMIT // 2
# History events a state adds each time it runs once without error (entered/exited, plus scheduled/started/succeeded
# for a Task), as a Standard workflow's execution history shows them.
EVENTS_PER_STATE = {"Wait": 2, "Choice": 2, "Pass": 2, "Task": 5}
EVENTS_PER_RETRY = 3  # TaskScheduled, TaskStarted, TaskFailed


@pytest.fixture(scope="module")
def asl() -> dict[str, Any]:
    return json.loads((ROOT / "statemachine" / "modelferry.asl.json").read_text())


@pytest.fixture(scope="module")
def parameters() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")["Parameters"]


def poll_loop(asl: dict[str, Any]) -> list[str]:
    """The states from WaitForImport back to itself (the InProgress path)."""
    states, loop, name = asl["States"], ["WaitForImport"], asl["States"]["WaitForImport"]["Next"]
    while name != "WaitForImport":
        loop.append(name)
        state = states[name]
        if state["Type"] == "Choice":
            (name,) = [c["Next"] for c in state["Choices"] if c.get("StringEquals") == "InProgress"]
        else:
            name = state["Next"]
    return loop


def loop_rounds(parameters: dict[str, Any]) -> int:
    """Polls until CheckImport sees elapsed > ImportTimeoutSeconds, with the shortest poll the template allows.
    Elapsed is measured from the job's creationTime, which is after the first Wait starts: one more round, and one
    for the poll that raises ImportTimedOut."""
    return math.ceil(parameters["ImportTimeoutSeconds"]["MaxValue"] / parameters["ImportPollSeconds"]["MinValue"]) + 2


def test_the_loop_is_wait_check_choice(asl: dict[str, Any]) -> None:
    assert poll_loop(asl) == ["WaitForImport", "CheckImport", "IsImportComplete"]


def test_the_longest_poll_loop_the_parameters_allow_stays_well_under_the_history_limit(
    asl: dict[str, Any], parameters: dict[str, Any]
) -> None:
    per_round = sum(EVENTS_PER_STATE[asl["States"][name]["Type"]] for name in poll_loop(asl))
    assert per_round == 9
    worst = loop_rounds(parameters) * per_round
    assert worst <= LOOP_BUDGET, f"{loop_rounds(parameters)} polls x {per_round} events = {worst}"


def test_the_whole_execution_fits_with_every_retry_used_once(asl: dict[str, Any], parameters: dict[str, Any]) -> None:
    """The loop, plus every top-level state once, plus each Retry rule's MaxAttempts used up once (the import quota
    wait's 500 attempts are most of it), stays under the limit with room to spare."""
    states = asl["States"]
    once = sum(EVENTS_PER_STATE.get(state["Type"], 2) for state in states.values())
    retries = sum(rule["MaxAttempts"] for state in states.values() for rule in state.get("Retry", []))
    loop = loop_rounds(parameters) * sum(EVENTS_PER_STATE[states[name]["Type"]] for name in poll_loop(asl))
    worst = loop + once + retries * EVENTS_PER_RETRY
    assert worst < HISTORY_LIMIT * 0.8, f"loop {loop} + states {once} + retries {retries * EVENTS_PER_RETRY}"


@pytest.mark.parametrize("poll_bound", ["MinValue", "Default", "MaxValue"])
@pytest.mark.parametrize("timeout_bound", ["MinValue", "Default", "MaxValue"])
def test_every_corner_of_the_parameter_ranges_fits_the_history(
    asl: dict[str, Any], parameters: dict[str, Any], poll_bound: str, timeout_bound: str
) -> None:
    """CloudFormation refuses a parameter outside MinValue..MaxValue at deploy time, so these corners are the whole
    range a deployed stack can have: each keeps the poll loop, every state once and every retry used up, under the
    limit (the first two figures are the Standard workflow's history as the rig's run shows it:
    tests/workflow/test_state_limits.py counts it)."""
    poll = parameters["ImportPollSeconds"][poll_bound]
    timeout = parameters["ImportTimeoutSeconds"][timeout_bound]
    states = asl["States"]
    per_round = sum(EVENTS_PER_STATE[states[name]["Type"]] for name in poll_loop(asl))
    loop = (math.ceil(timeout / poll) + 2) * per_round
    once = sum(EVENTS_PER_STATE.get(state["Type"], 2) for state in states.values())
    retries = (
        sum(rule["MaxAttempts"] for state in states.values() for rule in state.get("Retry", [])) * EVENTS_PER_RETRY
    )
    assert loop <= LOOP_BUDGET, f"poll {poll} s, timeout {timeout} s: {loop} events in the loop"
    assert loop + once + retries < HISTORY_LIMIT * 0.8


def test_the_shortest_poll_would_overflow_without_the_timeout_bound(parameters: dict[str, Any]) -> None:
    """Guard on the bounds themselves: the longest timeout CloudFormation would accept without its MaxValue (a day of
    import polling at the shortest poll) overflows the history, so the MaxValue is what keeps the run notified."""
    unbounded_rounds = math.ceil(86_400 / parameters["ImportPollSeconds"]["MinValue"]) + 2
    assert unbounded_rounds * 9 > HISTORY_LIMIT


def test_poll_parameters_are_bounded_both_ways(parameters: dict[str, Any]) -> None:
    for name in ("ImportPollSeconds", "ImportTimeoutSeconds"):
        assert {"MinValue", "MaxValue"} <= set(parameters[name]), name
        assert parameters[name]["MinValue"] <= parameters[name]["Default"] <= parameters[name]["MaxValue"]


def test_waiting_in_line_is_one_task_whatever_its_length(asl: dict[str, Any], parameters: dict[str, Any]) -> None:
    """The time in line for the import slot adds a fixed number of events: one task-token wait, entered once (only
    ValidateInS3 leads to it), bounded by TimeoutSecondsPath; its parameter is bounded and larger than the quota wait
    (a batch of fifty 20B imports needs 8 to 12 hours of line)."""
    states = asl["States"]
    join = states["JoinImportQueue"]
    assert join["Resource"].endswith(".waitForTaskToken")
    assert join["TimeoutSecondsPath"] == "$.plan.run.queue_wait_seconds"
    leading_in = [
        name
        for name, state in states.items()
        if state.get("Next") == "JoinImportQueue"
        or any(c.get("Next") == "JoinImportQueue" for c in state.get("Choices", []) + state.get("Catch", []))
    ]
    assert leading_in == ["ValidateInS3"]
    line = parameters["ImportQueueWaitSeconds"]
    assert line["MinValue"] <= line["Default"] <= line["MaxValue"] <= 7 * 24 * 3600
    assert line["Default"] > parameters["ImportQuotaWaitSeconds"]["Default"]
    assert line["Default"] >= 12 * 3600


# --- the copy's child work ---------------------------------------------------------------------------------------
MAP_RESULT_LIMIT = 256 * 1024
FARGATE_ITEMS = 500  # more than any model has files above the Lambda threshold (200 GB / 20 GiB is 10)
BEDROCK_MAX_WEIGHT_BYTES = 200 * 10**9  # "weights < 200 GB for text models" (Custom Model Import guidelines)
SLOWEST_COPY_BYTES_PER_SECOND = 10 * 10**6


def _copy_states(asl: dict[str, Any]) -> dict[str, Any]:
    return asl["States"]["CopyFiles"]["ItemProcessor"]["States"]


def _apply_output_path(document: Any, path: str) -> Any:
    assert path.startswith("$")
    for part in [p for p in path[1:].split(".") if p]:
        document = document[part]
    return document


def test_every_copy_task_has_a_ceiling(asl: dict[str, Any]) -> None:
    """The Lambda task is bounded by the function's own Timeout; the Fargate task by TimeoutSeconds, which must let
    the largest importable file through at the slowest rate we plan for."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    assert resources["CopyFileFunction"]["Properties"]["Timeout"] <= 900
    fargate = _copy_states(asl)["CopyFileOnFargate"]
    assert BEDROCK_MAX_WEIGHT_BYTES / SLOWEST_COPY_BYTES_PER_SECOND <= fargate["TimeoutSeconds"] <= 24 * 3600


def test_hundreds_of_fargate_items_fit_in_the_maps_result(asl: dict[str, Any]) -> None:
    """runTask.sync with ResultPath null would pass its whole input on (the CopyItem, network settings and all)."""
    fargate = _copy_states(asl)["CopyFileOnFargate"]
    item = json.loads((ROOT / "events" / "copy-file.json").read_text())
    item["file"]["path"] = "p" * 200  # a long path
    item["fargate"] = {
        "subnets": ["subnet-0123456789abcdef0"] * 4,
        "security_groups": None,
        "assign_public_ip": "ENABLED",
    }
    output = item if fargate.get("ResultPath", "$") is None else {}
    output = _apply_output_path(output, fargate.get("OutputPath", "$"))
    assert len(json.dumps(output)) * FARGATE_ITEMS < MAP_RESULT_LIMIT
