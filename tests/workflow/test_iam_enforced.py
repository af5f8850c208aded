"""The rig enforces each function's and role's policy from template.yaml: a permission taken out of a copy of the
template fails the stage that needs it with the access error AWS answers, and the failure is still notified (SNS
and EventBridge). The happy path with the bucket under a customer managed key proves the KMS grants complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelferry_cli.local.bedrock import EmulatorBehaviour
from modelferry_cli.local.hub import LocalHub
from modelferry_cli.local.model_factory import gpt_oss_repo
from modelferry_cli.local.rig import ExecutionReport, LocalRig
from tests.support.iam_templates import template_without

pytestmark = pytest.mark.workflow

REPO = "acme/med-gpt-oss-tiny"
REQUEST = {"repo_id": REPO, "model_name": "med-gpt-oss-tiny"}


def _errors_of(report: ExecutionReport, function: str) -> list[dict[str, str]]:
    return [
        result
        for name, _, result in report.lambda_calls
        if name == function and isinstance(result, dict) and "errorType" in result
    ]


def _assert_notified_failure(report: ExecutionReport, stage: str, action: str) -> None:
    assert report.status == "FAILED"
    (notification,) = report.notifications
    assert f"FAILED at {stage}" in notification["subject"], notification["subject"]
    assert action in notification["message"], notification["message"]
    assert [event["detail-type"] for event in report.events] == ["ModelImportFailed"]


def test_plan_without_put_object_fails_in_plan_with_access_denied(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    template = template_without(tmp_path, "PlanFunction", "s3:PutObject")
    with LocalRig(hf_endpoint=hub.url, template_path=template) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}
        plan_workers = {i.worker for i in rig.invocations if i.function == "PlanFunction"}

    # Plan ran in a worker process, which evaluated its calls as PlanFunction's role and sent the refusal back.
    assert plan_workers
    assert denied == {("PlanFunction", "s3:PutObject")}
    (error,) = _errors_of(report, "PlanFunction")
    assert "AccessDenied" in error["errorMessage"]
    assert "s3:PutObject" in error["errorMessage"]
    assert [s.name for s in report.states if s.status == "failed"][:1] == ["Plan"]
    _assert_notified_failure(report, "Plan", "s3:PutObject")


def test_copy_without_the_bucket_keys_generate_data_key_fails_the_copy(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    template = template_without(tmp_path, "CopyFileFunction", "kms:GenerateDataKey")
    with LocalRig(hf_endpoint=hub.url, template_path=template, kms_key=True) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}

    assert denied == {("CopyFileFunction", "kms:GenerateDataKey")}
    errors = _errors_of(report, "CopyFileFunction")
    assert errors
    # The copy engine names S3's refusal by its code (the KMS action is in the AccessDenied message it wraps).
    assert {e["errorType"] for e in errors} == {"StorageAccessDenied"}
    assert all(e["errorMessage"].endswith(": AccessDenied") for e in errors), errors[0]
    assert report.error == "States.ExceedToleratedFailureThreshold"
    _assert_notified_failure(report, "Copy files", "States.ExceedToleratedFailureThreshold")


def test_start_import_without_pass_role_fails_with_bedrocks_access_denied(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    template = template_without(tmp_path, "StartImportFunction", "iam:PassRole")
    behaviour = EmulatorBehaviour()
    with LocalRig(hf_endpoint=hub.url, template_path=template, behaviour=behaviour) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}
        assert rig.bedrock is not None
        assert len(rig.bedrock.jobs) == 0  # the job was never created

    assert denied == {("StartImportFunction", "iam:PassRole")}
    (error,) = _errors_of(report, "StartImportFunction")
    assert "AccessDeniedException" in error["errorMessage"]
    assert "iam:PassRole" in error["errorMessage"]
    _assert_notified_failure(report, "Start import", "iam:PassRole")


def test_the_state_machine_role_must_allow_invoking_each_function(hub: LocalHub, tmp_path: Path) -> None:
    hub.add_repo(REPO, gpt_oss_repo())
    template = template_without(
        tmp_path, "StateMachineRole", "lambda:InvokeFunction", resource={"Fn::GetAtt": ["VerifyModelFunction", "Arn"]}
    )
    with LocalRig(hf_endpoint=hub.url, template_path=template) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}

    assert denied == {("StateMachineRole", "lambda:InvokeFunction")}
    assert not [call for call in report.lambda_calls if call[0] == "VerifyModelFunction"]
    # Step Functions names a Lambda integration's API error Lambda.<code> (the rig cannot prove the cause text).
    _assert_notified_failure(report, "Verify model", "Lambda.AccessDeniedException")


def test_a_run_with_the_bucket_under_a_customer_managed_key_succeeds(hub: LocalHub) -> None:
    """Every function, and the state machine's item reads, can use the bucket's key (HasKmsKey grants)."""
    hub.add_repo(REPO, gpt_oss_repo())
    with LocalRig(hf_endpoint=hub.url, kms_key=True) as rig:
        report = rig.run(REQUEST)
        assert rig.iam_denials == []
    assert report.status == "SUCCEEDED", report.cause
    assert [e["detail-type"] for e in report.events] == ["ModelImportSucceeded"]


def _fargate_rig(hub: LocalHub, template: Path) -> LocalRig:
    files = gpt_oss_repo(shard_bytes=3 * 1024 * 1024)
    biggest = max(len(body) for path, body in files.items() if path.endswith(".safetensors"))
    hub.add_repo(REPO, files)
    settings = {"LAMBDA_MAX_FILE_BYTES": str(biggest - 1), "COPY_TASK_ENABLED": "true"}
    return LocalRig(hf_endpoint=hub.url, template_path=template, settings=settings)


def test_the_state_machine_must_be_allowed_to_pass_the_copy_task_roles(hub: LocalHub, tmp_path: Path) -> None:
    template = template_without(tmp_path, "StateMachineRole", "iam:PassRole")
    with _fargate_rig(hub, template) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}
        assert rig.copy_task_runs == []  # no task was started

    assert denied == {("StateMachineRole", "iam:PassRole")}
    assert report.error == "States.ExceedToleratedFailureThreshold"
    _assert_notified_failure(report, "Copy files", "States.ExceedToleratedFailureThreshold")


def test_the_copy_task_runs_as_its_task_role(hub: LocalHub, tmp_path: Path) -> None:
    """The local Fargate task's process enforces CopyTaskRole: without s3:PutObject its copy is refused, the
    container exits non-zero (States.TaskFailed) and the run is notified."""
    template = template_without(tmp_path, "CopyTaskRole", "s3:PutObject")
    with _fargate_rig(hub, template) as rig:
        report = rig.run(REQUEST)
        ((status, stderr),) = rig.copy_task_exits

    assert status == 1
    assert '"errorType": "StorageAccessDenied"' in stderr
    assert "CopyTaskRole/local is not authorized to perform: s3:PutObject" in stderr

    assert report.error == "States.ExceedToleratedFailureThreshold"
    _assert_notified_failure(report, "Copy files", "States.ExceedToleratedFailureThreshold")
    # The Lambda copies of the other files went through: only the task's role lacks the permission.
    assert not _errors_of(report, "CopyFileFunction")


def test_bedrock_reads_the_model_as_the_import_role(hub: LocalHub, tmp_path: Path) -> None:
    """The emulator reads the weights as ImportRole, as Bedrock assumes it: without s3:GetObject on the model prefix
    the job fails (Bedrock reports it in the job's failureMessage) and the run ends notified."""
    hub.add_repo(REPO, gpt_oss_repo())
    template = template_without(tmp_path, "ImportRole", "s3:GetObject")
    with LocalRig(hf_endpoint=hub.url, template_path=template) as rig:
        report = rig.run(REQUEST)
        denied = {(name, action) for name, action, _ in rig.iam_denials}

    assert denied == {("ImportRole", "s3:GetObject")}
    assert report.error == "ImportJobFailed"
    _assert_notified_failure(report, "Wait for import", "AccessDenied")
