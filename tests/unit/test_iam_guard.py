"""The rig's IAM guard on botocore: the principal in context, the errors a denied call raises, threads inheriting
the principal, a worker process enforcing its own, and the call table covering every call the code makes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from modelferry_cli.local.iam import Principal, StackFacts, acting_as, enforce_in_this_process, installed
from modelferry_cli.local.iam.calls import UnmappedCall, needs_for
from tests.unit.test_iam_calls import BUCKET_KEY_ACTIONS, CALLS, S3_ACTIONS

REGION = "us-east-1"
KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-1111-1111-1111-111111111111"
TOPIC_KEY = "arn:aws:kms:us-east-1:123456789012:key/22222222-2222-2222-2222-222222222222"
ROOT = Path(__file__).resolve().parents[2]


def _principal(*statements: dict[str, Any], bucket_key: str = "", topic: str = "") -> Principal:
    facts = StackFacts(
        region=REGION,
        account="123456789012",
        bucket_keys={"bkt": bucket_key} if bucket_key else {},
        topic_keys={topic: TOPIC_KEY} if topic else {},
    )
    return Principal("TestFunction", list(statements), facts)


def _allow(action: Any, resource: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), installed():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="bkt")
        yield


def _code_status(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def test_calls_without_a_principal_are_not_evaluated(aws: None) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket="bkt", Key="k", Body=b"x")


def test_s3_answers_access_denied_403_and_head_object_a_bare_403(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket="bkt", Key="models/k", Body=b"x")
    with acting_as(_principal(_allow("s3:GetObject", "arn:aws:s3:::bkt/models/*"))):
        assert s3.get_object(Bucket="bkt", Key="models/k")["Body"].read() == b"x"
        with pytest.raises(ClientError) as put:
            s3.put_object(Bucket="bkt", Key="models/k", Body=b"y")
        with pytest.raises(ClientError) as head:
            s3.head_object(Bucket="bkt", Key="runs/k")
    assert _code_status(put.value) == ("AccessDenied", 403)
    assert "s3:PutObject on resource: arn:aws:s3:::bkt/models/k" in put.value.response["Error"]["Message"]
    assert _code_status(head.value) == ("403", 403)


def test_a_missing_key_answers_404_only_with_list_bucket(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    read = _allow("s3:GetObject", "arn:aws:s3:::bkt/*")
    with acting_as(_principal(read)), pytest.raises(ClientError) as without_list:
        s3.get_object(Bucket="bkt", Key="gone")
    with (
        acting_as(_principal(read, _allow("s3:ListBucket", "arn:aws:s3:::bkt"))),
        pytest.raises(ClientError) as with_list,
    ):
        s3.get_object(Bucket="bkt", Key="gone")
    assert _code_status(without_list.value) == ("AccessDenied", 403)
    assert _code_status(with_list.value) == ("NoSuchKey", 404)


def test_list_objects_is_list_bucket_with_the_prefix_in_the_context(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    listing = _allow("s3:ListBucket", "arn:aws:s3:::bkt", Condition={"StringLike": {"s3:prefix": "runs/*"}})
    with acting_as(_principal(listing)):
        s3.list_objects_v2(Bucket="bkt", Prefix="runs/x/")
        with pytest.raises(ClientError) as denied:
            s3.list_objects_v2(Bucket="bkt", Prefix="models/")
    assert _code_status(denied.value) == ("AccessDenied", 403)


def test_a_bucket_under_a_kms_key_needs_the_key_for_reads_and_writes(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    objects = _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::bkt/*")
    with acting_as(_principal(objects, bucket_key=KEY)), pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="bkt", Key="k", Body=b"x")
    assert "kms:GenerateDataKey" in denied.value.response["Error"]["Message"]
    with acting_as(_principal(objects, _allow("kms:GenerateDataKey", KEY), bucket_key=KEY)):
        s3.put_object(Bucket="bkt", Key="k", Body=b"x")
        with pytest.raises(ClientError) as read:
            s3.get_object(Bucket="bkt", Key="k")
    assert "kms:Decrypt" in read.value.response["Error"]["Message"]
    assert _code_status(read.value) == ("AccessDenied", 403)


def test_sns_answers_authorization_error_and_kms_access_denied_for_the_topic_key(aws: None) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="t")["TopicArn"]
    with acting_as(_principal(topic=topic)), pytest.raises(ClientError) as no_publish:
        sns.publish(TopicArn=topic, Message="m")
    with acting_as(_principal(_allow("sns:Publish", topic), topic=topic)), pytest.raises(ClientError) as no_key:
        sns.publish(TopicArn=topic, Message="m")
    with acting_as(_principal(_allow("sns:Publish", topic), _allow("kms:*", TOPIC_KEY), topic=topic)):
        sns.publish(TopicArn=topic, Message="m")
    assert _code_status(no_publish.value) == ("AuthorizationError", 403)
    assert _code_status(no_key.value) == ("KMSAccessDenied", 400)


def test_json_services_answer_access_denied_exception_400(aws: None) -> None:
    events = boto3.client("events", region_name=REGION)
    with acting_as(_principal()), pytest.raises(ClientError) as denied:
        events.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "bus"}])
    assert _code_status(denied.value) == ("AccessDeniedException", 400)
    assert "arn:aws:events:us-east-1:123456789012:event-bus/bus" in denied.value.response["Error"]["Message"]


def test_threads_and_pool_tasks_started_under_a_principal_inherit_it(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    principal = _principal(_allow("s3:GetObject", "arn:aws:s3:::bkt/*"))
    outcomes: list[str] = []

    def put() -> None:
        try:
            s3.put_object(Bucket="bkt", Key="k", Body=b"x")
            outcomes.append("written")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(put).result()  # the worker thread is started here, with no principal
        with acting_as(principal):
            pool.submit(put).result()  # the same worker thread, now running a task submitted under the principal
            thread = threading.Thread(target=put)
            thread.start()
        thread.join()
    assert outcomes == ["written", "AccessDenied", "AccessDenied"]


def test_an_unmapped_call_fails_loudly(aws: None) -> None:
    with acting_as(_principal(_allow("*", "*"))), pytest.raises(UnmappedCall, match=r"s3\.ListBuckets"):
        boto3.client("s3", region_name=REGION).list_buckets()


# Minimal arguments for each call the code makes, to prove the runtime table maps all of them.
_PARAMS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("s3", "get_paginator"): ("ListObjectsV2", {"Bucket": "bkt", "Prefix": "p/"}),
    ("bedrock", "create_model_import_job"): (
        "CreateModelImportJob",
        {"jobName": "j", "importedModelName": "m", "roleArn": "arn:aws:iam::1:role/r"},
    ),
    ("bedrock", "get_model_import_job"): ("GetModelImportJob", {"jobIdentifier": "j"}),
    ("bedrock-runtime", "invoke_model"): ("InvokeModel", {"modelId": "arn:aws:bedrock:us-east-1:1:imported-model/x"}),
    ("sns", "publish"): ("Publish", {"TopicArn": "arn:aws:sns:us-east-1:1:t"}),
    ("events", "put_events"): ("PutEvents", {"Entries": [{"EventBusName": "bus"}]}),
    ("stepfunctions", "start_execution"): ("StartExecution", {"stateMachineArn": "arn:sm"}),
    ("secretsmanager", "get_secret_value"): ("GetSecretValue", {"SecretId": "arn:secret"}),
}
_GENERIC = {
    "Bucket": "bkt",
    "Key": "k",
    "modelIdentifier": "m",
    "jobIdentifier": "j",
    "TableName": "queue",
    "executionArn": "arn:aws:states:us-east-1:1:execution:sm:run",
}


@pytest.mark.parametrize("call", sorted({call for calls in CALLS.values() for call in calls}))
def test_every_call_the_code_makes_has_an_iam_mapping(call: tuple[str, str]) -> None:
    service, method = call
    operation, params = _PARAMS.get(call, ("".join(w.capitalize() for w in method.split("_")), _GENERIC))
    facts = StackFacts(region=REGION, account="123456789012")
    assert needs_for(service, operation, params, facts)


def test_a_worker_process_enforces_its_principal(tmp_path: Path) -> None:
    """What the sandboxed handlers' workers do: enforce_in_this_process, then every call is evaluated."""
    principal = _principal(_allow("s3:GetObject", "arn:aws:s3:::bkt/*"))
    script = f"""
import boto3
from moto import mock_aws
from modelferry_cli.local.iam import enforce_in_this_process
with mock_aws():
    boto3.client("s3", region_name="{REGION}").create_bucket(Bucket="bkt")
    enforce_in_this_process("TestFunction", {principal.to_json()!r})
    try:
        boto3.client("s3", region_name="{REGION}").put_object(Bucket="bkt", Key="k", Body=b"x")
    except Exception as exc:
        print(type(exc).__name__, exc.response["Error"]["Code"])
"""
    env = {"PATH": "", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "PYTHONPATH": str(ROOT / "cli")}
    done = subprocess.run(  # noqa: S603 - this interpreter, a script of this test
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["AccessDenied", "AccessDenied"]


def test_the_spec_a_worker_gets_is_json_and_must_name_the_principal() -> None:
    principal = _principal(_allow("s3:GetObject", "*"), bucket_key=KEY)
    assert Principal.from_json(principal.to_json()) == Principal.from_json(json.dumps(json.loads(principal.to_json())))
    with pytest.raises(ValueError, match="OtherFunction"):
        enforce_in_this_process("OtherFunction", principal.to_json())


@pytest.mark.parametrize("method", sorted(set(S3_ACTIONS) - {"get_paginator"}))
def test_the_runtime_table_agrees_with_the_static_one(method: str) -> None:
    """tests/unit/test_iam_calls.py checks the template against a static table of actions per call; the guard checks
    calls at run time against its own. Both must say the same, KMS on the bucket's key included (the static table
    also wants s3:ListBucket for every read, which the guard checks when a key is missing)."""
    operation = "".join(word.capitalize() for word in method.split("_"))
    facts = StackFacts(region=REGION, account="123456789012", bucket_keys={"bkt": KEY})
    params = {"Bucket": "bkt", "Key": "k", "Prefix": "p/"}
    actions = {need.request.action for need in needs_for("s3", operation, params, facts)}
    assert actions - {"kms:Decrypt", "kms:GenerateDataKey"} <= S3_ACTIONS[method]
    assert actions & {"kms:Decrypt", "kms:GenerateDataKey"} == BUCKET_KEY_ACTIONS.get(method, set())


def test_turning_iam_off_in_the_rig_needs_a_reason() -> None:
    from modelferry_cli.local.rig import LocalRig

    with pytest.raises(ValueError, match="say why"):
        LocalRig(iam_off_because=" ")
    assert LocalRig().iam_enforced
    assert not LocalRig(iam_off_because="measures the rig without the guard").iam_enforced
