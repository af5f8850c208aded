"""One named case per path of the workflow: asserting status, history, notifications and S3 state."""

from __future__ import annotations

import json

import boto3
import pytest

from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import generic_repo, gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig

pytestmark = pytest.mark.workflow

REPO = "acme/med-gpt-oss-tiny"


def _keys(prefix: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _cdn_bytes(hub: LocalHub) -> int:
    return sum(r.body_bytes for r in hub.requests if r.endpoint == "cdn")


def _calls(rig: LocalRig, function: str) -> list[tuple[str, object, object]]:
    return [call for call in rig.lambda_calls if call[0] == function]


def _errors(calls: list[tuple[str, object, object]]) -> list[str]:
    return [result["errorType"] for _, _, result in calls if isinstance(result, dict) and "errorType" in result]


def test_happy_path_copies_fixes_imports_verifies_and_notifies(hub: LocalHub, rig: LocalRig) -> None:
    commit = hub.add_repo(REPO, gpt_oss_repo())

    report = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny"})

    assert report.status == "SUCCEEDED", report.cause
    assert [s.name for s in report.states][:4] == ["ReceiveRequest", "Plan", "CopyFiles", "ValidateInS3"]
    assert report.states[-1].name == "ImportSucceeded"
    model_prefix = f"models/med-gpt-oss-tiny/{commit}/"
    assert report.s3_uri == f"s3://{BUCKET}/{model_prefix}"
    copied = {key.removeprefix(model_prefix) for key in _keys(model_prefix)}
    assert "config.json" in copied
    shards = {path for path in copied if path.endswith(".safetensors")}
    assert not any(path.startswith(("metal/", "original/")) for path in copied)
    assert ".gitattributes" not in copied

    s3 = boto3.client("s3", region_name=REGION)
    index = json.loads(s3.get_object(Bucket=BUCKET, Key=model_prefix + "model.safetensors.index.json")["Body"].read())
    assert set(index["metadata"]) <= {"total_size"}
    assert set(index["weight_map"].values()) == shards
    run_prefix = report.output["plan"]["run"]["run_prefix"]
    original = json.loads(
        s3.get_object(Bucket=BUCKET, Key=f"{run_prefix}original/model.safetensors.index.json")["Body"].read()
    )
    assert "total_parameters" in original["metadata"]

    assert report.imported_model_arn
    assert report.imported_model_arn.startswith("arn:aws:bedrock:")
    assert [n["subject"] for n in report.notifications] == ["modelferry: med-gpt-oss-tiny imported and verified"]
    assert report.imported_model_arn in report.notifications[0]["message"]
    assert [e["detail-type"] for e in report.events] == ["ModelImportSucceeded"]
    assert report.events[0]["detail"]["imported_model_arn"] == report.imported_model_arn


def test_unsupported_architecture_fails_in_plan_before_any_copy(hub: LocalHub, rig: LocalRig) -> None:
    hub.add_repo("acme/phi3-mini", generic_repo("phi3", ["Phi3ForCausalLM"]))

    report = rig.run({"repo_id": "acme/phi3-mini", "model_name": "phi3-mini"})

    assert report.status == "FAILED"
    assert report.error == "ModelNotImportable"
    assert "ARCHITECTURE_UNSUPPORTED" in report.cause
    assert [s.name for s in report.states if s.name in {"CopyFiles", "StartImport"}] == []
    assert _keys("models/") == []
    assert len(report.notifications) == 1
    assert "FAILED at Plan" in report.notifications[0]["subject"]
    assert [e["detail-type"] for e in report.events] == ["ModelImportFailed"]
    assert _cdn_bytes(hub) < 64 * 1024  # safetensors headers at most, never weights


def test_bad_input_names_the_field_and_writes_nothing(rig: LocalRig) -> None:
    report = rig.run({"repo_id": "not a repo", "model_name": "x"})

    assert report.status == "FAILED"
    assert report.error == "InvalidRequest"
    assert "repo_id" in report.cause
    assert _keys("") == []
    assert len(report.notifications) == 1


def test_import_job_failed_by_bedrock_ends_failed_with_its_message(
    hub: LocalHub, rig: LocalRig, behaviour: EmulatorBehaviour
) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    behaviour.force_fail_message = "Amazon Bedrock could not read the model weights: unsupported tensor layout."

    report = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny"})

    assert report.status == "FAILED"
    assert report.error == "ImportJobFailed"
    assert "unsupported tensor layout" in report.cause
    notification = report.notifications[-1]
    assert "FAILED at Wait for import" in notification["subject"]
    assert "unsupported tensor layout" in notification["message"]
    assert "VerifyModel" not in [s.name for s in report.states]


def test_model_not_ready_twice_then_verified(hub: LocalHub, rig: LocalRig, behaviour: EmulatorBehaviour) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    behaviour.not_ready_invocations = 2

    report = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny", "verify_expect": "You asked"})

    assert report.status == "SUCCEEDED", report.cause
    verify_calls = _calls(rig, "VerifyModelFunction")
    assert _errors(verify_calls) == ["ModelNotReady", "ModelNotReady"]
    assert len(verify_calls) == 3
    assert ("retry", 60.0) in rig.clock.waits  # the ModelNotReady Retry interval, simulated
    assert "You asked" in report.output["verify"]["reply"]


def test_second_run_of_the_same_input_copies_nothing(hub: LocalHub, rig: LocalRig) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    first = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny"})
    assert first.status == "SUCCEEDED", first.cause
    served_before = _cdn_bytes(hub)

    second = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny", "if_exists": "reuse"})

    assert second.status == "SUCCEEDED", second.cause
    served_by_second_run = _cdn_bytes(hub) - served_before
    copy_results = [result for _, _, result in _calls(rig, "CopyFileFunction")]
    second_half = copy_results[len(copy_results) // 2 :]
    assert all(result["skipped"] for result in second_half if "model.safetensors.index.json" not in result["path"])
    # Plan reads the safetensors headers again (ranged reads), but no shard is copied twice.
    assert served_by_second_run < served_before / 10
    assert second.output["import_status"]["status"] == "Reused"
    assert len(rig.bedrock.jobs) == 1


def test_a_file_that_fails_to_copy_is_named_with_its_error_in_the_notification(hub: LocalHub, rig: LocalRig) -> None:
    files = gpt_oss_repo()
    shard = sorted(p for p in files if p.endswith(".safetensors") and "/" not in p)[0]
    hub.add_repo(REPO, files)
    # Plan reads the headers intact; every later read of the shard is refused as if the repo were gated.
    original_record = rig._record_call

    def gate_after_plan(function: str, event: object, result: object) -> None:
        original_record(function, event, result)
        if function == "PlanFunction":
            hub.faults.add("forbidden_gated", path_glob=shard, times=None)

    rig._record_call = gate_after_plan  # type: ignore[method-assign]

    report = rig.run({"repo_id": REPO, "model_name": "med-gpt-oss-tiny"})

    assert report.status == "FAILED"
    assert report.error == "States.ExceedToleratedFailureThreshold"
    (notification,) = report.notifications
    assert "FAILED at Copy files" in notification["subject"]
    assert f"File:   {shard}: HubAccessDenied" in notification["message"]
    assert "licence" in notification["message"]  # the next step for HubAccessDenied
    assert _keys("models/") == [k for k in _keys("models/") if not k.endswith(shard)]
