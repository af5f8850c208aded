"""A file above the Lambda threshold is copied by the Fargate copy task (locally: its entrypoint in a subprocess,
behind moto's ecs:runTask.sync), and without a configured task it is refused in Plan, before copying."""

from __future__ import annotations

import json

import boto3
import pytest

from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import BUCKET, REGION, LocalRig

pytestmark = pytest.mark.workflow

REPO = "acme/big-shard"


def _largest(files: dict[str, bytes]) -> tuple[str, int]:
    path = max((p for p in files if p.endswith(".safetensors") and "/" not in p), key=lambda p: len(files[p]))
    return path, len(files[path])


def test_file_above_the_threshold_goes_to_the_fargate_task() -> None:
    files = gpt_oss_repo(shard_bytes=3 * 1024 * 1024)
    big_path, big_size = _largest(files)
    with LocalHub() as hub:
        commit = hub.add_repo(REPO, files)
        settings = {"LAMBDA_MAX_FILE_BYTES": str(big_size - 1), "COPY_TASK_ENABLED": "true"}
        with LocalRig(hf_endpoint=hub.url, settings=settings) as rig:
            report = rig.run({"repo_id": REPO, "model_name": "big-shard"})

            assert report.status == "SUCCEEDED", report.cause
            fargate_items = [json.loads(run["COPY_ITEM"]) for run in rig.copy_task_runs]
            assert [item["file"]["path"] for item in fargate_items] == [big_path]
            lambda_paths = {event["file"]["path"] for name, event, _ in rig.lambda_calls if name == "CopyFileFunction"}
            assert big_path not in lambda_paths
            head = boto3.client("s3", region_name=REGION).head_object(
                Bucket=BUCKET, Key=f"models/big-shard/{commit}/{big_path}"
            )
            assert head["ContentLength"] == big_size
            assert head["Metadata"]["sha256"] == fargate_items[0]["file"]["sha256"]


def test_without_a_copy_task_a_file_too_big_for_lambda_is_refused_in_plan() -> None:
    files = gpt_oss_repo()
    big_path, big_size = _largest(files)
    with LocalHub() as hub:
        hub.add_repo(REPO, files)
        with LocalRig(hf_endpoint=hub.url, settings={"LAMBDA_MAX_FILE_BYTES": str(big_size - 1)}) as rig:
            report = rig.run({"repo_id": REPO, "model_name": "big-shard"})

    assert report.status == "FAILED"
    assert report.error == "FileTooLargeForLambda"
    assert big_path in report.cause
    assert "CopyTaskImageUri" in report.cause
    assert "CopyFiles" not in [s.name for s in report.states]


def test_a_failed_copy_task_is_not_retried_and_ends_in_a_failure_notification() -> None:
    files = gpt_oss_repo(shard_bytes=3 * 1024 * 1024)
    big_path, big_size = _largest(files)

    class CorruptAfterPlan(LocalRig):
        """The Hub starts serving a wrong byte once Plan has read the (intact) headers."""

        def _record_call(self, function: str, event: object, result: object) -> None:
            super()._record_call(function, event, result)
            if function == "PlanFunction":
                hub.faults.add("corrupt", path_glob=big_path, times=None, offset=2_000_000)

    with LocalHub() as hub:
        hub.add_repo(REPO, files)
        settings = {"LAMBDA_MAX_FILE_BYTES": str(big_size - 1), "COPY_TASK_ENABLED": "true"}
        with CorruptAfterPlan(hf_endpoint=hub.url, settings=settings) as rig:
            report = rig.run({"repo_id": REPO, "model_name": "big-shard"})
            open_uploads = boto3.client("s3", region_name=REGION).list_multipart_uploads(Bucket=BUCKET)
            big_objects = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET, Prefix="models/")

    assert report.status == "FAILED"
    assert len(rig.copy_task_runs) == 1  # a stopped container's States.TaskFailed is not retried
    assert report.error == "States.ExceedToleratedFailureThreshold"  # what the Map reports on AWS
    notification = report.notifications[0]["message"]
    assert f"{big_path}: ChecksumMismatch" in notification  # the file's own error, recorded by the copy task
    assert open_uploads.get("Uploads", []) == []
    assert not any(obj["Key"].endswith(big_path) for obj in big_objects.get("Contents", []))
    assert len(report.notifications) == 1
    assert "FAILED at Copy files" in report.notifications[0]["subject"]


def _awsvpc_configuration(request: dict[str, object]) -> dict[str, object]:
    """The AwsvpcConfiguration of a RunTask request, whatever key casing the interpreter hands over."""
    lowered = {key.lower(): value for key, value in request.items()}
    network = {key.lower(): value for key, value in lowered["networkconfiguration"].items()}  # type: ignore[attr-defined]
    return dict(network["awsvpcconfiguration"])


@pytest.mark.parametrize(("security_groups", "expected"), [("", None), ("sg-0a1,sg-0b2", ["sg-0a1", "sg-0b2"])])
def test_run_task_names_security_groups_only_when_some_are_configured(
    security_groups: str, expected: list[str] | None
) -> None:
    """Amazon ECS API reference, AwsVpcConfiguration: securityGroups omitted means the VPC's default security group;
    the definition used to send an empty list instead."""
    files = gpt_oss_repo(shard_bytes=3 * 1024 * 1024)
    _, big_size = _largest(files)
    with LocalHub() as hub:
        hub.add_repo(REPO, files)
        settings = {
            "LAMBDA_MAX_FILE_BYTES": str(big_size - 1),
            "COPY_TASK_ENABLED": "true",
            "COPY_TASK_SECURITY_GROUPS": security_groups,
        }
        with LocalRig(hf_endpoint=hub.url, settings=settings) as rig:
            report = rig.run({"repo_id": REPO, "model_name": "big-shard"})
            requests = list(rig.run_task_requests)

    assert report.status == "SUCCEEDED", report.cause
    assert requests
    for request in requests:
        configuration = {key.lower(): value for key, value in _awsvpc_configuration(request).items()}
        assert configuration.get("securitygroups") == expected
        assert configuration["subnets"] == ["subnet-local"]
        assert configuration["assignpublicip"] == "ENABLED"
