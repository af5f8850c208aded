"""`modelferry start | watch | status | list`: run and follow imports of a deployed stack.

The state machine is found from the stack's outputs (CloudFormation DescribeStacks, output StateMachineArn);
everything else reads Step Functions and S3. Exit status: 0 succeeded (or still running, for status/list/start
without --watch), 1 the execution failed, timed out or was aborted, 2 AWS refused or the input is invalid.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from modelferry.adapters.import_queue import ImportQueue
from modelferry.contract import WorkflowState
from modelferry.errors import InvalidRequest
from modelferry.request import parse_request
from modelferry_cli.aws_context import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    StackProblem,
    add_aws_arguments,
    console_url,
    execution_arn_for,
    one_line_aws_errors,
    region_of,
    session,
    state_machine_arn,
)
from modelferry_cli.progress import Watcher, error_message, initial_state
from modelferry_cli.queue_cmd import import_queue
from modelferry_cli.watch_view import human_seconds, render_block, watch

DEFAULT_INTERVAL = 5.0


def _exit_status(status: str) -> int:
    return EXIT_OK if status in {"SUCCEEDED", "RUNNING"} else EXIT_FAILED


def _add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between refreshes (default: %(default)s)"
    )
    display = parser.add_mutually_exclusive_group()
    display.add_argument("--live", dest="live", action="store_true", default=None, help="redraw in place")
    display.add_argument("--plain", dest="live", action="store_false", help="print one line per change")


def _queue_or_none(args: argparse.Namespace, region: str | None) -> ImportQueue | None:
    """The stack's import line, to show a waiting run's place; None (the view says less) if the stack has none."""
    try:
        return import_queue(args, region)
    except StackProblem:
        return None


def _watcher(args: argparse.Namespace, execution_arn: str) -> Watcher:
    region = region_of(execution_arn)
    aws = session(args, region)
    return Watcher(
        execution_arn, sfn=aws.client("stepfunctions"), s3=aws.client("s3"), queue=_queue_or_none(args, region)
    )


def _watch(args: argparse.Namespace, execution_arn: str, out: TextIO) -> int:
    watcher = _watcher(args, execution_arn)
    live = args.live if args.live is not None else out.isatty()
    try:
        snap = watch(watcher, out, interval=args.interval, live=live)
    except KeyboardInterrupt:
        print("\nstopped watching; the execution goes on (modelferry status shows it)", file=out)
        return EXIT_OK
    return _exit_status(snap.status)


# --- start --------------------------------------------------------------------------------------------------------
def add_start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, metavar="ORG/NAME", help="Hugging Face repository")
    parser.add_argument("--name", required=True, metavar="MODEL", help="imported model name in Bedrock")
    parser.add_argument("--revision", help="branch, tag or commit (default: main)")
    parser.add_argument(
        "--include", action="append", metavar="GLOB", help="also copy matching paths Bedrock does not load (repeatable)"
    )
    parser.add_argument("--exclude", action="append", metavar="GLOB", help="never copy matching paths (repeatable)")
    parser.add_argument("--if-exists", choices=["fail", "reuse", "replace"], help="when the model name exists")
    parser.add_argument("--verify-prompt", help="prompt of the one verification call")
    parser.add_argument("--verify-expect", help="text the verification reply must contain")
    parser.add_argument("--allow-quantized", action="store_true", default=None, help="import quantized weights")
    parser.add_argument("--input", type=argparse.FileType("r"), help="JSON file with more execution input fields")
    parser.add_argument("--execution-name", help="name of the execution (default: MODEL-<UTC time>-<random>)")
    parser.add_argument("--watch", action="store_true", help="follow the execution until it ends")
    _add_watch_arguments(parser)
    add_aws_arguments(parser)


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = json.load(args.input) if args.input else {}
    request.update({"repo_id": args.repo, "model_name": args.name})
    optional = {
        "revision": args.revision,
        "include": args.include,
        "exclude": args.exclude,
        "if_exists": args.if_exists,
        "verify_prompt": args.verify_prompt,
        "verify_expect": args.verify_expect,
        "allow_quantized": args.allow_quantized,
    }
    request.update({key: value for key, value in optional.items() if value is not None})
    return request


def default_execution_name(model_name: str, now: datetime | None = None) -> str:
    stamp = f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"
    return f"{model_name[: 80 - len(stamp) - 1]}-{stamp}"


@one_line_aws_errors
def run_start(args: argparse.Namespace, out: TextIO) -> int:
    request = build_request(args)
    try:
        parse_request(request)  # the same rules Plan applies, before anything reaches AWS
    except InvalidRequest as exc:
        print(f"modelferry: invalid request: {exc}", file=sys.stderr)
        return EXIT_ERROR
    aws = session(args)
    machine = state_machine_arn(args, aws.client("cloudformation"))
    name = args.execution_name or default_execution_name(args.name)
    arn = aws.client("stepfunctions").start_execution(stateMachineArn=machine, name=name, input=json.dumps(request))[
        "executionArn"
    ]
    print(f"Started  {name}", file=out)
    print(f"         {arn}", file=out)
    print(f"Console  {console_url(arn)}", file=out)
    if not args.watch:
        print(f"Watch    modelferry watch {arn}", file=out)
        return EXIT_OK
    print("", file=out)
    return _watch(args, arn, out)


# --- watch / status --------------------------------------------------------------------------------------------------
def add_watch_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("execution", metavar="EXECUTION", help="execution ARN, or a name of the stack's machine")
    _add_watch_arguments(parser)
    add_aws_arguments(parser)


@one_line_aws_errors
def run_watch(args: argparse.Namespace, out: TextIO) -> int:
    return _watch(args, execution_arn_for(args, args.execution), out)


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("execution", metavar="EXECUTION", help="execution ARN, or a name of the stack's machine")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_aws_arguments(parser)


@one_line_aws_errors
def run_status(args: argparse.Namespace, out: TextIO) -> int:
    arn = execution_arn_for(args, args.execution)
    snap = _watcher(args, arn).snapshot()
    if args.json:
        print(json.dumps(snap.to_json(), default=str), file=out)
    else:
        print("\n".join(render_block(snap)), file=out)
    return _exit_status(snap.status)


# --- list -------------------------------------------------------------------------------------------------------------
def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=int, default=10, help="how many executions, newest first (default: 10)")
    parser.add_argument(
        "--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"], help="only this status"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    add_aws_arguments(parser)


def _outcome_of(described: Mapping[str, Any]) -> str:
    status = described["status"]
    if status == "SUCCEEDED":
        job = WorkflowState.model_validate_json(described["output"]).import_status
        return (job.imported_model_arn if job else None) or "succeeded"
    if status == "RUNNING":
        return "running (modelferry watch NAME)"
    cause = " ".join((error_message(described.get("cause")) or "").split())
    return f"{described.get('error') or status}: {cause}"[:160]


@one_line_aws_errors
def run_list(args: argparse.Namespace, out: TextIO) -> int:
    aws = session(args)
    machine = state_machine_arn(args, aws.client("cloudformation"))
    sfn = aws.client("stepfunctions")
    query: dict[str, Any] = {"stateMachineArn": machine, "maxResults": max(1, min(args.limit, 1000))}
    if args.status:
        query["statusFilter"] = args.status
    executions = sfn.list_executions(**query)["executions"][: args.limit]
    rows: list[dict[str, Any]] = []
    for execution in executions:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        request = initial_state(described)
        stopped = described.get("stopDate") or datetime.now(UTC)
        rows.append(
            {
                "name": execution["name"],
                "status": execution["status"],
                "started": execution["startDate"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "duration_seconds": round((stopped - execution["startDate"]).total_seconds(), 1),
                "model_name": request.request_field("model_name"),
                "repo_id": request.request_field("repo_id"),
                "outcome": _outcome_of(described),
            }
        )
    if args.json:
        print(json.dumps(rows), file=out)
        return EXIT_OK
    if not rows:
        print(f"no executions of {machine}" + (f" with status {args.status}" if args.status else ""), file=out)
        return EXIT_OK
    print(f"{'STARTED (UTC)':<19}  {'STATUS':<9}  {'TOOK':>10}  {'MODEL':<24}  OUTCOME", file=out)
    for row in rows:
        print(
            f"{row['started']:<19}  {row['status']:<9}  {human_seconds(row['duration_seconds']):>10}  "
            f"{(row['model_name'] or '?')[:24]:<24}  {row['outcome']}",
            file=out,
        )
    return EXIT_OK
