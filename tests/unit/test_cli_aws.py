"""The AWS side of `modelferry start|watch|status|list`: the state machine comes from the stack's outputs, execution
names become ARNs, a request is checked before AWS is called, and every AWS error is one line saying what to do."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from moto import mock_aws

from modelferry_cli import aws_context, executions_cmd
from modelferry_cli.main import build_parser, main

REGION = "us-east-1"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:modelferry-ModelImportStateMachine-Ab12"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    monkeypatch.chdir(tmp_path)  # no samconfig.toml unless a test writes one
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "unit",
        "AWS_SECRET_ACCESS_KEY": "unit",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MODELFERRY_STACK", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("cloudformation", region_name=REGION)


def _stack(cloudformation: Any, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _client_error(code: str, operation: str, message: str = "it said no") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


# --- finding the state machine ----------------------------------------------------------------------------------
def test_the_state_machine_comes_from_the_stack_output(aws: Any) -> None:
    _stack(aws, "modelferry-dev", {"StateMachineArn": MACHINE, "TopicArn": "arn:aws:sns:us-east-1:1:t"})
    assert aws_context.state_machine_arn(_args("list", "--stack", "modelferry-dev"), aws) == MACHINE
    explicit = "arn:aws:states:us-east-1:123456789012:stateMachine:other"
    assert aws_context.state_machine_arn(_args("list", "--state-machine", explicit), aws) == explicit


def test_a_missing_stack_and_a_stack_without_the_output_say_what_to_do(aws: Any) -> None:
    with pytest.raises(aws_context.StackProblem, match=r"stack 'nope' not found in us-east-1: deploy it"):
        aws_context.state_machine_arn(_args("list", "--stack", "nope"), aws)
    _stack(aws, "something-else", {"Other": "x"})
    with pytest.raises(aws_context.StackProblem, match=r"has no StateMachineArn output: is it a modelferry stack"):
        aws_context.state_machine_arn(_args("list", "--stack", "something-else"), aws)


def test_the_default_stack_is_the_environments_then_samconfigs(
    aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert aws_context.default_stack(_args("list")) == "modelferry"
    (tmp_path / "samconfig.toml").write_text('version = 0.1\n[default.global.parameters]\nstack_name = "mf-team"\n')
    assert aws_context.default_stack(_args("list")) == "mf-team"
    monkeypatch.setenv("MODELFERRY_STACK", "mf-env")
    assert aws_context.default_stack(_args("list")) == "mf-env"
    assert aws_context.default_stack(_args("list", "--stack", "mf-flag")) == "mf-flag"


def test_an_execution_name_becomes_an_arn_of_the_stacks_machine(aws: Any) -> None:
    _stack(aws, "modelferry", {"StateMachineArn": MACHINE})
    arn = aws_context.execution_arn_for(_args("status", "run-1"), "run-1")
    assert arn == "arn:aws:states:us-east-1:123456789012:execution:modelferry-ModelImportStateMachine-Ab12:run-1"
    assert aws_context.execution_arn_for(_args("status", arn), arn) == arn
    with pytest.raises(aws_context.StackProblem, match="not an execution ARN"):
        aws_context.execution_arn_for(_args("status", MACHINE), MACHINE)


# --- one line per AWS error -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            _client_error("AccessDeniedException", "StartExecution"),
            "AccessDeniedException from StartExecution: it said no -> your identity needs states:StartExecution",
        ),
        (_client_error("AccessDenied", "ListParts"), "your identity needs s3:ListMultipartUploadParts"),
        (_client_error("ExecutionDoesNotExist", "DescribeExecution"), "-> check the execution ARN or name"),
        (_client_error("ExpiredTokenException", "ListExecutions"), "your session expired: sign in again"),
        (_client_error("SomethingNew", "ListExecutions", "a\nmulti-line\n message"), "a multi-line message -> see"),
        (NoCredentialsError(), "no AWS credentials found: set AWS_PROFILE or pass --profile"),
        (NoRegionError(), "no AWS Region: pass --region or set AWS_REGION"),
        (EndpointConnectionError(endpoint_url="https://states.x.amazonaws.com"), "cannot reach https://states.x"),
    ],
)
def test_aws_errors_become_one_line_with_what_to_do(error: Exception, expected: str) -> None:
    line = aws_context.describe_aws_error(error)
    assert expected in line
    assert "\n" not in line


def test_commands_print_the_one_line_on_stderr_and_exit_2(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--stack", "absent"]) == 2
    assert main(["watch", "run-1", "--stack", "absent"]) == 2
    _stack(aws, "modelferry", {"StateMachineArn": MACHINE})
    assert main(["status", "never-ran"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    missing = "modelferry: stack 'absent' not found in us-east-1: deploy it (make deploy), or pass --stack NAME"
    assert lines[:2] == [missing + " / --region"] * 2
    assert lines[2].startswith("modelferry: ExecutionDoesNotExist from DescribeExecution: Execution Does Not Exist")
    assert lines[2].endswith("-> check the execution ARN or name and the Region (modelferry list shows recent ones)")
    assert len(lines) == 3
    assert captured.out == ""


# --- start ----------------------------------------------------------------------------------------------------------
def test_start_refuses_a_bad_request_before_calling_aws(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["start", "--repo", "acme/model", "--name", "has space", "--stack", "absent"])
    assert status == 2
    assert capsys.readouterr().err.startswith("modelferry: invalid request: model_name: must be 1-63")


def test_start_builds_the_request_from_the_flags_over_an_input_file(tmp_path: Path) -> None:
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"verify_max_tokens": 16, "model_name": "ignored"}))
    args = _args(
        "start", "--repo", "a/b", "--name", "m", "--include", "*.json", "--include", "*.safetensors", "--if-exists",
        "reuse", "--input", str(extra),
    )  # fmt: skip
    request = executions_cmd.build_request(args)
    args.input.close()
    assert request == {
        "verify_max_tokens": 16,
        "repo_id": "a/b",
        "model_name": "m",
        "include": ["*.json", "*.safetensors"],
        "if_exists": "reuse",
    }


def test_start_starts_one_named_execution_and_says_how_to_watch_it(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    machine = sfn.create_state_machine(
        name="modelferry-unit",
        definition=json.dumps({"StartAt": "Plan", "States": {"Plan": {"Type": "Pass", "End": True}}}),
        roleArn=role["Arn"],
    )["stateMachineArn"]
    _stack(aws, "modelferry", {"StateMachineArn": machine})

    status = main(["start", "--repo", "openai/gpt-oss-20b", "--name", "gpt-oss-20b", "--revision", "v1"])

    out = capsys.readouterr().out
    (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert status == 0
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {
        "repo_id": "openai/gpt-oss-20b",
        "model_name": "gpt-oss-20b",
        "revision": "v1",
    }
    assert f"Watch    modelferry watch {execution['executionArn']}" in out
    assert "console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in out


def test_default_execution_names_are_valid_and_readable() -> None:
    name = executions_cmd.default_execution_name("m" * 63, datetime(2026, 1, 15, 9, 30, tzinfo=UTC))
    assert re.fullmatch(r"m+-20260115T093000Z-[0-9a-f]{4}", name)
    assert len(name) <= 80
    assert executions_cmd.default_execution_name("gpt-oss-20b") != executions_cmd.default_execution_name("gpt-oss-20b")


def test_list_with_no_executions_says_so(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _stack(aws, "modelferry", {"StateMachineArn": MACHINE})
    sfn = boto3.client("stepfunctions", region_name=REGION)
    role = boto3.client("iam", region_name=REGION).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]
    machine = sfn.create_state_machine(
        name="empty",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=role["Arn"],
    )["stateMachineArn"]
    assert main(["list", "--state-machine", machine, "--status", "FAILED"]) == 0
    assert capsys.readouterr().out == f"no executions of {machine} with status FAILED\n"
