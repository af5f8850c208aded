"""An HTTP emulator of Bedrock Custom Model Import and InvokeModel, for local runs and tests (never deployed).

moto has no model import jobs and its ``invoke_model`` answers ``{}``, so the workflow's Bedrock calls would go
untested. This server speaks the real restJson1 wire protocol of the ``bedrock`` and ``bedrock-runtime`` botocore
models (one server serves both: their paths differ), so unmodified boto3 clients reach it through ``endpoint_url`` or
``AWS_ENDPOINT_URL_BEDROCK`` / ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``.

It behaves as Bedrock does where the workflow depends on it: one concurrent import job per Region, job names never
reusable, idempotency tokens, an import that can fail for the reasons Bedrock gives, cold starts answered with
ModelNotReadyException, and injectable faults (see ``EmulatorBehaviour``).

Its clock can run ahead of the wall clock: ``simulated_seconds`` (the local rig passes the Wait/Retry seconds it
recorded instead of sleeping) is added to every time it reports (``creationTime``, ``endTime``, the HTTP ``Date``
header, a completion's ``created``) and to the ages its behaviours depend on (``import_seconds``, eviction). A handler
that measures elapsed time against Bedrock's times then sees wall time plus simulated time, so hour-long ceilings
are reached in a local run that takes seconds.

The import job reads the S3 prefix once, when it is created (Bedrock copies the artifacts when the job starts), and
keeps the verdict; it only reveals it once the job leaves ``InProgress``.
"""

from __future__ import annotations

import argparse
import copy
import email.utils
import json
import logging
import math
import re
import secrets
import signal
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)

# config.json model_type values Bedrock imports (FACTS.md); its rejection message lists them in lowercase.
SUPPORTED_ARCHITECTURES = (
    "llama",
    "mllama",
    "mistral",
    "mixtral",
    "t5",
    "gpt_bigcode",
    "qwen2",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3",
    "qwen3_moe",
    "gpt_oss",
)
SUPPORTED_TOKENIZER_CLASSES = frozenset(
    f"{base}{suffix}"
    for base in (
        "LlamaTokenizer",
        "CodeLlamaTokenizer",
        "T5Tokenizer",
        "GPT2Tokenizer",
        "GPTNeoXTokenizer",
        "PreTrainedTokenizer",
        "Qwen2Tokenizer",
    )
    for suffix in ("", "Fast")
)
INDEX_FILE = "model.safetensors.index.json"
BYTES_PER_CUSTOM_MODEL_UNIT = 10 * 10**9
# botocore's CustomModelUnitsVersion pattern is ``v\d+.\d+``.
CUSTOM_MODEL_UNITS_VERSION = "v1.0"

# Patterns and lengths copied from botocore's bedrock service model.
JOB_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*"
MODEL_NAME_PATTERN = r"([0-9a-zA-Z][_-]?)+"
ROLE_ARN_PATTERN = r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+"
S3_URI_PATTERN = r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](?:/[-!_*'().a-z0-9A-Z]+(?:/[-!_*'().a-z0-9A-Z]+)*)?/?"
CLIENT_REQUEST_TOKEN_PATTERN = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?"  # noqa: S105 - a pattern, not a secret

# HTTP status of each error, as botocore's models give it (ConflictException is 400 there, not 409).
ERROR_STATUS = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
}
THROTTLED_MESSAGE = "Too many requests, please wait before trying again."
NOT_READY_MESSAGE = (
    "Model is not ready for inference. Wait and try your request again. Refer to "
    "https://docs.aws.amazon.com/bedrock/latest/userguide/invoke-imported-model.html#handle-model-not-ready-exception."
)


class BedrockError(Exception):
    """A modelled Bedrock error: becomes an HTTP error response that botocore turns into a ClientError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_STATUS[code]


class ArtifactRejectedError(Exception):
    """Why Bedrock would fail an import job; the message becomes the job's failureMessage."""


@dataclass
class EmulatorBehaviour:
    """What the emulator does; mutable while it runs. ``*_times`` counters count down as the fault is served."""

    import_polls: int = 2  # GetModelImportJob calls answered InProgress before the job finishes
    import_seconds: float = 0.0  # and wall time since creation before it may finish
    import_never_completes: bool = False  # keeps jobs InProgress, for poll-ceiling tests
    import_holds_until_quota_refusals: int = 0  # jobs stay InProgress until the one-job quota refused this many creates
    force_fail_message: str | None = None  # fails every job that finishes, with this failureMessage
    imported_models_quota: int = 3  # imported models per account and Region (an adjustable AWS quota)
    throttle_create_times: int = 0  # next CreateModelImportJob calls answered ThrottlingException
    role_not_ready_times: int = 0  # next CreateModelImportJob calls rejected as a freshly created role is
    access_denied: bool = False  # CreateModelImportJob denied, as when iam:PassRole is missing
    not_ready_invocations: int = 2  # InvokeModel calls answered ModelNotReadyException while the model is cold
    evict_after_seconds: float = 3600.0  # idle time after which a warm model goes cold again
    throttle_invoke_times: int = 0  # next InvokeModel calls answered ThrottlingException
    invoke_malformed_times: int = 0  # next successful InvokeModel calls answer bytes that are not JSON
    invoke_empty_content_times: int = 0  # next successful InvokeModel calls answer an empty message content
    create_reply_lost_times: int = 0  # next CreateModelImportJob calls create the job, then answer a 500 (reply lost)


@dataclass(frozen=True)
class ArtifactInspection:
    """What the import job learned from the S3 prefix when it was created."""

    failure_message: str | None
    architecture: str | None = None
    instruct_supported: bool = False
    weights_bytes: int = 0


@dataclass
class ImportJob:
    arn: str
    name: str
    model_name: str
    role_arn: str
    s3_uri: str
    creation_time: datetime
    inspection: ArtifactInspection
    started_at: float  # the emulator's monotonic clock at creation (wall plus simulated seconds)
    status: str = "InProgress"
    polls: int = 0
    last_modified_time: datetime | None = None
    end_time: datetime | None = None
    failure_message: str | None = None
    imported_model_arn: str | None = None


@dataclass
class ImportedModel:
    arn: str
    name: str
    job_arn: str
    job_name: str
    s3_uri: str
    architecture: str
    instruct_supported: bool
    custom_model_units: int
    creation_time: datetime
    warm: bool = False
    cold_rejections: int = 0
    last_used: float = 0.0  # the emulator's monotonic clock at the last successful invocation
    invocations: int = 0


class Call(NamedTuple):
    operation: str
    params: dict[str, Any]
    error: str | None = None  # the error code answered, None for a success


def custom_model_units_for(weights_bytes: int) -> int:
    """One Custom Model Unit per started 10 GB of weights, at least one (an approximation of AWS's sizing)."""
    return max(1, math.ceil(weights_bytes / BYTES_PER_CUSTOM_MODEL_UNIT))


def inspect_artifacts(s3: Any, s3_uri: str) -> ArtifactInspection:
    """Decide, as Bedrock does, whether the model under ``s3_uri`` imports; read-only (list + get)."""
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    try:
        sizes = {
            item["Key"][len(prefix) :]: item["Size"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", [])
        }
        return _judge_artifacts(sizes, lambda name: s3.get_object(Bucket=bucket, Key=prefix + name)["Body"].read())
    except ArtifactRejectedError as failure:
        return ArtifactInspection(failure_message=str(failure))
    except ClientError as error:
        return ArtifactInspection(
            failure_message=f"Unable to read the model artifacts from {s3_uri}: {error.response['Error']['Code']}."
        )


def _judge_artifacts(sizes: dict[str, int], read: Callable[[str], bytes]) -> ArtifactInspection:
    def read_json(name: str) -> dict[str, Any]:
        try:
            document = json.loads(read(name))
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ArtifactRejectedError(f"{name} is not a valid JSON object.")
        return document

    if "config.json" not in sizes:
        raise ArtifactRejectedError("config.json was not found in the model artifacts.")
    architecture = read_json("config.json").get("model_type")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ArtifactRejectedError(
            f"The model architecture {architecture!r} is not supported. "
            f"Supported architectures: {', '.join(SUPPORTED_ARCHITECTURES)}."
        )
    weights = [name for name in sizes if name.endswith(".safetensors") and "/" not in name]
    if not weights:
        raise ArtifactRejectedError("No model weights in .safetensors format were found in the model artifacts.")
    if INDEX_FILE in sizes:
        _check_index(read_json(INDEX_FILE), set(sizes))
    if "tokenizer_config.json" not in sizes:
        raise ArtifactRejectedError("tokenizer_config.json was not found in the model artifacts.")
    if "tokenizer.json" not in sizes and "tokenizer.model" not in sizes:
        raise ArtifactRejectedError(
            "No tokenizer was found in the model artifacts: upload tokenizer.json or tokenizer.model."
        )
    tokenizer_config = read_json("tokenizer_config.json")
    tokenizer_class = tokenizer_config.get("tokenizer_class")
    if tokenizer_class is not None and tokenizer_class not in SUPPORTED_TOKENIZER_CLASSES:
        raise ArtifactRejectedError(f"The tokenizer class {tokenizer_class!r} is not supported.")
    return ArtifactInspection(
        failure_message=None,
        architecture=architecture,
        instruct_supported=bool(
            {"chat_template.jinja", "chat_template.json"} & set(sizes) or "chat_template" in tokenizer_config
        ),
        weights_bytes=sum(sizes[name] for name in weights),
    )


def _check_index(index: dict[str, Any], present: set[str]) -> None:
    metadata = index.get("metadata")
    if not isinstance(metadata, dict):
        raise ArtifactRejectedError(f"{INDEX_FILE} is missing the required 'metadata' object.")
    unexpected = sorted(set(metadata) - {"total_size"})
    if unexpected:
        raise ArtifactRejectedError(
            f"{INDEX_FILE} has an unsupported field 'metadata.{unexpected[0]}': metadata may only hold 'total_size'."
        )
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict):
        raise ArtifactRejectedError(f"{INDEX_FILE} is missing the required 'weight_map' object.")
    missing = sorted(set(weight_map.values()) - present)
    if missing:
        raise ArtifactRejectedError(f"The weight file {missing[0]} listed in {INDEX_FILE} was not found.")


def _validation_errors(checks: list[tuple[str, Any, str, int, bool]]) -> list[str]:
    """Smithy-style constraint messages for (field, value, pattern, max length, required)."""
    errors = []
    for name, value, pattern, max_length, required in checks:
        if value is None:
            if required:
                errors.append(f"Value null at '{name}' failed to satisfy constraint: Member must not be null")
        elif not isinstance(value, str) or not value:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must be a non-empty string"
            )
        elif len(value) > max_length:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must have length less than or equal to {max_length}"
            )
        elif not re.fullmatch(pattern, value):
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
    return errors


def _validation_exception(errors: list[str]) -> BedrockError:
    count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
    return BedrockError("ValidationException", f"{count}: {'; '.join(errors)}")


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _resource_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


def _text_of(content: Any) -> str:
    """The text of an OpenAI message content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if isinstance(part, dict))


def _malformed_request(reason: str) -> BedrockError:
    return BedrockError(
        "ValidationException", f"Malformed input request: {reason}, please reformat your input and try again."
    )


def _parse_chat_request(body: bytes) -> dict[str, Any]:
    """Accept only an OpenAI chat-completions body, as an imported model does."""
    try:
        request = json.loads(body)
    except ValueError:
        raise _malformed_request("the body is not valid JSON") from None
    if not isinstance(request, dict):
        raise _malformed_request("expected a JSON object")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _malformed_request("#: required key [messages] not found or empty")
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str | list)
        ):
            raise _malformed_request("#/messages: each message needs a string 'role' and a 'content'")
    max_tokens = request.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise _malformed_request("#/max_tokens: expected a positive integer")
    temperature = request.get("temperature")
    if temperature is not None and not isinstance(temperature, int | float):
        raise _malformed_request("#/temperature: expected a number")
    return request


def _chat_completion(model_arn: str, request: dict[str, Any], *, empty: bool, created: datetime) -> bytes:
    """A deterministic answer that quotes the last user message, cut at max_tokens words as a model would."""
    messages = request["messages"]
    prompt = next((_text_of(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
    words = f"Hello! You asked: {prompt}".split()
    max_tokens = request.get("max_tokens") or len(words)
    finish_reason = "stop" if len(words) <= max_tokens else "length"
    content = "" if empty else " ".join(words[:max_tokens])
    prompt_tokens = max(1, sum(len(_text_of(m["content"]).split()) for m in messages))
    completion_tokens = len(content.split())
    return json.dumps(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(created.timestamp()),
            "model": model_arn,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    ).encode()


class _CreateRequest(NamedTuple):
    job_name: Any
    model_name: Any
    role_arn: Any
    s3_uri: Any
    token: Any


def _parse_create_request(body: bytes) -> _CreateRequest:
    """The CreateModelImportJob fields, not yet validated (validation reports every bad field at once)."""
    try:
        request = json.loads(body)
    except ValueError:
        request = None
    if not isinstance(request, dict):
        raise BedrockError("ValidationException", "The request body is not a JSON object.")
    data_source = request.get("modelDataSource")
    s3_source = data_source.get("s3DataSource") if isinstance(data_source, dict) else None
    return _CreateRequest(
        job_name=request.get("jobName"),
        model_name=request.get("importedModelName"),
        role_arn=request.get("roleArn"),
        s3_uri=s3_source.get("s3Uri") if isinstance(s3_source, dict) else None,
        token=request.get("clientRequestToken"),
    )


def _paginate(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
    try:
        start = int(query.get("nextToken", "0"))
        size = int(query.get("maxResults", "1000"))
    except ValueError:
        raise BedrockError("ValidationException", "Invalid nextToken or maxResults.") from None
    if not 1 <= size <= 1000:
        raise BedrockError(
            "ValidationException",
            f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
            "Member must have value less than or equal to 1000",
        )
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["nextToken"] = str(start + size)
    return page


def _apply_time_query(records: list[Any], query: dict[str, str]) -> list[Any]:
    """Filter by creationTimeAfter/Before and sort by creation time (sortOrder, newest first by default)."""
    after, before = query.get("creationTimeAfter"), query.get("creationTimeBefore")
    if after:
        records = [r for r in records if r.creation_time > datetime.fromisoformat(after)]
    if before:
        records = [r for r in records if r.creation_time < datetime.fromisoformat(before)]
    return sorted(records, key=lambda r: r.creation_time, reverse=query.get("sortOrder", "Descending") == "Descending")


class BedrockEmulator:
    """Serves the ``bedrock`` import-job APIs and ``bedrock-runtime`` InvokeModel on 127.0.0.1.

    ``s3_client_factory`` builds the S3 client the import job reads the model with: a plain ``boto3.client("s3")``
    under moto's ``mock_aws`` (same process), or one pointed at a moto server. ``simulated_seconds`` returns how far
    the emulator's clock runs ahead of the wall clock (see the module docstring).
    """

    def __init__(
        self,
        s3_client_factory: Callable[[], Any],
        behaviour: EmulatorBehaviour | None = None,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        port: int = 0,
        simulated_seconds: Callable[[], float] | None = None,
    ) -> None:
        self.behaviour = behaviour or EmulatorBehaviour()
        self._simulated_seconds = simulated_seconds or (lambda: 0.0)
        self.region = region
        self.account = account
        self.url: str | None = None
        self._s3_client_factory = s3_client_factory
        self._s3_client: Any = None
        self._port = port
        self._lock = threading.RLock()
        self._jobs: dict[str, ImportJob] = {}
        self._models: dict[str, ImportedModel] = {}
        self._tokens: dict[str, str] = {}
        self._quota_refusals = 0
        self._calls: list[Call] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> BedrockEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._server = _Server(self, self._port)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="bedrock-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> BedrockEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- clock -----------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The emulator's clock: wall time plus the simulated seconds."""
        return datetime.now(UTC) + timedelta(seconds=self._simulated_seconds())

    def _monotonic(self) -> float:
        return time.monotonic() + self._simulated_seconds()

    # -- seeding, for tests that need Bedrock to hold something already -------------------------------------------

    def add_imported_model(
        self,
        name: str,
        s3_uri: str,
        *,
        job_name: str | None = None,
        architecture: str = "gpt_oss",
        custom_model_units: int = 1,
        warm: bool = False,
    ) -> str:
        """An imported model (and the Completed job that made it), as an earlier import would have left them."""
        with self._lock:
            now = self.now()
            job = ImportJob(
                arn=f"arn:aws:bedrock:{self.region}:{self.account}:model-import-job/{_resource_id()}",
                name=job_name or f"earlier-{_resource_id()}",
                model_name=name,
                role_arn=f"arn:aws:iam::{self.account}:role/earlier-import",
                s3_uri=s3_uri,
                creation_time=now,
                inspection=ArtifactInspection(failure_message=None, architecture=architecture, instruct_supported=True),
                started_at=self._monotonic(),
                status="Completed",
                last_modified_time=now,
                end_time=now,
            )
            model = ImportedModel(
                arn=f"arn:aws:bedrock:{self.region}:{self.account}:imported-model/{_resource_id()}",
                name=name,
                job_arn=job.arn,
                job_name=job.name,
                s3_uri=s3_uri,
                architecture=architecture,
                instruct_supported=True,
                custom_model_units=custom_model_units,
                creation_time=now,
                warm=warm,
                last_used=self._monotonic(),
            )
            job.imported_model_arn = model.arn
            self._jobs[job.arn] = job
            self._models[model.arn] = model
            return model.arn

    # -- state for assertions (copies, taken under the lock) -------------------------------------------------------

    @property
    def jobs(self) -> list[ImportJob]:
        """Every import job ever created, oldest first, as last seen through the API."""
        with self._lock:
            return [copy.copy(job) for job in self._jobs.values()]

    @property
    def models(self) -> list[ImportedModel]:
        """The imported models that exist now, oldest first."""
        with self._lock:
            return [copy.copy(model) for model in self._models.values()]

    @property
    def calls(self) -> list[Call]:
        """Every request routed to an operation, in order, whatever its outcome."""
        with self._lock:
            return list(self._calls)

    # -- HTTP entry point ------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Route one HTTP request; return (status, headers, body) on the wire protocol's terms."""
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": str(uuid.uuid4())}
        route = next(
            (
                (operation, handler, match)
                for verb, pattern, operation, handler in _ROUTES
                if verb == method and (match := pattern.fullmatch(path))
            ),
            None,
        )
        if route is None:
            headers["x-amzn-ErrorType"] = "UnknownOperationException"
            return 404, headers, json.dumps({"message": f"No operation at {method} {path}"}).encode()
        operation, handler, match = route
        labels = {name: unquote(value) for name, value in match.groupdict().items()}
        params = {**labels, **query, **self._body_summary(operation, body)}
        try:
            with self._lock:
                try:
                    result = handler(self, labels, query, body)
                except BedrockError as error:
                    self._calls.append(Call(operation, params, error.code))
                    raise
                except Exception:
                    self._calls.append(Call(operation, params, "InternalServerException"))
                    raise
                self._calls.append(Call(operation, params))
        except BedrockError as error:
            headers["x-amzn-ErrorType"] = error.code
            return error.status, headers, json.dumps({"message": error.message}).encode()
        except Exception as error:  # like AWS: any fault of the service is a 500
            LOG.exception("%s failed", operation)
            headers["x-amzn-ErrorType"] = "InternalServerException"
            return 500, headers, json.dumps({"message": f"Internal error: {error}"}).encode()
        payload = result if isinstance(result, bytes) else json.dumps(result).encode()
        return _CREATED_STATUS.get(operation, 200), headers, payload

    @staticmethod
    def _body_summary(operation: str, body: bytes) -> dict[str, Any]:
        if operation != "CreateModelImportJob":
            return {}
        try:
            request = json.loads(body)
        except ValueError:
            return {}
        keys = ("jobName", "importedModelName", "clientRequestToken")
        return {key: request[key] for key in keys if isinstance(request, dict) and key in request}

    # -- control plane ---------------------------------------------------------------------------------------------

    def _create_model_import_job(self, _labels: dict[str, str], _query: dict[str, str], body: bytes) -> dict[str, Any]:
        request = _parse_create_request(body)
        self._inject_create_faults(request)
        errors = _validation_errors(
            [
                ("jobName", request.job_name, JOB_NAME_PATTERN, 63, True),
                ("importedModelName", request.model_name, MODEL_NAME_PATTERN, 63, True),
                ("roleArn", request.role_arn, ROLE_ARN_PATTERN, 2048, True),
                ("modelDataSource.s3DataSource.s3Uri", request.s3_uri, S3_URI_PATTERN, 1024, True),
                ("clientRequestToken", request.token, CLIENT_REQUEST_TOKEN_PATTERN, 256, False),
            ]
        )
        if errors:
            raise _validation_exception(errors)
        # Bedrock ignores a repeated token without error (its documentation): answer the first job's ARN.
        if request.token in self._tokens:
            return {"jobArn": self._tokens[request.token]}
        if self.behaviour.role_not_ready_times > 0:
            self.behaviour.role_not_ready_times -= 1
            raise BedrockError(
                "ValidationException",
                f"The provided role ARN is invalid or cannot be assumed by Amazon Bedrock: {request.role_arn}. "
                "Check the role's trust policy and try again.",
            )
        self._check_create_allowed(request)
        if self._s3_client is None:
            self._s3_client = self._s3_client_factory()
        created = self.now()
        job = ImportJob(
            arn=f"arn:aws:bedrock:{self.region}:{self.account}:model-import-job/{_resource_id()}",
            name=request.job_name,
            model_name=request.model_name,
            role_arn=request.role_arn,
            s3_uri=request.s3_uri,
            creation_time=created,
            last_modified_time=created,
            inspection=inspect_artifacts(self._s3_client, request.s3_uri),
            started_at=self._monotonic(),
        )
        self._jobs[job.arn] = job
        if request.token is not None:
            self._tokens[request.token] = job.arn
        if self.behaviour.create_reply_lost_times > 0:
            self.behaviour.create_reply_lost_times -= 1
            raise BedrockError("InternalServerException", "An internal error occurred. Try your request again.")
        return {"jobArn": job.arn}

    def _inject_create_faults(self, request: _CreateRequest) -> None:
        if self.behaviour.access_denied:
            raise BedrockError(
                "AccessDeniedException",
                f"User: arn:aws:sts::{self.account}:assumed-role/modelferry/session is not authorized to perform: "
                f"iam:PassRole on resource: {request.role_arn}",
            )
        if self.behaviour.throttle_create_times > 0:
            self.behaviour.throttle_create_times -= 1
            raise BedrockError("ThrottlingException", THROTTLED_MESSAGE)

    def _check_create_allowed(self, request: _CreateRequest) -> None:
        """Job-name reuse first (a resubmitted request must learn its name is spent), then model name and quotas."""
        if any(job.name == request.job_name for job in self._jobs.values()):
            raise BedrockError("ValidationException", "The provided job name is currently in use.")
        self._advance_all()
        if any(model.name == request.model_name for model in self._models.values()):
            raise BedrockError("ConflictException", f"Model with name {request.model_name} already exists.")
        if any(job.status == "InProgress" for job in self._jobs.values()):
            self._quota_refusals += 1
            raise BedrockError(
                "ServiceQuotaExceededException",
                "You have reached the maximum number of concurrent model import jobs (1) for this Region. "
                "Wait for the running job to finish and try again.",
            )
        quota = self.behaviour.imported_models_quota
        if len(self._models) >= quota:
            raise BedrockError(
                "ServiceQuotaExceededException",
                f"You have reached the maximum number of imported models ({quota}) for this account and Region.",
            )

    def _get_model_import_job(self, labels: dict[str, str], _query: dict[str, str], _body: bytes) -> dict[str, Any]:
        job = self._find_job(labels["jobIdentifier"])
        self._advance(job)
        if job.status == "InProgress":
            job.polls += 1
        return self._describe_job(job)

    def _list_model_import_jobs(self, _labels: dict[str, str], query: dict[str, str], _body: bytes) -> dict[str, Any]:
        self._advance_all()
        jobs = [
            job
            for job in self._jobs.values()
            if query.get("statusEquals", job.status) == job.status and query.get("nameContains", "") in job.name
        ]
        summaries = [
            {
                key: value
                for key, value in self._describe_job(job).items()
                if key not in ("roleArn", "modelDataSource", "failureMessage")
            }
            for job in _apply_time_query(jobs, query)
        ]
        return _paginate(summaries, query, "modelImportJobSummaries")

    def _get_imported_model(self, labels: dict[str, str], _query: dict[str, str], _body: bytes) -> dict[str, Any]:
        model = self._find_model(labels["modelIdentifier"])
        return {
            "modelArn": model.arn,
            "modelName": model.name,
            "jobName": model.job_name,
            "jobArn": model.job_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": model.s3_uri}},
            "creationTime": _timestamp(model.creation_time),
            "modelArchitecture": model.architecture,
            "instructSupported": model.instruct_supported,
            "customModelUnits": {
                "customModelUnitsPerModelCopy": model.custom_model_units,
                "customModelUnitsVersion": CUSTOM_MODEL_UNITS_VERSION,
            },
        }

    def _list_imported_models(self, _labels: dict[str, str], query: dict[str, str], _body: bytes) -> dict[str, Any]:
        self._advance_all()
        models = [model for model in self._models.values() if query.get("nameContains", "") in model.name]
        summaries = [
            {
                "modelArn": model.arn,
                "modelName": model.name,
                "creationTime": _timestamp(model.creation_time),
                "instructSupported": model.instruct_supported,
                "modelArchitecture": model.architecture,
            }
            for model in _apply_time_query(models, query)
        ]
        return _paginate(summaries, query, "modelSummaries")

    def _delete_imported_model(self, labels: dict[str, str], _query: dict[str, str], _body: bytes) -> dict[str, Any]:
        del self._models[self._find_model(labels["modelIdentifier"]).arn]
        return {}

    # -- runtime ---------------------------------------------------------------------------------------------------

    def _invoke_model(self, labels: dict[str, str], _query: dict[str, str], body: bytes) -> bytes:
        behaviour = self.behaviour
        if behaviour.throttle_invoke_times > 0:
            behaviour.throttle_invoke_times -= 1
            raise BedrockError("ThrottlingException", THROTTLED_MESSAGE)
        model = self._find_model(labels["modelId"])
        request = _parse_chat_request(body)
        now = self._monotonic()
        if model.warm and now - model.last_used > behaviour.evict_after_seconds:
            model.warm, model.cold_rejections = False, 0
        if not model.warm:
            if model.cold_rejections < behaviour.not_ready_invocations:
                model.cold_rejections += 1
                raise BedrockError("ModelNotReadyException", NOT_READY_MESSAGE)
            model.warm = True
        model.last_used = now
        model.invocations += 1
        if behaviour.invoke_malformed_times > 0:
            behaviour.invoke_malformed_times -= 1
            reply = _chat_completion(model.arn, request, empty=False, created=self.now())
            return reply[: len(reply) // 2]
        empty = behaviour.invoke_empty_content_times > 0
        if empty:
            behaviour.invoke_empty_content_times -= 1
        return _chat_completion(model.arn, request, empty=empty, created=self.now())

    # -- state machine ---------------------------------------------------------------------------------------------

    def _advance_all(self) -> None:
        for job in self._jobs.values():
            self._advance(job)

    def _advance(self, job: ImportJob) -> None:
        """Finish a job once it has been polled and aged enough; reads the behaviour as it is now."""
        behaviour = self.behaviour
        if (
            job.status != "InProgress"
            or behaviour.import_never_completes
            or self._quota_refusals < behaviour.import_holds_until_quota_refusals
            or job.polls < behaviour.import_polls
            or self._monotonic() - job.started_at < behaviour.import_seconds
        ):
            return
        job.end_time = job.last_modified_time = self.now()
        failure = behaviour.force_fail_message or job.inspection.failure_message
        if failure:
            job.status, job.failure_message = "Failed", failure
            return
        model = ImportedModel(
            arn=f"arn:aws:bedrock:{self.region}:{self.account}:imported-model/{_resource_id()}",
            name=job.model_name,
            job_arn=job.arn,
            job_name=job.name,
            s3_uri=job.s3_uri,
            architecture=job.inspection.architecture or "",
            instruct_supported=job.inspection.instruct_supported,
            custom_model_units=custom_model_units_for(job.inspection.weights_bytes),
            creation_time=job.end_time,
        )
        self._models[model.arn] = model
        job.status, job.imported_model_arn = "Completed", model.arn

    def _find_job(self, identifier: str) -> ImportJob:
        job = self._jobs.get(identifier) or next((j for j in self._jobs.values() if j.name == identifier), None)
        if job is None:
            raise BedrockError("ResourceNotFoundException", f"Could not find model import job {identifier}.")
        return job

    def _find_model(self, identifier: str) -> ImportedModel:
        model = self._models.get(identifier) or next((m for m in self._models.values() if m.name == identifier), None)
        if model is None:
            raise BedrockError("ResourceNotFoundException", f"Could not find imported model {identifier}.")
        return model

    @staticmethod
    def _describe_job(job: ImportJob) -> dict[str, Any]:
        description: dict[str, Any] = {
            "jobArn": job.arn,
            "jobName": job.name,
            "importedModelName": job.model_name,
            "roleArn": job.role_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": job.s3_uri}},
            "status": job.status,
            "creationTime": _timestamp(job.creation_time),
        }
        optional = {
            "lastModifiedTime": job.last_modified_time and _timestamp(job.last_modified_time),
            "endTime": job.end_time and _timestamp(job.end_time),
            "failureMessage": job.failure_message,
            "importedModelArn": job.imported_model_arn,
        }
        description.update({key: value for key, value in optional.items() if value is not None})
        return description


# (HTTP method, path, operation, handler); named groups are the operation's URI labels.
_ROUTES = tuple(
    (method, re.compile(path), operation, handler)
    for method, path, operation, handler in (
        ("POST", r"/model-import-jobs", "CreateModelImportJob", BedrockEmulator._create_model_import_job),
        ("GET", r"/model-import-jobs", "ListModelImportJobs", BedrockEmulator._list_model_import_jobs),
        (
            "GET",
            r"/model-import-jobs/(?P<jobIdentifier>[^/]+)",
            "GetModelImportJob",
            BedrockEmulator._get_model_import_job,
        ),
        ("GET", r"/imported-models", "ListImportedModels", BedrockEmulator._list_imported_models),
        (
            "GET",
            r"/imported-models/(?P<modelIdentifier>[^/]+)",
            "GetImportedModel",
            BedrockEmulator._get_imported_model,
        ),
        (
            "DELETE",
            r"/imported-models/(?P<modelIdentifier>[^/]+)",
            "DeleteImportedModel",
            BedrockEmulator._delete_imported_model,
        ),
        ("POST", r"/model/(?P<modelId>[^/]+)/invoke", "InvokeModel", BedrockEmulator._invoke_model),
    )
)
_CREATED_STATUS = {"CreateModelImportJob": 201}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, emulator: BedrockEmulator, port: int) -> None:
        super().__init__(("127.0.0.1", port), _RequestHandler)
        self.emulator = emulator


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        status, headers, payload = self.server.emulator.handle(self.command, url.path, query, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _dispatch  # noqa: N815 - the names http.server dispatches to

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on the emulator's clock (send_response adds it to every answer)."""
        moment = self.server.emulator.now().timestamp() if timestamp is None else timestamp
        return email.utils.formatdate(moment, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug(format, *args)


def _s3_client_factory(endpoint: str | None, region: str) -> Callable[[], Any]:
    session = boto3.session.Session(region_name=region)
    if endpoint and session.get_credentials() is None:  # a local S3 (moto server) takes any credentials
        session = boto3.session.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - dummy credentials for a local endpoint
            region_name=region,
        )
    return lambda: session.client("s3", endpoint_url=endpoint)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; print one JSON line with the URL first, for whoever started the process."""
    parser = argparse.ArgumentParser(description="Serve the Bedrock emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--s3-endpoint", help="S3 endpoint the import jobs read from (default: boto3's)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    parser.add_argument(
        "--behaviour",
        type=json.loads,
        default={},
        help=f"JSON object of EmulatorBehaviour fields: {', '.join(f.name for f in fields(EmulatorBehaviour))}",
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with BedrockEmulator(
        _s3_client_factory(args.s3_endpoint, args.region),
        EmulatorBehaviour(**args.behaviour),
        region=args.region,
        account=args.account,
        port=args.port,
    ) as emulator:
        print(json.dumps({"url": emulator.url}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
