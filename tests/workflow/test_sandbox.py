"""Each Lambda invocation of the rig runs in a sandbox of its own (a worker process per function, reused warm), as
on Lambda: the template's Timeout and MemorySize are enforced and reach Step Functions by the error names AWS
reports, each function sees exactly its template environment, and invocations share no module global."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from modelferry_cli.local import template as cfn
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REPO_ROOT, LocalRig, WorkerStep
from tests.support.local_run import assert_notified, errors

pytestmark = pytest.mark.workflow

REPO = "acme/gpt-oss-tiny"
STEPS = "tests.support.worker_steps"
TEMPLATE = cfn.load_template(REPO_ROOT / "template.yaml")
DEFINITION = json.loads((REPO_ROOT / "statemachine" / "modelferry.asl.json").read_text())
# What Lambda's runtime sets besides the template's variables (Lambda developer guide, "Defined runtime environment
# variables"), and where a worker reaches the rig's AWS and Bedrock.
LAMBDA_SETS = {
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "_HANDLER",
    "LANG",
    "TZ",
    "PATH",
}
LOCAL_ENDPOINTS = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_BEDROCK", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"}


def _state(name: str, states: dict[str, Any] = DEFINITION["States"]) -> dict[str, Any]:
    """A state of the definition, wherever it is nested (Map iterators and item processors)."""
    for state_name, state in states.items():
        if state_name == name:
            return state
        for nested in (state.get("Iterator"), state.get("ItemProcessor")):
            if nested:
                try:
                    return _state(name, nested["States"])
                except KeyError:
                    pass
    raise KeyError(name)


def test_a_copy_that_outlives_its_timeout_fails_as_sandbox_timedout_and_is_retried(hub: LocalHub) -> None:
    # The copy is idempotent, and the definition retries a timed-out copy under the name Lambda reports.
    retried = {error for rule in _state("CopyFileOnLambda")["Retry"] for error in rule["ErrorEquals"]}
    assert "Sandbox.Timedout" in retried
    files = gpt_oss_repo()
    shard = sorted(path for path in files if path.endswith(".safetensors"))[0]
    hub.add_repo(REPO, files)
    stalled: list[str] = []
    lock = threading.Lock()

    def stall_the_shards_first_copy(function: str, event: Any) -> bool:
        with lock:
            if event["file"]["path"] == shard and not stalled:
                stalled.append(shard)
                return True
            return False

    stall = WorkerStep(f"{STEPS}:stall_when_told", "stall", frozenset({"CopyFileFunction"}))
    with LocalRig(hf_endpoint=hub.url, timeouts={"CopyFileFunction": 15}, worker_setup=[stall]) as rig:
        rig.listen("stall", stall_the_shards_first_copy)
        report = rig.run({"repo_id": REPO, "model_name": "gpt-oss-tiny"})

    assert report.status == "SUCCEEDED", report.cause
    assert_notified(report)
    assert errors(rig, "CopyFileFunction") == ["Sandbox.Timedout"]
    (timed_out,) = [i for i in rig.invocations if i.outcome == "Sandbox.Timedout"]
    assert timed_out.event["file"]["path"] == shard
    assert timed_out.result == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 15.00 seconds"}
    shard_copies = [i for i in rig.invocations if i.function == "CopyFileFunction" and i.event["file"]["path"] == shard]
    assert [i.outcome for i in shard_copies] == ["Sandbox.Timedout", "ok"]
    assert shard_copies[1].worker != timed_out.worker  # the killed worker was replaced


def test_a_function_over_its_memory_size_fails_as_out_of_memory_and_is_notified(hub: LocalHub) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    hungry = WorkerStep(f"{STEPS}:allocate_mib", 400, frozenset({"PlanFunction"}))
    with LocalRig(hf_endpoint=hub.url, memory_sizes={"PlanFunction": 256}, worker_setup=[hungry]) as rig:
        report = rig.run({"repo_id": REPO, "model_name": "gpt-oss-tiny"})

    assert report.status == "FAILED"
    plan_errors = errors(rig, "PlanFunction")
    assert plan_errors
    assert set(plan_errors) == {"Runtime.OutOfMemory"}
    assert_notified(report, failed_at="Plan", error="Runtime.OutOfMemory")


def test_each_function_sees_exactly_its_template_environment_and_is_reused_warm(hub: LocalHub) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    environments: dict[str, list[dict[str, str]]] = {}

    def keep(function: str, environment: dict[str, str]) -> None:
        environments.setdefault(function, []).append(environment)

    with LocalRig(hf_endpoint=hub.url, worker_setup=[WorkerStep(f"{STEPS}:report_environment")]) as rig:
        rig.listen("environment", keep)
        report = rig.run({"repo_id": REPO, "model_name": "gpt-oss-tiny"})

    assert report.status == "SUCCEEDED", report.cause
    functions = cfn.functions(TEMPLATE)
    assert {"PlanFunction", "CopyFileFunction", "VerifyModelFunction", "NotifyFunction"} <= set(environments)
    for function, seen in environments.items():
        declared = set(functions[function]["environment"])
        for environment in seen:
            assert set(environment) == declared | LAMBDA_SETS | LOCAL_ENDPOINTS, function
            assert environment["AWS_LAMBDA_FUNCTION_NAME"] == function
            assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(functions[function]["memory_size"])
            assert environment["_HANDLER"] == functions[function]["handler"]
        if "MODEL_BUCKET" in declared:
            assert {e["MODEL_BUCKET"] for e in seen} == {BUCKET}
    # Polls of the import follow one another: one warm worker answers them all, as Lambda reuses an environment.
    polls = [i for i in rig.invocations if i.function == "CheckImportFunction"]
    assert len(polls) >= 2
    assert len({i.worker for i in polls}) == 1
    assert len(environments["CheckImportFunction"]) == 1  # started once


def test_concurrent_invocations_keep_their_own_correlation_id_and_metrics(hub: LocalHub) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    with LocalRig(hf_endpoint=hub.url, settings={"POWERTOOLS_LOG_LEVEL": "INFO"}) as rig:
        arns = [rig.start({"repo_id": REPO, "model_name": name}) for name in ("first-copy", "second-copy")]
        reports = [rig.wait(arn) for arn in arns]
        copies = [(i, i.log()) for i in rig.invocations if i.function == "CopyFileFunction"]  # logs die with the rig

    assert [r.status for r in reports] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in reports]
    assert {copy.event["execution_id"] for copy, _ in copies} == set(arns)
    for copy, log in copies:
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        logged = [line for line in lines if "correlation_id" in line]
        assert logged, log
        # Every line this invocation logged carries its own execution's id, never the other run's.
        assert {line["correlation_id"] for line in logged} == {copy.event["execution_id"]}
        # Its metrics are its own: one BytesCopied, the bytes this invocation copied.
        (emf,) = [line for line in lines if "_aws" in line]
        assert emf["BytesCopied"] in (copy.result["bytes_copied"], [copy.result["bytes_copied"]])
