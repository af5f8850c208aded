"""Structure of statemachine/modelferry.asl.json, and its contract with template.yaml and the Python code.

asl-validator checks the definition's shape; these tests check what only this project knows: every placeholder has
a substitution, every custom error name is an exception the code raises, every failure ends notified and FAILED.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelferry import errors
from modelferry_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
ASL_PATH = ROOT / "statemachine" / "modelferry.asl.json"
FUNCTIONS = ROOT / "functions"
# Error names AWS reports, not the code: the States language's own, the Lambda and ECS integrations', and
# `Sandbox.Timedout`, a function timeout on newer Lambda runtimes (AWS Lambda developer guide, "Troubleshoot
# invocation issues"). Any other name in Retry/Catch must be an exception class the code raises.
BUILT_IN_ERROR_PREFIXES = ("States.", "Lambda.", "ECS.", "Sandbox.")
AWS_ERROR_NAMES = {"Sandbox.Timedout"}
LAMBDA_SERVICE_ERRORS = {
    # "Handle Lambda service exceptions" (Step Functions developer guide): transient, retry them on every Lambda task.
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
}
FAILURE_NOTIFIER = "NotifyFailure"


@pytest.fixture(scope="module")
def asl_text() -> str:
    return ASL_PATH.read_text()


@pytest.fixture(scope="module")
def asl(asl_text: str) -> dict[str, Any]:
    return json.loads(asl_text)


@pytest.fixture(scope="module")
def machine() -> dict[str, Any]:
    template = load_template(ROOT / "template.yaml")
    return template["Resources"]["ModelImportStateMachine"]


# --- helpers ---------------------------------------------------------------------------------------------------
def scopes(definition: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, {StartAt, States}) for the top level and every Map/Parallel branch, recursively."""
    yield path or "<top>", definition
    for name, state in definition["States"].items():
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from scopes(state[key], f"{path}{name}.{key}/")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from scopes(branch, f"{path}{name}.Branches[{index}]/")


def all_states(definition: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for scope_name, scope in scopes(definition):
        for name, state in scope["States"].items():
            yield scope_name, name, state


def transitions(state: dict[str, Any]) -> list[str]:
    targets = [state["Next"]] if "Next" in state else []
    if "Default" in state:
        targets.append(state["Default"])
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catcher["Next"] for catcher in state.get("Catch", [])]
    return targets


def reachable(scope: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = [scope["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen or name not in scope["States"]:
            continue
        seen.add(name)
        todo.extend(transitions(scope["States"][name]))
    return seen


def custom_error_names(definition: dict[str, Any]) -> set[str]:
    names = set()
    for _, _, state in all_states(definition):
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names.update(e for e in rule["ErrorEquals"] if not e.startswith(BUILT_IN_ERROR_PREFIXES))
    return names


def raised_names() -> set[str]:
    """Names raised (`raise Name(`) or built by a translate function (`return Name(`) anywhere in functions/."""
    pattern = re.compile(r"\b(?:raise|return)\s+([A-Z]\w*)\(")
    found = set()
    for path in FUNCTIONS.rglob("*.py"):
        found.update(pattern.findall(path.read_text()))
    return found


# --- transitions -------------------------------------------------------------------------------------------------
def test_every_start_at_and_transition_names_a_state_of_its_own_scope(asl: dict[str, Any]) -> None:
    problems = []
    for scope_name, scope in scopes(asl):
        if scope["StartAt"] not in scope["States"]:
            problems.append(f"{scope_name}: StartAt {scope['StartAt']!r} does not exist")
        for name, state in scope["States"].items():
            problems += [
                f"{scope_name}{name} -> {target!r}" for target in transitions(state) if target not in scope["States"]
            ]
    assert not problems, f"transitions to states that do not exist: {problems}"


def test_the_item_processor_is_checked_too(asl: dict[str, Any]) -> None:
    """The helpers above must descend into the Distributed Map, or the other tests would miss half the workflow."""
    names = [scope_name for scope_name, _ in scopes(asl)]
    assert any("ItemProcessor" in name for name in names), names


def test_every_state_is_reachable(asl: dict[str, Any]) -> None:
    unreachable = {
        f"{scope_name}{name}" for scope_name, scope in scopes(asl) for name in set(scope["States"]) - reachable(scope)
    }
    assert not unreachable, f"states no path reaches: {sorted(unreachable)}"


def test_every_non_terminal_state_has_a_way_out(asl: dict[str, Any]) -> None:
    stuck = [
        f"{scope_name}{name}"
        for scope_name, name, state in all_states(asl)
        if state["Type"] not in {"Succeed", "Fail", "Choice"} and not state.get("End") and "Next" not in state
    ]
    assert not stuck, stuck


def test_every_choice_has_a_default(asl: dict[str, Any]) -> None:
    missing = [f"{s}{n}" for s, n, state in all_states(asl) if state["Type"] == "Choice" and "Default" not in state]
    assert not missing, f"Choice states without Default: {missing}"


# --- substitutions ---------------------------------------------------------------------------------------------
def test_every_placeholder_has_a_substitution_and_every_substitution_is_used(
    asl_text: str, machine: dict[str, Any]
) -> None:
    placeholders = set(re.findall(r"\$\{(\w+)\}", asl_text))
    substitutions = set(machine["Properties"]["DefinitionSubstitutions"])
    assert placeholders, "the definition has no ${...} placeholders: the pattern is wrong"
    assert placeholders - substitutions == set(), "placeholders without a DefinitionSubstitution"
    assert substitutions - placeholders == set(), "DefinitionSubstitutions the definition never uses"


def test_function_substitutions_point_at_functions_of_the_template(
    asl: dict[str, Any], machine: dict[str, Any]
) -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    substitutions = machine["Properties"]["DefinitionSubstitutions"]
    lambda_placeholders = {
        state["Parameters"]["FunctionName"][2:-1]
        for _, _, state in all_states(asl)
        if state.get("Resource")
        in {"arn:aws:states:::lambda:invoke", "arn:aws:states:::lambda:invoke.waitForTaskToken"}
    }
    assert len(lambda_placeholders) == 9
    for placeholder in lambda_placeholders:
        logical_id, attribute = substitutions[placeholder]["Fn::GetAtt"]
        assert attribute == "Arn"
        assert resources[logical_id]["Type"] == "AWS::Serverless::Function", placeholder


def test_the_fargate_container_override_names_the_task_definitions_container(asl: dict[str, Any]) -> None:
    resources = load_template(ROOT / "template.yaml")["Resources"]
    containers = {c["Name"] for c in resources["CopyTaskDefinition"]["Properties"]["ContainerDefinitions"]}
    overridden = {
        override["Name"]
        for _, _, state in all_states(asl)
        if state.get("Resource", "").startswith("arn:aws:states:::ecs:runTask")
        for override in state["Parameters"]["Overrides"]["ContainerOverrides"]
    }
    assert overridden, "no ecs:runTask state found"
    assert overridden <= containers


def test_the_state_machine_is_standard(machine: dict[str, Any], asl: dict[str, Any]) -> None:
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    assert machine["Properties"]["Type"] == "STANDARD"
    for _, _, state in all_states(asl):
        config = state.get("ItemProcessor", {}).get("ProcessorConfig", {})
        if config.get("Mode") == "DISTRIBUTED":
            assert config["ExecutionType"] == "STANDARD", "a copy can outlast an Express child's 5 minutes"


# --- errors ----------------------------------------------------------------------------------------------------
def test_custom_error_names_are_exception_classes_of_modelferry_errors(asl: dict[str, Any]) -> None:
    names = custom_error_names(asl)
    assert names, "no custom error names found in Retry/Catch"
    classes = {name for name, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, Exception)}
    assert names - classes == set(), "Retry/Catch names with no class in modelferry.errors"


def test_custom_error_names_are_raised_somewhere_in_the_code(asl: dict[str, Any]) -> None:
    assert custom_error_names(asl) - raised_names() == set(), "Retry/Catch names that functions/ never raises"


def test_states_all_is_alone_and_last(asl: dict[str, Any]) -> None:
    problems = []
    for scope_name, name, state in all_states(asl):
        for kind in ("Retry", "Catch"):
            rules = state.get(kind, [])
            for index, rule in enumerate(rules):
                if "States.ALL" in rule["ErrorEquals"] and (len(rule["ErrorEquals"]) > 1 or index != len(rules) - 1):
                    problems.append(f"{scope_name}{name}.{kind}[{index}]")
    assert not problems, problems


def test_growing_retries_are_capped(asl: dict[str, Any]) -> None:
    uncapped = [
        f"{scope_name}{name}: {rule['ErrorEquals']}"
        for scope_name, name, state in all_states(asl)
        for rule in state.get("Retry", [])
        if rule.get("BackoffRate", 2.0) > 1 and "MaxDelaySeconds" not in rule
    ]
    assert not uncapped, f"Retry with a growing interval and no MaxDelaySeconds: {uncapped}"


# --- every failure is notified, then FAILED ----------------------------------------------------------------------
def _path_to_notifier(scope: dict[str, Any], start: str) -> list[str]:
    """Follow Next from `start` through Pass states; returns the names visited, ending at a non-Pass state."""
    path = [start]
    while scope["States"][path[-1]]["Type"] == "Pass" and len(path) < 10:
        path.append(scope["States"][path[-1]]["Next"])
    return path


def test_every_top_level_task_catches_everything_into_the_failure_notification(asl: dict[str, Any]) -> None:
    problems = []
    for name, state in asl["States"].items():
        if state["Type"] not in {"Task", "Map", "Parallel"} or name == FAILURE_NOTIFIER:
            continue
        catchers = state.get("Catch", [])
        if not catchers or catchers[-1]["ErrorEquals"] != ["States.ALL"]:
            problems.append(f"{name}: no Catch on States.ALL")
            continue
        for catcher in catchers:
            path = _path_to_notifier(asl, catcher["Next"])
            if path[-1] != FAILURE_NOTIFIER:
                problems.append(f"{name}: Catch leads to {' -> '.join(path)}, not {FAILURE_NOTIFIER}")
            if catcher.get("ResultPath") == "$" and name == asl["StartAt"]:
                # The first state may meet an input that is not an object: its Catch replaces the state with the
                # error, and the next state must put it back under `failure`.
                wrapper = asl["States"][catcher["Next"]]
                if wrapper.get("Parameters", {}).get("failure.$") != "$":
                    problems.append(f"{name}: Catch at $ but {catcher['Next']} does not keep the error as failure")
            elif catcher.get("ResultPath") != "$.failure":
                problems.append(f"{name}: Catch keeps the error at {catcher.get('ResultPath')}, not $.failure")
    assert not problems, problems


def test_pass_states_report_failures_the_same_way_as_catches(asl: dict[str, Any]) -> None:
    """A Pass that synthesises an error (UnexpectedImportStatus) must also end in the failure notification."""
    for name, state in asl["States"].items():
        if state["Type"] == "Pass" and state.get("ResultPath") == "$.failure":
            assert _path_to_notifier(asl, name)[-1] == FAILURE_NOTIFIER, name


def test_the_failure_notification_always_ends_in_a_fail_state(asl: dict[str, Any]) -> None:
    notifier = asl["States"][FAILURE_NOTIFIER]
    assert notifier["Type"] == "Task"
    exits = [notifier["Next"]] + [catcher["Next"] for catcher in notifier.get("Catch", [])]
    assert notifier.get("Catch"), "a failed notification must still end the execution FAILED"
    assert all(asl["States"][target]["Type"] == "Fail" for target in exits), exits


def test_no_failure_path_reaches_a_succeed_state(asl: dict[str, Any]) -> None:
    """From the failure notification, nothing leads to Succeed: a failed import never reports SUCCEEDED."""
    sub_scope = {"StartAt": FAILURE_NOTIFIER, "States": asl["States"]}
    types = {asl["States"][name]["Type"] for name in reachable(sub_scope)}
    assert "Succeed" not in types
    assert "Fail" in types


def test_the_only_sandbox_error_is_the_documented_timeout(asl: dict[str, Any]) -> None:
    """The "Sandbox." prefix is allowed for one AWS name only, so a typo there cannot hide behind it."""
    sandbox = {
        e
        for _, _, state in all_states(asl)
        for rule in state.get("Retry", []) + state.get("Catch", [])
        for e in rule["ErrorEquals"]
        if e.startswith("Sandbox.")
    }
    assert sandbox <= AWS_ERROR_NAMES


def test_every_lambda_task_retries_the_lambda_service_errors(asl: dict[str, Any]) -> None:
    problems = []
    for scope_name, name, state in all_states(asl):
        if state.get("Resource") != "arn:aws:states:::lambda:invoke":
            continue
        retried = {e for rule in state.get("Retry", []) for e in rule["ErrorEquals"]}
        if LAMBDA_SERVICE_ERRORS - retried:
            problems.append(f"{scope_name}{name}: {sorted(LAMBDA_SERVICE_ERRORS - retried)}")
    assert not problems, problems


def test_a_timed_out_copy_is_retried_whatever_the_runtime_calls_it(asl: dict[str, Any]) -> None:
    """The copy is idempotent; a Lambda timeout reads Lambda.Unknown on older runtimes, Sandbox.Timedout on newer."""
    copy = asl["States"]["CopyFiles"]["ItemProcessor"]["States"]["CopyFileOnLambda"]
    (rule,) = [r for r in copy["Retry"] if "Lambda.Unknown" in r["ErrorEquals"]]
    assert set(rule["ErrorEquals"]) == {"Lambda.Unknown", "Sandbox.Timedout"}
    assert rule["MaxAttempts"] >= 1


def test_every_task_has_a_timeout_the_function_reaches_first(asl: dict[str, Any], machine: dict[str, Any]) -> None:
    """A Task without TimeoutSeconds waits as long as the execution may run (a year): "Use timeouts to avoid stuck
    executions" (Step Functions developer guide, best practices). On a Lambda task it is the function's own Timeout
    plus a minute, so the function's timeout (retried as Sandbox.Timedout / Lambda.Unknown, and recorded by the copy
    watchdog) comes first and TimeoutSeconds only catches an invocation Lambda never answers."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    default = load_template(ROOT / "template.yaml")["Globals"]["Function"]["Timeout"]
    functions = {
        name: value["Fn::GetAtt"][0]
        for name, value in machine["Properties"]["DefinitionSubstitutions"].items()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }
    tasks = [(name, state) for _, name, state in all_states(asl) if state["Type"] == "Task"]
    assert tasks
    for name, state in tasks:
        if state["Resource"].endswith(".waitForTaskToken"):
            # A place in line waits as long as the line's own ceiling, carried in the state (ImportQueueWaitSeconds).
            assert state.get("TimeoutSecondsPath", "").startswith("$."), f"{name} has no TimeoutSecondsPath"
            continue
        assert isinstance(state.get("TimeoutSeconds"), int), f"{name} has no TimeoutSeconds"
        if state["Resource"] == "arn:aws:states:::lambda:invoke":
            function = functions[state["Parameters"]["FunctionName"].strip("${}")]
            timeout = resources[function]["Properties"].get("Timeout", default)
            assert timeout < state["TimeoutSeconds"] <= timeout + 120, (name, timeout, state["TimeoutSeconds"])
