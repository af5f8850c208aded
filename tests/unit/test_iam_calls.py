"""Every AWS call a function's code makes is allowed by that function's policy in template.yaml.

Static: these tests read the code (tests/support/aws_calls.py) and the template, so they cover every branch, taken
or not. The local rig also enforces the same policies at run time on the calls a run does make
(modelferry_cli.local.iam; tests/unit/test_iam_guard.py checks that its table agrees with this one).
The mapping from API calls to IAM actions rests on AWS's pages:
- "Actions, resources, and condition keys for Amazon S3" / "... for Amazon Bedrock" (one action per operation;
  multipart uploads need s3:PutObject, aborting needs s3:AbortMultipartUpload, ListObjectsV2 needs s3:ListBucket).
- S3 API reference, GetObject and HeadObject: without s3:ListBucket a missing key answers 403 Access Denied, with it
  404 Not Found. Every read here treats a missing key as an answer, so every read needs s3:ListBucket.
- S3 user guide, "Using server-side encryption with AWS KMS keys (SSE-KMS)": reading an SSE-KMS object needs
  kms:Decrypt, writing one kms:GenerateDataKey, and a multipart upload both (S3 decrypts the data key to complete it).
- SNS developer guide, "Data encryption": publishing to an encrypted topic needs kms:GenerateDataKey and kms:Decrypt.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from modelferry_cli.local.template import load_template
from tests.support.aws_calls import reachable_calls
from tests.unit.test_template import ROOT, actions, statements, strings

# The copy stage's calls: the copy Lambda and the Fargate task's role run the same code.
COPY_CALLS = {
    ("s3", "head_object"),
    ("s3", "put_object"),
    ("s3", "create_multipart_upload"),
    ("s3", "upload_part"),
    ("s3", "complete_multipart_upload"),
    ("s3", "abort_multipart_upload"),
    ("s3", "delete_object"),
    ("secretsmanager", "get_secret_value"),
}
# The import queue's hand-over of the slot (join, release and cleanup all run it); only joining adds a new item.
QUEUE_CALLS = {
    ("dynamodb", "get_item"),
    ("dynamodb", "update_item"),
    ("dynamodb", "delete_item"),
    ("dynamodb", "query"),
    ("stepfunctions", "send_task_success"),
    ("stepfunctions", "describe_execution"),
}
# What each function's code calls, as the code makes the calls: (boto3 service, method). A new call changes the
# walker's answer and fails test_the_table_is_what_the_code_calls until it is added here, where
# test_every_call_is_allowed then wants its permission.
CALLS = {
    "PlanFunction": {("s3", "put_object"), ("secretsmanager", "get_secret_value")},
    "CopyFileFunction": COPY_CALLS,
    "ValidateInS3Function": {
        ("s3", "head_object"),
        ("s3", "get_object"),
        ("s3", "get_paginator"),  # list_objects_v2 only
        ("s3", "put_object"),
    },
    "StartImportFunction": {
        ("bedrock", "list_model_import_jobs"),
        ("bedrock", "create_model_import_job"),
        ("bedrock", "get_model_import_job"),
        ("bedrock", "get_imported_model"),
        ("bedrock", "delete_imported_model"),
        ("s3", "get_object"),
        ("s3", "put_object"),
    },
    # GetImportedModel: a Completed job with no importedModelArn is looked up by the model's name.
    "CheckImportFunction": {("bedrock", "get_model_import_job"), ("bedrock", "get_imported_model")},
    "JoinImportQueueFunction": QUEUE_CALLS | {("dynamodb", "put_item")},
    "ReleaseImportSlotFunction": QUEUE_CALLS,
    "CleanUpImportQueueFunction": QUEUE_CALLS,
    "VerifyModelFunction": {
        ("bedrock", "get_imported_model"),
        ("bedrock-runtime", "invoke_model"),
        ("s3", "get_object"),
        ("s3", "put_object"),
    },
    "NotifyFunction": {
        ("sns", "publish"),
        ("events", "put_events"),
        ("s3", "list_objects_v2"),  # the copy-failure records
        ("s3", "get_object"),
    },
    "StartFromRequestFileFunction": {
        ("s3", "get_object"),
        ("s3", "put_object"),
        ("stepfunctions", "start_execution"),
    },
    "CopyTaskRole": COPY_CALLS,
}
ENTRY_POINTS = {"CopyTaskRole": ("modelferry.handlers.copy_file_on_fargate", "main")}

S3_READ = {"s3:GetObject"}
S3_ACTIONS = {
    "get_object": {"s3:GetObject", "s3:ListBucket"},
    "head_object": {"s3:GetObject", "s3:ListBucket"},
    "put_object": {"s3:PutObject"},
    "create_multipart_upload": {"s3:PutObject"},
    "upload_part": {"s3:PutObject"},
    "complete_multipart_upload": {"s3:PutObject"},
    "abort_multipart_upload": {"s3:AbortMultipartUpload"},
    "delete_object": {"s3:DeleteObject"},
    "list_objects_v2": {"s3:ListBucket"},
    "get_paginator": {"s3:ListBucket"},
}
# The bucket's key (KmsKeyArn, when given) for each S3 call that touches object data.
BUCKET_KEY_ACTIONS = {
    "get_object": {"kms:Decrypt"},
    "put_object": {"kms:GenerateDataKey"},
    "create_multipart_upload": {"kms:GenerateDataKey", "kms:Decrypt"},
    "upload_part": {"kms:GenerateDataKey"},
    "complete_multipart_upload": {"kms:Decrypt"},
}
OTHER_ACTIONS = {
    ("bedrock-runtime", "invoke_model"): {"bedrock:InvokeModel"},
    ("sns", "publish"): {"sns:Publish"},
    ("events", "put_events"): {"events:PutEvents"},
    ("stepfunctions", "start_execution"): {"states:StartExecution"},
    ("stepfunctions", "send_task_success"): {"states:SendTaskSuccess"},
    ("stepfunctions", "describe_execution"): {"states:DescribeExecution"},
    ("secretsmanager", "get_secret_value"): {"secretsmanager:GetSecretValue"},
}


def _camel(method: str) -> str:
    return "".join(word.capitalize() for word in method.split("_"))


def iam_actions(service: str, method: str) -> set[str]:
    if service == "s3":
        return S3_ACTIONS[method]
    if service in {"bedrock", "dynamodb"}:
        return {f"{service}:{_camel(method)}"}
    return OTHER_ACTIONS[(service, method)]


def policies_of(resource: dict[str, Any], attached: list[Any] = ()) -> Any:  # type: ignore[assignment]
    return [resource["Properties"]["Policies"], *attached]


def attached_policies(resources: dict[str, Any], logical_id: str) -> list[Any]:
    """Policies attached to a function's SAM-made role (`<Function>Role`) beside it, where a policy must name the
    state machine that names the function (a cycle inside the function's own Policies)."""
    return [
        r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::RolePolicy" and r["Properties"]["RoleName"] == {"Ref": f"{logical_id}Role"}
    ]


def grants(
    resource: dict[str, Any],
    attached: list[Any] = (),  # type: ignore[assignment]
) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
    for statement, conditions in statements(policies_of(resource, attached)):
        if statement["Effect"] == "Allow":
            for action in actions(statement):
                yield action, statement, conditions


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")["Resources"]


def _entry(logical_id: str, resources: dict[str, Any]) -> tuple[str, str]:
    if logical_id in ENTRY_POINTS:
        return ENTRY_POINTS[logical_id]
    module, attribute = resources[logical_id]["Properties"]["Handler"].rsplit(".", 1)
    return module, attribute


def test_the_table_covers_every_function(resources: dict[str, Any]) -> None:
    functions = {name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert functions | {"CopyTaskRole"} == set(CALLS)


@pytest.mark.parametrize("logical_id", sorted(CALLS))
def test_the_table_is_what_the_code_calls(resources: dict[str, Any], logical_id: str) -> None:
    assert set(reachable_calls(*_entry(logical_id, resources))) == CALLS[logical_id]


def test_the_walker_follows_helpers_and_classes() -> None:
    """Guard: the calls hidden in adapters (put_json, WaitLedger, the transfer engine's classes) must be found."""
    found = reachable_calls("modelferry.handlers.copy_file", "handler")
    assert ("s3", "upload_part") in found  # inside a class method of the transfer engine
    assert ("bedrock", "get_imported_model") in reachable_calls("modelferry.handlers.check_import", "handler")


@pytest.mark.parametrize("logical_id", sorted(CALLS))
def test_every_call_is_allowed(resources: dict[str, Any], logical_id: str) -> None:
    granted = {action for action, _, _ in grants(resources[logical_id], attached_policies(resources, logical_id))}
    missing = {
        f"{service}.{method} needs {action}"
        for service, method in CALLS[logical_id]
        for action in iam_actions(service, method)
        if action not in granted
    }
    assert not missing, f"{logical_id}: {sorted(missing)}"


@pytest.mark.parametrize("logical_id", sorted(CALLS))
def test_every_bucket_call_can_use_the_buckets_kms_key_when_there_is_one(
    resources: dict[str, Any], logical_id: str
) -> None:
    """Under the bucket's own encryption condition (HasKmsKey; the copy task's HasCopyTaskAndKmsKey implies it)."""
    needed = {a for service, method in CALLS[logical_id] if service == "s3" for a in BUCKET_KEY_ACTIONS.get(method, ())}
    on_bucket_key = {
        action
        for action, statement, conditions in grants(resources[logical_id])
        if statement["Resource"] == {"Ref": "KmsKeyArn"} and any(c.endswith("KmsKey") for c in conditions)
    }
    assert needed - on_bucket_key == set(), f"{logical_id} misses {sorted(needed - on_bucket_key)} on KmsKeyArn"


def test_the_bucket_is_encrypted_with_the_key_under_the_condition_the_grants_use(resources: dict[str, Any]) -> None:
    (rule,) = resources["ModelBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    condition, with_key, _ = rule["Fn::If"]
    assert condition == "HasKmsKey"
    assert with_key["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Ref": "KmsKeyArn"}


def test_publishing_to_the_encrypted_topic_can_use_its_key(resources: dict[str, Any]) -> None:
    on_topic_key = {
        action
        for action, statement, _ in grants(resources["NotifyFunction"])
        if statement["Resource"] == {"Fn::GetAtt": ["NotificationTopicKey", "Arn"]}
    }
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= on_topic_key


@pytest.mark.parametrize("logical_id", sorted(CALLS))
def test_bucket_reads_reach_objects_under_a_granted_prefix(resources: dict[str, Any], logical_id: str) -> None:
    """Guard against a read granted only on the wrong prefix: each read action names an object path in the bucket."""
    for action, statement, _ in grants(resources[logical_id]):
        if action in S3_READ:
            paths = [s.split(":s3:::", 1)[1] for s in strings(statement["Resource"]) if ":s3:::" in s]
            assert paths, statement
            assert all(re.match(r"\$\{Bucket\}/", p) for p in paths), paths
