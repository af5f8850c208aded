"""Request files: a JSON file put under `requests/` in the model bucket asks for one import or several.

A file holds either one execution input (`{"repo_id": ..., "model_name": ...}`) or `{"requests": [input, ...]}`
listing several models. Every entry is checked before anything starts: one bad entry and nothing starts, and a
`<file>.error.json` beside the file says which entry and which field. Otherwise one execution starts per entry and
a `<file>.result.json` lists them.

Execution names derive from the file's key, its ETag and the entry's index, so a redelivered event (EventBridge
delivers at least once, Lambda retries asynchronous invocations) finds the executions already there and starts
nothing twice. A changed file has a new ETag and starts new executions; an identical re-upload does not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError
from pydantic import BaseModel

from modelferry.adapters.aws import error_code, is_missing
from modelferry.errors import InvalidRequest
from modelferry.naming import execution_arn
from modelferry.request import ImportRequest, parse_request

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient

REQUESTS_PREFIX = "requests/"
RESULT_SUFFIX = ".result.json"
ERROR_SUFFIX = ".error.json"
MAX_REQUESTS_PER_FILE = 50  # each start is one StartExecution call; 50 stay well inside the function's timeout
MAX_FILE_BYTES = 256 * 1024  # the execution input limit of Step Functions; a request file has no need to be larger
EXECUTION_NAME_MAX = 80  # Step Functions execution names: 1-80 characters


class InvalidRequestFile(InvalidRequest):
    """The request file is not JSON, has the wrong shape, or an entry broke a rule; `problems` has one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class StartedExecution(BaseModel):
    index: int
    repo_id: str
    model_name: str
    execution_name: str
    execution_arn: str
    status: Literal["started", "already_started"]


class RequestFileOutcome(BaseModel):
    """What the handler did with one event; also the body of the `.result.json` / `.error.json` file."""

    request_file: str
    etag: str
    status: Literal["started", "rejected", "ignored"]
    reason: str | None = None
    problems: list[str] = []
    executions: list[StartedExecution] = []
    written_to: str | None = None
    processed_at: str = ""


# --- parsing ----------------------------------------------------------------------------------------------------
def parse_request_file(body: bytes | str) -> list[ImportRequest]:
    """The requests in a file's bytes; raise InvalidRequestFile naming every entry and field that failed."""
    if len(body) > MAX_FILE_BYTES:
        raise InvalidRequestFile([f"request file: {len(body)} bytes, more than the {MAX_FILE_BYTES} allowed"])
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise InvalidRequestFile([f"request file: not valid UTF-8 JSON{where}"]) from None
    return parse_request_document(document)


def parse_request_document(document: Any) -> list[ImportRequest]:
    """One request object, or `{"requests": [...]}`: every entry validated, all problems reported together."""
    if not isinstance(document, dict):
        raise InvalidRequestFile(
            ['request file: must be a JSON object: one request, or {"requests": [request, ...]} for several models']
        )
    if "requests" not in document:
        try:
            return [parse_request(document)]
        except InvalidRequest as exc:
            raise InvalidRequestFile([str(exc)]) from None

    others = sorted(set(document) - {"requests"})
    entries = document["requests"]
    problems: list[str] = []
    if others:
        problems.append(
            f"request file: {', '.join(others)}: not allowed beside 'requests' (put each model's fields in its entry)"
        )
    if not isinstance(entries, list) or not entries:
        problems.append("requests: must be a non-empty list of requests")
        raise InvalidRequestFile(problems)
    if len(entries) > MAX_REQUESTS_PER_FILE:
        problems.append(f"requests: {len(entries)} entries, at most {MAX_REQUESTS_PER_FILE} per file")
        raise InvalidRequestFile(problems)

    parsed = _parse_entries(entries, problems)
    if problems:
        raise InvalidRequestFile(problems)
    return parsed


def _parse_entries(entries: list[Any], problems: list[str]) -> list[ImportRequest]:
    """The valid entries; each invalid one (or a model name used twice) adds a problem naming its index."""
    parsed: list[ImportRequest] = []
    first_use: dict[str, int] = {}
    for index, entry in enumerate(entries):
        try:
            request = parse_request(entry)
        except InvalidRequest as exc:
            problems.append(f"requests[{index}]: {exc}")
            continue
        if request.model_name in first_use:
            problems.append(
                f"requests[{index}]: model_name: same as requests[{first_use[request.model_name]}] "
                "(one file cannot import two models under one name)"
            )
        first_use.setdefault(request.model_name, index)
        parsed.append(request)
    return parsed


# --- naming -------------------------------------------------------------------------------------------------------
def execution_name(key: str, etag: str, index: int, model_name: str) -> str:
    """`<model>-req-<16 hex of key and ETag>-<index>`: the same file version and entry always get the same name."""
    bare_etag = etag.strip('"')
    digest = hashlib.sha256(f"{key}\n{bare_etag}".encode()).hexdigest()[:16]
    tail = f"-req-{digest}-{index}"
    return model_name[: EXECUTION_NAME_MAX - len(tail)] + tail


def result_key(key: str, outcome: Literal["started", "rejected"]) -> str:
    return key + (RESULT_SUFFIX if outcome == "started" else ERROR_SUFFIX)


def is_own_output(key: str) -> bool:
    """The rule's pattern (requests/*.json) also matches the files this module writes beside a request."""
    return key.endswith((RESULT_SUFFIX, ERROR_SUFFIX))


# --- processing ---------------------------------------------------------------------------------------------------
def start_executions(
    requests: list[ImportRequest], *, key: str, etag: str, state_machine_arn: str, sfn: SFNClient
) -> list[StartedExecution]:
    """One StartExecution per request, named from the file; an execution that already exists counts as started.

    Step Functions answers a repeated start of a running execution (same name, same input) with that execution,
    and one of a finished execution with ExecutionAlreadyExists: either way there is one execution per entry.
    """
    started = []
    for index, request in enumerate(requests):
        name = execution_name(key, etag, index, request.model_name)
        status: Literal["started", "already_started"] = "started"
        try:
            arn = sfn.start_execution(
                stateMachineArn=state_machine_arn,
                name=name,
                input=json.dumps(request.model_dump(mode="json", exclude_unset=True)),
            )["executionArn"]
        except ClientError as exc:
            if error_code(exc) != "ExecutionAlreadyExists":
                raise
            arn = execution_arn(state_machine_arn, name)
            status = "already_started"
        started.append(
            StartedExecution(
                index=index,
                repo_id=request.repo_id,
                model_name=request.model_name,
                execution_name=name,
                execution_arn=arn,
                status=status,
            )
        )
    return started


def process_request_file(
    bucket: str,
    key: str,
    etag: str,
    *,
    s3: S3Client,
    sfn: SFNClient,
    state_machine_arn: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RequestFileOutcome:
    """Read the file version the event names, validate every entry, start one execution each, write the outcome."""
    etag = etag.strip('"')
    outcome = RequestFileOutcome(request_file=f"s3://{bucket}/{key}", etag=etag, status="ignored")
    outcome.processed_at = now().isoformat(timespec="seconds")
    if is_own_output(key):
        outcome.reason = "an outcome file written by modelferry, not a request"
        return outcome
    try:
        # IfMatch: read exactly the version this event is about; a newer upload has an event of its own.
        body = s3.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        if code in {"PreconditionFailed", "412"}:
            outcome.reason = "the file was replaced since this event; the newer upload's event starts its requests"
            return outcome
        if is_missing(exc):
            outcome.reason = "the file was deleted before it could be read"
            return outcome
        raise

    try:
        requests = parse_request_file(body)
    except InvalidRequestFile as exc:
        outcome.status = "rejected"
        outcome.problems = exc.problems
        outcome.reason = "nothing was started: fix the entries named in problems and upload the file again"
    else:
        outcome.executions = start_executions(
            requests, key=key, etag=etag, state_machine_arn=state_machine_arn, sfn=sfn
        )
        outcome.status = "started"

    target = result_key(key, outcome.status)
    outcome.written_to = f"s3://{bucket}/{target}"
    s3.put_object(
        Bucket=bucket,
        Key=target,
        Body=(outcome.model_dump_json(indent=2) + "\n").encode(),
        ContentType="application/json",
    )
    return outcome
