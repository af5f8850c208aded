"""Import, wait and verify: one named case per answer Bedrock can give, through the real definition.

Every run goes through moto's interpreter with the real handlers and the Bedrock emulator. Wait and Retry seconds are
simulated, and the emulator's clock runs ahead by them, so the ceilings (import poll, quota wait, not-ready budget)
are reached here as on AWS, in seconds of wall time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import boto3
import pytest

from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, ExecutionReport, LocalRig

pytestmark = pytest.mark.workflow

REPO = "acme/med-gpt-oss-tiny"
MODEL = "med-gpt-oss-tiny"
FAILURE = (
    "Amazon Bedrock was unable to import the model: the tensor 'model.layers.0.mlp.experts.gate_up_proj' has an "
    "unsupported shape."
)


@pytest.fixture
def commit(hub: LocalHub) -> str:
    return str(hub.add_repo(REPO, gpt_oss_repo()))


@pytest.fixture
def make_rig(hub: LocalHub, behaviour: EmulatorBehaviour) -> Iterator[Callable[..., LocalRig]]:
    """A rig whose stack settings (environment variables) the test chooses, e.g. a short ceiling."""
    with ExitStack() as stack:

        def make(**settings: str) -> LocalRig:
            return stack.enter_context(LocalRig(hf_endpoint=hub.url, behaviour=behaviour, settings=settings))

        yield make


def _results(rig: LocalRig, function: str) -> list[Any]:
    return [result for name, _, result in rig.lambda_calls if name == function]


def _errors(rig: LocalRig, function: str) -> list[str]:
    return [r["errorType"] for r in _results(rig, function) if isinstance(r, dict) and "errorType" in r]


def _bedrock_calls(rig: LocalRig, operation: str) -> list[Any]:
    return [call for call in rig.bedrock.calls if call.operation == operation]


def _s3_json(key: str) -> Any:
    return json.loads(boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read())


def _cause(report: ExecutionReport) -> str:
    """The failing function's message (a Lambda error's Cause is a JSON document holding it)."""
    try:
        return str(json.loads(report.cause or "")["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return report.cause or ""


def _assert_failed_and_notified(report: ExecutionReport, error: str, stage: str, *in_cause: str) -> None:
    """FAILED with `error`; one notification and one ModelImportFailed event, both naming the error and cause."""
    assert report.status == "FAILED", report.output
    assert report.error == error, report.cause
    for fragment in in_cause:
        assert fragment in _cause(report)
    assert len(report.notifications) == 1
    notification = report.notifications[0]
    assert notification["subject"] == f"modelferry: {MODEL} FAILED at {stage} ({error})"
    for fragment in in_cause:
        assert fragment in notification["message"]
    assert "Next:" in notification["message"]
    assert [event["detail-type"] for event in report.events] == ["ModelImportFailed"]
    detail = report.events[0]["detail"]
    assert (detail["error"], detail["stage"]) == (error, stage)
    assert detail["next_step"]


# --- the one-job quota, retries and idempotency -------------------------------------------------------------------


def test_two_executions_started_together_import_one_after_the_other(
    hub: LocalHub, rig: LocalRig, behaviour: EmulatorBehaviour, commit: str
) -> None:
    """The second waits in line for the import slot instead of meeting the quota: one job at a time, no refusal."""
    first = rig.start({"repo_id": REPO, "model_name": "med-a"})
    second = rig.start({"repo_id": REPO, "model_name": "med-b"})
    reports = [rig.wait(first), rig.wait(second)]

    assert [r.status for r in reports] == ["SUCCEEDED", "SUCCEEDED"], [r.cause for r in reports]
    jobs = sorted(rig.bedrock.jobs, key=lambda job: job.creation_time)
    assert [job.status for job in jobs] == ["Completed", "Completed"]
    assert {job.model_name for job in jobs} == {"med-a", "med-b"}
    assert jobs[0].end_time is not None
    assert jobs[1].creation_time >= jobs[0].end_time, "two import jobs were InProgress at the same time"
    assert not [c for c in _bedrock_calls(rig, "CreateModelImportJob") if c.error], "the queue let a start be refused"
    turns = sorted((r.output["queue"]["ticket"], r.output["plan"]["run"]["model_name"]) for r in reports)
    assert [model for _, model in turns] == [job.model_name for job in jobs], "imports ran out of line order"
    assert sorted(e["detail-type"] for r in reports for e in r.events) == ["ModelImportSucceeded"] * 2


def test_a_start_retried_after_a_lost_reply_makes_one_job(
    rig: LocalRig, behaviour: EmulatorBehaviour, commit: str
) -> None:
    behaviour.create_reply_lost_times = 1  # the job is created, the caller gets a 500

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    assert report.status == "SUCCEEDED", report.cause
    assert _errors(rig, "StartImportFunction") == ["BedrockUnavailable"]
    creates = _bedrock_calls(rig, "CreateModelImportJob")
    assert len(creates) == 2
    assert creates[0].params["clientRequestToken"] == creates[1].params["clientRequestToken"]
    assert len(rig.bedrock.jobs) == 1
    assert report.output["import"]["job_arn"] == rig.bedrock.jobs[0].arn


def test_a_throttled_start_is_retried_and_succeeds(rig: LocalRig, behaviour: EmulatorBehaviour, commit: str) -> None:
    behaviour.throttle_create_times = 2

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    assert report.status == "SUCCEEDED", report.cause
    assert _errors(rig, "StartImportFunction") == ["BedrockThrottled", "BedrockThrottled"]
    assert [c.error for c in _bedrock_calls(rig, "CreateModelImportJob")] == [
        "ThrottlingException",
        "ThrottlingException",
        None,
    ]
    assert len(rig.bedrock.jobs) == 1


def test_a_start_refused_while_the_role_propagates_is_retried_and_succeeds(
    rig: LocalRig, behaviour: EmulatorBehaviour, commit: str
) -> None:
    behaviour.role_not_ready_times = 2

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    assert report.status == "SUCCEEDED", report.cause
    assert _errors(rig, "StartImportFunction") == ["ImportRoleNotReady", "ImportRoleNotReady"]
    assert len(rig.bedrock.jobs) == 1
    assert report.imported_model_arn == rig.bedrock.models[0].arn


def test_access_denied_fails_at_once_with_bedrocks_message(
    rig: LocalRig, behaviour: EmulatorBehaviour, commit: str
) -> None:
    behaviour.access_denied = True

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(report, "ImportRejected", "Start import", "AccessDeniedException", "iam:PassRole")
    assert len(_bedrock_calls(rig, "CreateModelImportJob")) == 1  # not retried
    assert rig.bedrock.jobs == []


def test_the_quota_wait_ends_at_its_ceiling(
    make_rig: Callable[..., LocalRig], behaviour: EmulatorBehaviour, commit: str
) -> None:
    rig = make_rig(IMPORT_QUOTA_WAIT_SECONDS="1800")
    behaviour.import_never_completes = True
    # Another tool's import holds the Region's one job slot for good.
    boto3.client("bedrock", region_name=REGION, endpoint_url=rig.bedrock.url).create_model_import_job(
        jobName="someone-elses-import",
        importedModelName="someone-elses-model",
        roleArn="arn:aws:iam::123456789012:role/other",
        modelDataSource={"s3DataSource": {"s3Uri": f"s3://{BUCKET}/elsewhere/"}},
    )

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(report, "ImportQuotaWaitTimedOut", "Start import", "ImportQuotaWaitSeconds")
    errors = _errors(rig, "StartImportFunction")
    assert errors[-1] == "ImportQuotaWaitTimedOut"
    assert set(errors[:-1]) == {"ImportQuotaExceeded"}
    run_prefix = next(
        event["run"]["run_prefix"] for name, event, _ in rig.lambda_calls if name == "StartImportFunction"
    )
    record = _s3_json(run_prefix + "import/quota-wait.json")
    assert record["refusals"] == len(errors)
    assert [job.name for job in rig.bedrock.jobs] == ["someone-elses-import"]


# --- the wait loop --------------------------------------------------------------------------------------------------


def test_a_job_bedrock_fails_ends_failed_with_its_failure_message(
    rig: LocalRig, behaviour: EmulatorBehaviour, commit: str
) -> None:
    behaviour.force_fail_message = FAILURE

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(report, "ImportJobFailed", "Wait for import", FAILURE)
    assert rig.bedrock.jobs[0].arn in _cause(report)
    assert report.events[0]["detail"]["job_arn"] == rig.bedrock.jobs[0].arn
    assert "VerifyModel" not in [s.name for s in report.states]


def test_a_job_that_never_finishes_ends_at_the_poll_ceiling(
    make_rig: Callable[..., LocalRig], behaviour: EmulatorBehaviour, commit: str
) -> None:
    rig = make_rig(IMPORT_TIMEOUT_SECONDS="900")
    behaviour.import_never_completes = True

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    job_arn = rig.bedrock.jobs[0].arn
    _assert_failed_and_notified(report, "ImportTimedOut", "Wait for import", job_arn, "ImportTimeoutSeconds")
    assert "still InProgress after waiting" in _cause(report)
    polls = _results(rig, "CheckImportFunction")
    # One poll every 60 simulated seconds: InProgress until the 900 s ceiling is passed (on the 15th or 16th poll,
    # depending on the few real seconds the run itself takes), then the named timeout.
    assert 15 <= len(polls) <= 16
    assert [poll["status"] for poll in polls[:-1]] == ["InProgress"] * (len(polls) - 1)
    assert polls[-1]["errorType"] == "ImportTimedOut"
    assert [kind for kind, _ in rig.clock.waits].count("wait") == len(polls)


# --- verify -----------------------------------------------------------------------------------------------------------


def test_a_model_not_ready_past_its_budget_ends_failed(
    make_rig: Callable[..., LocalRig], behaviour: EmulatorBehaviour, commit: str
) -> None:
    rig = make_rig(MODEL_NOT_READY_BUDGET_SECONDS="300")
    behaviour.not_ready_invocations = 10**6

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(
        report, "ModelNotReadyTimedOut", "Verify model", "ModelNotReadyBudgetSeconds", "after 5 min"
    )
    assert _errors(rig, "VerifyModelFunction") == ["ModelNotReady"] * 5 + ["ModelNotReadyTimedOut"]
    assert [s for k, s in rig.clock.waits if k == "retry"] == [60.0] * 5  # its own steady budget, no backoff
    assert [m.name for m in rig.bedrock.models] == [MODEL]  # imported, and kept


def test_a_reply_without_content_ends_failed(rig: LocalRig, behaviour: EmulatorBehaviour, commit: str) -> None:
    behaviour.not_ready_invocations = 0
    behaviour.invoke_empty_content_times = 1

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(report, "VerificationFailed", "Verify model", "no content and no reasoning_content")
    assert _errors(rig, "VerifyModelFunction") == ["VerificationFailed"]  # not retried


def test_the_verify_result_is_recorded(rig: LocalRig, commit: str) -> None:
    report = rig.run(
        {"repo_id": REPO, "model_name": MODEL, "verify_prompt": "Name one colour.", "verify_expect": "colour"}
    )

    assert report.status == "SUCCEEDED", report.cause
    record = _s3_json(report.output["plan"]["run"]["run_prefix"] + "verify/result.json")
    assert record["prompt"] == "Name one colour."
    assert "colour" in record["reply"]
    assert record["total_tokens"] == record["prompt_tokens"] + record["completion_tokens"] > 0
    assert record["model"]["custom_model_units"] >= 1
    message = report.notifications[0]["message"]
    assert "Custom Model Units per copy" in message
    assert "per active 5-minute window" in message
    assert report.events[0]["detail"]["cost"]["custom_model_units_per_copy"] == record["model"]["custom_model_units"]


# --- an imported model of that name already exists ----------------------------------------------------------------


def test_if_exists_reuse_verifies_the_existing_model_without_importing(rig: LocalRig, commit: str) -> None:
    existing = rig.bedrock.add_imported_model(MODEL, f"s3://{BUCKET}/models/{MODEL}/an-older-commit/")

    report = rig.run({"repo_id": REPO, "model_name": MODEL, "if_exists": "reuse"})

    assert report.status == "SUCCEEDED", report.cause
    assert report.output["import_status"]["status"] == "Reused"
    assert report.output["verify"]["model"]["model_arn"] == existing
    assert _bedrock_calls(rig, "CreateModelImportJob") == []
    assert report.notifications[0]["subject"] == f"modelferry: {MODEL} verified (already imported)"
    assert report.events[0]["detail"]["reused"] is True


def test_if_exists_replace_deletes_the_old_model_then_imports(rig: LocalRig, commit: str) -> None:
    old = rig.bedrock.add_imported_model(MODEL, f"s3://{BUCKET}/models/{MODEL}/an-older-commit/")

    report = rig.run({"repo_id": REPO, "model_name": MODEL, "if_exists": "replace"})

    assert report.status == "SUCCEEDED", report.cause
    assert [c.params["modelIdentifier"] for c in _bedrock_calls(rig, "DeleteImportedModel")] == [old]
    models = rig.bedrock.models
    assert [m.name for m in models] == [MODEL]
    assert models[0].arn != old
    assert models[0].s3_uri == report.s3_uri
    assert report.output["import"]["replaced_model_arn"] == old
    assert f"Replaced:   {old}" in report.notifications[0]["message"]


def test_if_exists_fail_refuses_a_model_imported_from_other_weights(rig: LocalRig, commit: str) -> None:
    old = rig.bedrock.add_imported_model(MODEL, f"s3://{BUCKET}/models/{MODEL}/an-older-commit/")

    report = rig.run({"repo_id": REPO, "model_name": MODEL})

    _assert_failed_and_notified(report, "ImportedModelExists", "Start import", old, '"if_exists": "reuse"')
    assert _bedrock_calls(rig, "CreateModelImportJob") == []
    assert [m.arn for m in rig.bedrock.models] == [old]


def test_a_rerun_of_the_same_input_after_success_does_not_import_again(rig: LocalRig, commit: str) -> None:
    first = rig.run({"repo_id": REPO, "model_name": MODEL})
    assert first.status == "SUCCEEDED", first.cause

    second = rig.run({"repo_id": REPO, "model_name": MODEL})

    assert second.status == "SUCCEEDED", second.cause
    assert second.output["import_status"]["status"] == "Reused"
    assert second.output["verify"]["model"]["model_arn"] == first.imported_model_arn
    assert len(rig.bedrock.jobs) == 1
    assert len(_bedrock_calls(rig, "CreateModelImportJob")) == 1
