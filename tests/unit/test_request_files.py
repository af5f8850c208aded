"""Request files: parsed into validated requests, errors name the entry and the field, one execution per model,
nothing started when an entry is bad, nothing started twice for one file version (moto S3 and Step Functions)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from modelferry.request import parse_request
from modelferry.request_files import (
    MAX_REQUESTS_PER_FILE,
    InvalidRequestFile,
    execution_name,
    parse_request_file,
    process_request_file,
    start_executions,
)
from modelferry_cli.local.moto_patches import FakeLambdaContext

EVENTS = Path(__file__).resolve().parents[2] / "events"
REGION = "us-east-1"
BUCKET = "modelferry-unit-models"
# Step Functions execution names: 1-80 characters; letters, digits, '-' and '_' keep CloudWatch logging working.
EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def _event_file(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


# --- parsing ----------------------------------------------------------------------------------------------------
def test_a_single_request_file_is_one_request() -> None:
    (request,) = parse_request_file(_event_file("request-file-single.json"))
    assert (request.repo_id, request.model_name) == ("Tonic/med-gpt-oss-20b", "med-gpt-oss-20b")
    assert request.revision == "main"


def test_a_multi_request_file_keeps_every_entry_in_order() -> None:
    document = json.loads(_event_file("request-file-multi.json"))
    requests = parse_request_file(_event_file("request-file-multi.json"))
    assert [r.model_name for r in requests] == [e["model_name"] for e in document["requests"]]
    assert requests[1].if_exists == "reuse"
    assert len(requests) == 3


def test_errors_name_every_bad_entry_its_index_and_field() -> None:
    body = json.dumps(
        {
            "requests": [
                {"repo_id": "a/b", "model_name": "good"},
                {"repo_id": "a/b", "model_name": "has space"},
                {"repo_id": "a/b", "model_name": "other", "colour": "red"},
                {"model_name": "x"},
            ]
        }
    )
    with pytest.raises(InvalidRequestFile) as raised:
        parse_request_file(body)
    problems = raised.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("requests[1]: model_name: must be 1-63")
    assert problems[1] == "requests[2]: colour: is not a known field (see docs/execution-input.schema.json)"
    assert problems[2] == "requests[3]: repo_id: is required"


def test_the_same_model_name_twice_in_one_file_is_refused() -> None:
    body = json.dumps({"requests": [{"repo_id": "a/b", "model_name": "m"}, {"repo_id": "c/d", "model_name": "m"}]})
    with pytest.raises(InvalidRequestFile) as raised:
        parse_request_file(body)
    assert raised.value.problems == [
        "requests[1]: model_name: same as requests[0] (one file cannot import two models under one name)"
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "request file: not valid UTF-8 JSON (line 1, column 2)"),
        (b"\xff\xfe", "request file: not valid UTF-8 JSON"),
        (b"[]", "request file: must be a JSON object"),
        (b'{"requests": []}', "requests: must be a non-empty list of requests"),
        (b'{"requests": {"repo_id": "a/b"}}', "requests: must be a non-empty list of requests"),
        (b'{"requests": [{"repo_id": "a/b", "model_name": "m"}], "note": 1}', "request file: note: not allowed"),
        (b'{"repo_id": "a/b"}', "model_name: is required"),
        (b'{"repo_id": "a/b", "model_name": "m", "hf_token": "hf_x"}', "hf_token: secrets are not accepted"),
    ],
)
def test_malformed_files_say_what_is_wrong(body: bytes, expected: str) -> None:
    with pytest.raises(InvalidRequestFile) as raised:
        parse_request_file(body)
    assert raised.value.problems[0].startswith(expected), raised.value.problems


def test_a_file_may_list_at_most_the_limit() -> None:
    entry = {"repo_id": "a/b", "model_name": "m"}
    entries = [{**entry, "model_name": f"m{i}"} for i in range(MAX_REQUESTS_PER_FILE + 1)]
    with pytest.raises(InvalidRequestFile) as raised:
        parse_request_file(json.dumps({"requests": entries}))
    assert f"at most {MAX_REQUESTS_PER_FILE}" in str(raised.value)
    assert len(parse_request_file(json.dumps({"requests": entries[:-1]}))) == MAX_REQUESTS_PER_FILE


def test_errors_never_echo_values_from_the_file() -> None:
    with pytest.raises(InvalidRequestFile) as raised:
        parse_request_file(json.dumps({"requests": [{"repo_id": "evil/<script>", "model_name": "m"}]}))
    assert "<script>" not in str(raised.value)


# --- names --------------------------------------------------------------------------------------------------------
def test_execution_names_are_deterministic_valid_and_distinct() -> None:
    name = execution_name("requests/a.json", '"0123abcd"', 0, "gpt-oss-20b")
    assert name == execution_name("requests/a.json", "0123abcd", 0, "gpt-oss-20b")  # quotes do not matter
    assert name.startswith("gpt-oss-20b-req-")
    assert EXECUTION_NAME.fullmatch(name)
    others = {
        execution_name("requests/a.json", "0123abcd", 1, "gpt-oss-20b"),
        execution_name("requests/a.json", "ffffffff", 0, "gpt-oss-20b"),
        execution_name("requests/b.json", "0123abcd", 0, "gpt-oss-20b"),
    }
    assert name not in others
    assert len(others) == 3
    longest = execution_name("requests/" + "x" * 900 + ".json", "e" * 40, 49, "m" * 63)
    assert EXECUTION_NAME.fullmatch(longest)
    assert longest.endswith("-49")


# --- processing, against moto ---------------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "unit",
        "AWS_SECRET_ACCESS_KEY": "unit",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",  # as in the local rig: the shared Metrics may predate its namespace
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="unit", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        machine = sfn.create_state_machine(
            name="modelferry-unit",
            definition=json.dumps({"StartAt": "Plan", "States": {"Plan": {"Type": "Pass", "End": True}}}),
            roleArn=role,
        )["stateMachineArn"]
        yield {"s3": s3, "sfn": sfn, "machine": machine}


def _put(aws: dict[str, Any], key: str, body: bytes) -> str:
    return str(aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"])


def _process(aws: dict[str, Any], key: str, etag: str) -> Any:
    return process_request_file(BUCKET, key, etag, s3=aws["s3"], sfn=aws["sfn"], state_machine_arn=aws["machine"])


def _executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]


def _read(aws: dict[str, Any], key: str) -> dict[str, Any]:
    return json.loads(aws["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_one_execution_per_listed_model_and_a_result_file_beside_the_request(aws: dict[str, Any]) -> None:
    body = _event_file("request-file-multi.json")
    etag = _put(aws, "requests/batch.json", body)

    outcome = _process(aws, "requests/batch.json", etag)

    assert outcome.status == "started"
    executions = _executions(aws)
    assert len(executions) == 3
    inputs = {
        json.loads(aws["sfn"].describe_execution(executionArn=e["executionArn"])["input"])["model_name"]
        for e in executions
    }
    assert inputs == {"gpt-oss-20b", "med-gpt-oss-20b", "gpt-oss-20b-bf16"}
    reuse = next(e for e in outcome.executions if e.model_name == "med-gpt-oss-20b")
    described = aws["sfn"].describe_execution(executionArn=reuse.execution_arn)
    assert json.loads(described["input"]) == json.loads(body)["requests"][1]  # the entry, as written
    result = _read(aws, "requests/batch.json.result.json")
    assert result["status"] == "started"
    assert result["etag"] == etag.strip('"')
    assert [e["index"] for e in result["executions"]] == [0, 1, 2]
    assert {e["execution_arn"] for e in result["executions"]} == {e["executionArn"] for e in executions}


def test_one_invalid_entry_starts_nothing_and_the_error_file_says_why(aws: dict[str, Any]) -> None:
    document = json.loads(_event_file("request-file-multi.json"))
    document["requests"][2]["revision"] = "../main"
    etag = _put(aws, "requests/batch.json", json.dumps(document).encode())

    outcome = _process(aws, "requests/batch.json", etag)

    assert outcome.status == "rejected"
    assert _executions(aws) == []
    error = _read(aws, "requests/batch.json.error.json")
    assert error["status"] == "rejected"
    assert len(error["problems"]) == 1
    assert error["problems"][0].startswith("requests[2]: revision: must be a branch, tag or commit sha")
    assert "nothing was started" in error["reason"]
    listed = aws["s3"].list_objects_v2(Bucket=BUCKET, Prefix="requests/")["Contents"]
    assert not any(obj["Key"].endswith(".result.json") for obj in listed)


def test_a_redelivered_event_starts_nothing_twice(aws: dict[str, Any]) -> None:
    etag = _put(aws, "requests/batch.json", _event_file("request-file-multi.json"))
    first = _process(aws, "requests/batch.json", etag)

    again = _process(aws, "requests/batch.json", etag)

    assert len(_executions(aws)) == 3
    assert [e.execution_arn for e in again.executions] == [e.execution_arn for e in first.executions]


def test_an_identical_reupload_starts_nothing_but_a_changed_file_starts_anew(aws: dict[str, Any]) -> None:
    body = _event_file("request-file-single.json")
    _process(aws, "requests/one.json", _put(aws, "requests/one.json", body))
    _process(aws, "requests/one.json", _put(aws, "requests/one.json", body))
    assert len(_executions(aws)) == 1

    changed = json.dumps({**json.loads(body), "revision": "v2"}).encode()
    outcome = _process(aws, "requests/one.json", _put(aws, "requests/one.json", changed))

    assert outcome.status == "started"
    assert len(_executions(aws)) == 2


def test_an_event_for_a_replaced_file_version_is_left_to_the_newer_event(aws: dict[str, Any]) -> None:
    old_etag = _put(aws, "requests/one.json", _event_file("request-file-single.json"))
    _put(aws, "requests/one.json", _event_file("request-file-multi.json"))

    outcome = _process(aws, "requests/one.json", old_etag)

    assert outcome.status == "ignored"
    assert "replaced" in (outcome.reason or "")
    assert _executions(aws) == []


def test_outcome_files_and_deleted_files_are_ignored(aws: dict[str, Any]) -> None:
    etag = _put(aws, "requests/a.json.result.json", b"{}")
    assert _process(aws, "requests/a.json.result.json", etag).status == "ignored"
    assert _process(aws, "requests/a.json.error.json", etag).status == "ignored"
    gone = _process(aws, "requests/never-there.json", "0" * 32)
    assert gone.status == "ignored"
    assert "deleted" in (gone.reason or "")
    assert _executions(aws) == []


def test_an_execution_that_already_exists_counts_as_already_started() -> None:
    """Step Functions answers a repeated start of a finished execution with ExecutionAlreadyExists (moto does not)."""
    sfn = boto3.client("stepfunctions", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:modelferry"
    requests = [
        parse_request({"repo_id": "a/b", "model_name": "m0"}),
        parse_request({"repo_id": "a/c", "model_name": "m1"}),
    ]
    with Stubber(sfn) as stub:
        stub.add_client_error("start_execution", "ExecutionAlreadyExists", "Execution Already Exists")
        stub.add_response(
            "start_execution",
            {"executionArn": f"{machine.replace('stateMachine', 'execution')}:x", "startDate": "2026-01-01T00:00:00Z"},
        )
        started = start_executions(requests, key="requests/r.json", etag="abc", state_machine_arn=machine, sfn=sfn)
    assert [s.status for s in started] == ["already_started", "started"]
    name = execution_name("requests/r.json", "abc", 0, "m0")
    assert started[0].execution_arn == f"arn:aws:states:us-east-1:123456789012:execution:modelferry:{name}"


def test_other_start_errors_are_raised_for_lambda_to_retry() -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    request = parse_request({"repo_id": "a/b", "model_name": "m"})
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    with Stubber(sfn) as stub:
        stub.add_client_error("start_execution", "ThrottlingException", "Rate exceeded")
        with pytest.raises(ClientError, match="ThrottlingException"):
            start_executions([request], key="requests/r.json", etag="abc", state_machine_arn=machine, sfn=sfn)


# --- the handler, with the sample event ----------------------------------------------------------------------------
def test_the_sample_event_describes_the_sample_request_file() -> None:
    """events/s3-request-file-created.json is what S3 sends for events/request-file-single.json: same size and ETag
    (the MD5 of a single-part upload), so the handler test below can use both files as they are."""
    event = json.loads(_event_file("s3-request-file-created.json"))
    body = _event_file("request-file-single.json")
    assert event["detail"]["object"]["size"] == len(body)
    assert event["detail"]["object"]["etag"] == hashlib.md5(body, usedforsecurity=False).hexdigest()


def test_the_handler_starts_the_sample_request(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from modelferry.handlers.start_from_request_file import handler

    event = json.loads(_event_file("s3-request-file-created.json"))
    bucket, key = event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
    aws["s3"].create_bucket(Bucket=bucket)
    aws["s3"].put_object(Bucket=bucket, Key=key, Body=_event_file("request-file-single.json"))
    monkeypatch.setenv("MODEL_BUCKET", bucket)
    monkeypatch.setenv("STATE_MACHINE_ARN", aws["machine"])

    result = handler(event, FakeLambdaContext("StartFromRequestFileFunction"))

    assert result["status"] == "started"
    assert result["written_to"] == f"s3://{bucket}/{key}.result.json"
    (execution,) = _executions(aws)
    assert execution["name"] == execution_name(key, event["detail"]["object"]["etag"], 0, "med-gpt-oss-20b")

    monkeypatch.setenv("MODEL_BUCKET", "another-bucket")
    ignored = handler(event, FakeLambdaContext("StartFromRequestFileFunction"))
    assert ignored["status"] == "ignored"
    assert len(_executions(aws)) == 1
