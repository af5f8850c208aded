"""The emulator's service state: import jobs, imported models, quotas, injected faults and its clock.

``BedrockEmulator`` routes each request to an operation under one lock and keeps every call for assertions; the
``server`` module only carries bytes to and from ``handle``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import unquote

from modelferry_cli.local.bedrock.chat import REASONING_ARCHITECTURES, chat_completion, parse_chat_request
from modelferry_cli.local.bedrock.errors import BedrockError
from modelferry_cli.local.bedrock.judge import IMPORT_REGIONS, ArtifactInspection, inspect_artifacts
from modelferry_cli.local.bedrock.server import EmulatorServer
from modelferry_cli.local.bedrock.wire import (
    CLIENT_REQUEST_TOKEN_PATTERN,
    JOB_NAME_PATTERN,
    MODEL_NAME_PATTERN,
    ROLE_ARN_PATTERN,
    S3_URI_PATTERN,
    CreateRequest,
    apply_time_query,
    paginate,
    parse_create_request,
    parse_tags_request,
    timestamp,
    validation_errors,
    validation_exception,
)

LOG = logging.getLogger(__name__)

BYTES_PER_CUSTOM_MODEL_UNIT = 10 * 10**9
# botocore's CustomModelUnitsVersion pattern is ``v\d+.\d+``.
CUSTOM_MODEL_UNITS_VERSION = "v1.0"
THROTTLED_MESSAGE = "Too many requests, please wait before trying again."
NOT_READY_MESSAGE = (
    "Model is not ready for inference. Wait and try your request again. Refer to "
    "https://docs.aws.amazon.com/bedrock/latest/userguide/invoke-imported-model.html#handle-model-not-ready-exception."
)


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
    model_tags: list[dict[str, str]] = field(default_factory=list)  # importedModelTags, given to the model it makes


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
    invocation_failure: str | None = None  # what every invocation fails with (see judge.ArtifactInspection)
    warm: bool = False
    cold_rejections: int = 0
    last_used: float = 0.0  # the emulator's monotonic clock at the last successful invocation
    invocations: int = 0
    tags: list[dict[str, str]] = field(default_factory=list)


class Call(NamedTuple):
    operation: str
    params: dict[str, Any]
    error: str | None = None  # the error code answered, None for a success


def custom_model_units_for(weights_bytes: int) -> int:
    """One Custom Model Unit per started 10 GB of weights, at least one (an approximation of AWS's sizing)."""
    return max(1, math.ceil(weights_bytes / BYTES_PER_CUSTOM_MODEL_UNIT))


def _resource_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


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
        self._server: EmulatorServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> BedrockEmulator:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        self._server = EmulatorServer(self, self._port)
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
        tags: dict[str, str] | None = None,
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
                tags=[{"key": key, "value": value} for key, value in (tags or {}).items()],
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
        request = parse_create_request(body)
        self._inject_create_faults(request)
        errors = validation_errors(
            [
                ("jobName", request.job_name, JOB_NAME_PATTERN, 63, True),
                ("importedModelName", request.model_name, MODEL_NAME_PATTERN, 63, True),
                ("roleArn", request.role_arn, ROLE_ARN_PATTERN, 2048, True),
                ("modelDataSource.s3DataSource.s3Uri", request.s3_uri, S3_URI_PATTERN, 1024, True),
                ("clientRequestToken", request.token, CLIENT_REQUEST_TOKEN_PATTERN, 256, False),
            ]
        )
        if errors:
            raise validation_exception(errors)
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
            inspection=inspect_artifacts(self._s3_client, request.s3_uri, self.region),
            started_at=self._monotonic(),
            model_tags=request.model_tags,
        )
        self._jobs[job.arn] = job
        if request.token is not None:
            self._tokens[request.token] = job.arn
        if self.behaviour.create_reply_lost_times > 0:
            self.behaviour.create_reply_lost_times -= 1
            raise BedrockError("InternalServerException", "An internal error occurred. Try your request again.")
        return {"jobArn": job.arn}

    def _inject_create_faults(self, request: CreateRequest) -> None:
        if self.behaviour.access_denied:
            raise BedrockError(
                "AccessDeniedException",
                f"User: arn:aws:sts::{self.account}:assumed-role/modelferry/session is not authorized to perform: "
                f"iam:PassRole on resource: {request.role_arn}",
            )
        if self.behaviour.throttle_create_times > 0:
            self.behaviour.throttle_create_times -= 1
            raise BedrockError("ThrottlingException", THROTTLED_MESSAGE)

    def _check_create_allowed(self, request: CreateRequest) -> None:
        """The Region first, then job-name reuse (a resubmitted request must learn its name is spent), then model
        name and quotas."""
        if self.region not in IMPORT_REGIONS:
            # Undocumented: what CreateModelImportJob answers where Custom Model Import does not run.
            raise BedrockError("ValidationException", f"Custom model import is not supported in {self.region}.")
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
            for job in apply_time_query(jobs, query)
        ]
        return paginate(summaries, query, "modelImportJobSummaries")

    def _get_imported_model(self, labels: dict[str, str], _query: dict[str, str], _body: bytes) -> dict[str, Any]:
        model = self._find_model(labels["modelIdentifier"])
        return {
            "modelArn": model.arn,
            "modelName": model.name,
            "jobName": model.job_name,
            "jobArn": model.job_arn,
            "modelDataSource": {"s3DataSource": {"s3Uri": model.s3_uri}},
            "creationTime": timestamp(model.creation_time),
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
                "creationTime": timestamp(model.creation_time),
                "instructSupported": model.instruct_supported,
                "modelArchitecture": model.architecture,
            }
            for model in apply_time_query(models, query)
        ]
        return paginate(summaries, query, "modelSummaries")

    def _list_tags_for_resource(self, _labels: dict[str, str], _query: dict[str, str], body: bytes) -> dict[str, Any]:
        arn = parse_tags_request(body)
        model = self._models.get(arn)
        if model is not None:
            return {"tags": list(model.tags)}
        if arn in self._jobs:
            return {"tags": []}
        raise BedrockError("ResourceNotFoundException", f"Could not find resource {arn}.")

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
        request = parse_chat_request(body)
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
        if model.invocation_failure:
            raise BedrockError("ModelErrorException", model.invocation_failure)
        if behaviour.invoke_malformed_times > 0:
            behaviour.invoke_malformed_times -= 1
            reply = chat_completion(model.arn, request, empty=False, created=self.now())
            return reply[: len(reply) // 2]
        empty = behaviour.invoke_empty_content_times > 0
        if empty:
            behaviour.invoke_empty_content_times -= 1
        return chat_completion(
            model.arn, request, empty=empty, created=self.now(), reasoning=model.architecture in REASONING_ARCHITECTURES
        )

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
            invocation_failure=job.inspection.invocation_failure,
            tags=list(job.model_tags),
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
            "creationTime": timestamp(job.creation_time),
        }
        optional = {
            "lastModifiedTime": job.last_modified_time and timestamp(job.last_modified_time),
            "endTime": job.end_time and timestamp(job.end_time),
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
        ("POST", r"/listTagsForResource", "ListTagsForResource", BedrockEmulator._list_tags_for_resource),
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
