"""The local rig: the real state machine definition and the real handlers, on one machine.

Step Functions, Lambda, S3, SNS, EventBridge and Secrets Manager come from moto (in-process, with its Step
Functions interpreter actually executing the definition; a moto server shares those backends with other processes);
each Lambda invocation runs in a sandbox of its own (a worker process: `sandbox`); Bedrock from the project's
emulator over real HTTP (boto3 reaches it through AWS_ENDPOINT_URL_BEDROCK[_RUNTIME]); the Hugging Face Hub from
HF_ENDPOINT when given, else from the built-in LocalHub serving a generated GPT-OSS-shaped model. The wiring
(functions, handlers, environment variables, timeouts and memory sizes, definition substitutions) is read from
template.yaml, so the local run cannot drift from what is deployed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import weakref
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3

from modelferry.contract import WorkflowState
from modelferry_cli.local import iam, lambda_worker
from modelferry_cli.local import template as cfn
from modelferry_cli.local.aws_server import AwsServer, RequestFilter
from modelferry_cli.local.bedrock import BedrockEmulator, EmulatorBehaviour
from modelferry_cli.local.moto_patches import (
    EndedExecution,
    SimulatedClock,
    context_start_time_as_text,
    distributed_map_failure_threshold,
    executions_as,
    fail_state_accepts_states_errors,
    imports_read_as_their_role,
    lambdas_through,
    local_fargate,
    on_execution_end,
    simulated_waits,
    stop_ends_task_token_waits,
    terminal_errors_escape_states_all,
)
from modelferry_cli.local.sandbox import FunctionConfig, Invocation, SandboxPool

REPO_ROOT = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "modelferry-local-models"
EVENT_BUS = "modelferry-local-outcomes"
IMPORT_QUEUE_TABLE = "modelferry-local-import-queue"
STATUS_CHANGE = "Step Functions Execution Status Change"
# What the copy task's task definition gives its container (template.yaml), besides the COPY_ITEM override.
COPY_TASK_ENVIRONMENT = ("MODEL_BUCKET", "HF_ENDPOINT", "HF_TOKEN_SECRET_ARN", "HF_HUB_DISABLE_XET")
TOKEN_SECRET_NAME = "modelferry/local/hf-token"  # noqa: S105 - a name, not a secret
STACK_NAME = "modelferry-local"
STATE_MACHINE_NAME = "modelferry-local"
COPY_TASK_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelferry-copy:local"


@dataclass(frozen=True)
class WorkerStep:
    """A test hook run inside Lambda workers: `target` ("package.module:callable") is called in each new worker of
    the functions named in `functions` (None: every function) as `callable(function_logical_id, argument)`, after
    the function's environment is set and before its handler is imported; it may return a wrapper for the handler
    (`wrap(handler) -> handler`). `argument` crosses a process boundary: keep it JSON-serialisable."""

    target: str
    argument: Any = None
    functions: frozenset[str] | None = None


# Steps and listeners every rig made inside `for_every_rig` gets (fixtures that do not build the rig themselves).
_EVERY_RIG_STEPS: list[WorkerStep] = []
_EVERY_RIG_LISTENERS: dict[str, Callable[[str, Any], Any]] = {}
_LIVE_RIGS: weakref.WeakSet[LocalRig] = weakref.WeakSet()


@contextmanager
def for_every_rig(
    steps: Sequence[WorkerStep] = (), listeners: Mapping[str, Callable[[str, Any], Any]] | None = None
) -> Iterator[None]:
    """Every LocalRig built inside the block, or already running when it starts, runs `steps` in its (new)
    workers and answers `listeners`' channels (a fixture need not know which rig a test builds, nor when)."""
    _EVERY_RIG_STEPS.extend(steps)
    _EVERY_RIG_LISTENERS.update(listeners or {})
    for live in list(_LIVE_RIGS):
        for channel, listener in (listeners or {}).items():
            live.listen(channel, listener)
        for step in steps:
            live.add_worker_setup(step.target, step.argument, step.functions)
    try:
        yield
    finally:
        for step in steps:
            _EVERY_RIG_STEPS.remove(step)
        for channel in listeners or {}:
            _EVERY_RIG_LISTENERS.pop(channel, None)


@dataclass
class StateRun:
    name: str
    seconds: float
    status: str  # "ok" or "failed"


@dataclass
class ExecutionReport:
    execution_arn: str
    status: str
    error: str | None
    cause: str | None
    input: dict[str, Any]
    output: dict[str, Any] | None
    states: list[StateRun]
    notifications: list[dict[str, Any]]
    events: list[dict[str, Any]]
    simulated_wait_seconds: float
    wall_seconds: float
    lambda_calls: list[tuple[str, Any, Any]] = field(default_factory=list)

    @property
    def state(self) -> WorkflowState | None:
        """The execution's final state document; None for a failed run (its Fail state outputs nothing)."""
        return WorkflowState.model_validate(self.output) if self.output is not None else None

    @property
    def s3_uri(self) -> str | None:
        run = self.state.run if self.state else None
        return run.s3_uri if run else None

    @property
    def imported_model_arn(self) -> str | None:
        job = self.state.import_status if self.state else None
        return job.imported_model_arn if job else None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "error": self.error,
            "cause": self.cause,
            "execution_arn": self.execution_arn,
            "s3_uri": self.s3_uri,
            "imported_model_arn": self.imported_model_arn,
            "states": [vars(s) for s in self.states],
            "notifications": self.notifications,
            "events": self.events,
            "simulated_wait_seconds": self.simulated_wait_seconds,
            "wall_seconds": round(self.wall_seconds, 3),
            "output": self.output,
        }


def no_registry_fetch() -> None:
    """huggingface_hub (1.33, pinned) fetches an AI-agent registry from its import-time endpoint (huggingface.co)
    to build its User-Agent; a local run and the tests must talk to the local Hub only."""
    from huggingface_hub.utils import _detect_agent

    _detect_agent._fetch_registry = lambda: None


def local_settings(hf_endpoint: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Values for every environment variable the template gives a function, as the local stack would."""
    values = {
        "AWS_REGION": REGION,  # set by the Lambda runtime itself; a test overrides it to play a stack elsewhere
        "MODEL_BUCKET": BUCKET,
        "MODEL_PREFIX": "models/",
        "RUNS_PREFIX": "modelferry-runs/",
        "HF_ENDPOINT": hf_endpoint,
        "HF_TOKEN_SECRET_ARN": "",
        "IMPORT_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/modelferry-local-import",
        "IMPORT_POLL_SECONDS": "60",
        "IMPORT_TIMEOUT_SECONDS": "14400",
        "IMPORT_QUOTA_WAIT_SECONDS": "21600",
        "IMPORT_QUEUE_WAIT_SECONDS": "172800",
        "IMPORT_QUEUE_TABLE": IMPORT_QUEUE_TABLE,
        "MODEL_NOT_READY_BUDGET_SECONDS": "1200",
        "LAMBDA_MAX_FILE_BYTES": str(20 * 1024**3),
        "COPY_TASK_ENABLED": "false",
        "COPY_TASK_SUBNETS": "subnet-local",
        "COPY_TASK_SECURITY_GROUPS": "sg-local",
        "COPY_TASK_ASSIGN_PUBLIC_IP": "true",
        "TOPIC_ARN": "",  # filled in once the topic exists
        "STATE_MACHINE_ARN": "",  # filled in once the state machine exists
        "EVENT_BUS_NAME": EVENT_BUS,
        "PRICE_PER_CMU_MINUTE": "0.0785",
        "STORAGE_PRICE_PER_CMU_MONTH": "1.95",
        "POWERTOOLS_SERVICE_NAME": "modelferry",
        "POWERTOOLS_METRICS_NAMESPACE": "Modelferry",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    values.update(overrides or {})
    return values


def create_import_queue_table(dynamodb: Any, name: str, template: Mapping[str, Any]) -> None:
    """The import queue's table as the template declares it (keys and billing), in moto's DynamoDB: the rig's and
    the unit tests' tables cannot drift from the deployed one."""
    props = template["Resources"]["ImportQueueTable"]["Properties"]
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
    )


class LocalRig:
    """Context manager: `with LocalRig() as rig: report = rig.run({"repo_id": ..., "model_name": ...})`."""

    def __init__(
        self,
        *,
        hf_endpoint: str | None = None,
        behaviour: EmulatorBehaviour | None = None,
        settings: dict[str, str] | None = None,
        hf_token: str | None = None,
        template_path: Path = REPO_ROOT / "template.yaml",
        kms_key: bool = False,
        iam_off_because: str | None = None,
        definition_transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        timeouts: Mapping[str, float] | None = None,
        memory_sizes: Mapping[str, int] | None = None,
        worker_setup: Sequence[WorkerStep] = (),
    ) -> None:
        """`kms_key`: the bucket is encrypted with a customer managed key (the template's KmsKeyArn), so every
        object read and write also needs that key. `iam_off_because`: turns IAM enforcement off (it is on by
        default); a test that needs that says why. Each Lambda invocation runs in a sandbox (`sandbox`). `timeouts` and
        `memory_sizes` override the template's Timeout (seconds) and MemorySize (MiB) per function logical id, so a
        test can make a function time out without waiting minutes. `worker_setup`: test hooks run in the workers."""
        if iam_off_because is not None and not iam_off_because.strip():
            raise ValueError("iam_off_because: say why IAM enforcement is off for this rig")
        # A benchmark's variant of the definition (e.g. without the import queue, to compare); None for the real one.
        self._definition_transform = definition_transform
        self._hf_endpoint = hf_endpoint
        self._behaviour = behaviour
        self._settings_overrides = settings or {}
        self._hf_token = hf_token
        self._template_path = template_path
        self._kms_key = kms_key
        self.iam_enforced = iam_off_because is None
        self.principals: dict[str, iam.Principal] = {}
        self._stack = ExitStack()
        self.clock = SimulatedClock()
        self.hub: Any = None
        self.bedrock: BedrockEmulator | None = None
        self.lambda_calls: list[tuple[str, Any, Any]] = []
        # Invocations end on several threads at once (a Map's children): one at a time records its call. (Re-entrant:
        # a test's own recorder may wrap _record_call while holding it.)
        self.calls_lock = threading.RLock()
        self.copy_task_runs: list[dict[str, str]] = []
        self.copy_task_exits: list[tuple[int, str]] = []  # each local Fargate task's exit status and stderr
        self.run_task_requests: list[dict[str, Any]] = []  # ecs:runTask.sync parameters, as the definition built them
        self._moto_server_url: str | None = None
        self._tmp: Path | None = None
        self._timeouts = dict(timeouts or {})
        self._memory_sizes = dict(memory_sizes or {})
        self._worker_setup = [*_EVERY_RIG_STEPS, *worker_setup]
        self._listeners: dict[str, Callable[[str, Any], Any]] = dict(_EVERY_RIG_LISTENERS)
        self._aws_server: AwsServer | None = None
        self._pool: SandboxPool | None = None
        self._callers: dict[str, str] = {}  # access key id -> function, of the live workers
        self.invocations: list[Invocation] = []
        # What worker setup steps reported on channels no listener answers: channel -> [(function, value)].
        self.worker_reports: dict[str, list[tuple[str, Any]]] = {}

    # --- set-up ---------------------------------------------------------------------------------------------
    def __enter__(self) -> LocalRig:
        try:
            self._set_up()
        except BaseException:
            self._stack.close()
            raise
        _LIVE_RIGS.add(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _LIVE_RIGS.discard(self)
        self._stack.close()

    def _set_up(self) -> None:
        from moto import mock_aws

        no_registry_fetch()

        # moto's interpreter logs every failed state with its full context; the report says it better.
        logging.getLogger("moto").setLevel(logging.CRITICAL)

        template = cfn.load_template(self._template_path)
        functions = cfn.functions(template)
        _, machine = cfn.state_machine(template)

        hf_endpoint = self._hf_endpoint or self._start_local_hub()
        settings = local_settings(hf_endpoint, self._settings_overrides)
        self._stack.enter_context(
            mock.patch.dict(
                os.environ,
                {
                    **settings,
                    "AWS_DEFAULT_REGION": REGION,
                    "AWS_ACCESS_KEY_ID": "local",
                    "AWS_SECRET_ACCESS_KEY": "local",
                },
            )
        )
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}})  # type: ignore[typeddict-item]
        )
        # The emulator's clock runs ahead by the Wait/Retry seconds the rig skipped, so the handlers' ceilings (import
        # poll, quota wait, not-ready budget), measured on Bedrock's clock, are reached as they would be on AWS.
        # An import job reads the model as the role it was given, as Bedrock does: ImportRole for this stack's jobs.
        self._stack.enter_context(imports_read_as_their_role(self._principal_of_role))
        self.bedrock = BedrockEmulator(
            lambda: boto3.client("s3", region_name=REGION),
            self._behaviour,
            region=settings["AWS_REGION"],  # the stack's Region (settings={"AWS_REGION": ...} plays another one)
            simulated_seconds=lambda: self.clock.total_seconds,
        ).start()
        self._stack.callback(self.bedrock.stop)
        os.environ["AWS_ENDPOINT_URL_BEDROCK"] = os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"] = str(self.bedrock.url)

        self._create_aws_resources()
        self._create_import_queue_table(template)
        missing = {name for spec in functions.values() for name in spec["environment"] if name not in os.environ}
        if missing:
            raise RuntimeError(f"template.yaml gives functions variables the local rig does not set: {sorted(missing)}")

        if self.iam_enforced:
            self._stack.enter_context(iam.installed())
        self._denials_before = len(iam.guard.denials)
        self._start_sandboxes(functions)
        self._stack.enter_context(lambdas_through(self._invoke_in_sandbox))
        self._stack.enter_context(simulated_waits(self.clock))
        self._stack.enter_context(distributed_map_failure_threshold())
        self._stack.enter_context(fail_state_accepts_states_errors())
        self._stack.enter_context(terminal_errors_escape_states_all())
        self._stack.enter_context(context_start_time_as_text())
        self._stack.enter_context(local_fargate(self._run_copy_task, self.run_task_requests.append))
        self._stack.enter_context(executions_as(lambda: self.principals.get(self._machine_role)))
        self._template = template
        self._stack.enter_context(stop_ends_task_token_waits())
        self._stack.enter_context(self._queue_clock_follows_the_simulated_waits())
        self._function_arns = {logical_id: self._create_function(logical_id) for logical_id in functions}
        self.state_machine_arn = self._create_state_machine(machine)
        os.environ["STATE_MACHINE_ARN"] = self.state_machine_arn
        if self.iam_enforced:
            self.principals.update(self._principals(template))
        self._machine_id = cfn.state_machine(template)[0]
        self._trigger_queues = self._wire_triggers(template)
        self._stack.enter_context(on_execution_end(self._send_status_change))

    # --- Lambda sandboxes ---------------------------------------------------------------------------------------
    def _start_sandboxes(self, functions: dict[str, dict[str, Any]]) -> None:
        self._functions = functions
        self._start_moto_server()
        self._pool = SandboxPool(
            work_dir=self._work_dir(),
            endpoint_environment=self._endpoint_environment,
            on_report=self._on_report,
            on_ask=self._on_ask,
            on_caller=self._on_caller,
            setup_steps=[(step.target, step.argument, step.functions) for step in self._worker_setup],
        )
        self._stack.callback(self._pool.close)

    def _endpoint_environment(self, access_key: str) -> dict[str, str]:
        """What reaches the rig from a worker: credentials of its own (so the rig knows who calls), moto's server
        for every AWS service, the Bedrock emulator for Bedrock."""
        assert self._moto_server_url is not None  # noqa: S101 - started with the sandboxes
        return {
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_ENDPOINT_URL": self._moto_server_url,
            "AWS_ENDPOINT_URL_BEDROCK": os.environ["AWS_ENDPOINT_URL_BEDROCK"],
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": os.environ["AWS_ENDPOINT_URL_BEDROCK_RUNTIME"],
        }

    def _function_config(self, function: str) -> FunctionConfig:
        """The function as Lambda would run it: the template's environment with the local stack's values, and what
        Lambda's runtime sets itself (Lambda developer guide, "Defined runtime environment variables")."""
        spec = self._functions[function]
        memory = int(self._memory_sizes.get(function, spec["memory_size"]))
        environment = {name: os.environ[name] for name in spec["environment"]}
        environment.update(
            {
                "AWS_REGION": os.environ["AWS_REGION"],
                # Lambda sets both to the function's Region; the local stack's resources all live in REGION, so a
                # rig playing a stack elsewhere (settings={"AWS_REGION": ...}) changes only what the code reads.
                "AWS_DEFAULT_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": function,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
                "_HANDLER": spec["handler"],
                "LANG": "en_US.UTF-8",
                "TZ": ":UTC",
                "PATH": os.environ.get("PATH", ""),
            }
        )
        return FunctionConfig(
            function=function,
            handler=spec["handler"],
            environment=environment,
            timeout_seconds=float(self._timeouts.get(function, spec["timeout"])),
            memory_mb=memory,
            policy_spec_json=self.policy_spec_json(function) if function in self.principals else None,
        )

    def _invoke_in_sandbox(self, function: str, event: Any) -> tuple[Any, bool]:
        if function not in self._functions:
            raise KeyError(f"no function {function!r} in template.yaml")
        assert self._pool is not None  # noqa: S101 - started with the rig
        with iam.acting_as(None):  # the rig's own bookkeeping; the worker acts as the function
            invocation = self._pool.invoke(self._function_config(function), event)
            with self.calls_lock:
                self.invocations.append(invocation)
            self._record_call(function, event, invocation.result)
        return invocation.result, invocation.errored

    def add_worker_setup(self, target: str, argument: Any = None, functions: Iterable[str] | None = None) -> None:
        """Run a WorkerStep in the workers started from now on (idle workers started without it retire)."""
        step = WorkerStep(target, argument, frozenset(functions) if functions is not None else None)
        self._worker_setup.append(step)
        if self._pool is not None:
            self._pool.add_setup_step((step.target, step.argument, step.functions))

    def listen(self, channel: str, listener: Callable[[str, Any], Any]) -> None:
        """`listener(function, value)` receives what worker steps report or ask on `channel` (its return value is
        the answer to `lambda_worker.ask_parent`)."""
        self._listeners[channel] = listener

    def _on_report(self, function: str, channel: str, value: Any) -> None:
        listener = self._listeners.get(channel)
        if listener is not None:
            listener(function, value)
        else:
            with self.calls_lock:
                self.worker_reports.setdefault(channel, []).append((function, value))

    def _on_ask(self, function: str, channel: str, value: Any) -> Any:
        if channel == lambda_worker.SIMULATED_SECONDS:
            return self.clock.total_seconds
        listener = self._listeners.get(channel)
        if listener is None:
            raise LookupError(f"a worker of {function} asked on {channel!r}, which no listener answers")
        return listener(function, value)

    def _on_caller(self, access_key: str, function: str | None) -> None:
        assert self._aws_server is not None  # noqa: S101 - started with the sandboxes
        with self.calls_lock:
            if function is None:
                self._callers.pop(access_key, None)
                self._aws_server.forget_caller(access_key)
            else:
                self._callers[access_key] = function
                self._aws_server.register_caller(access_key, function)

    def add_request_filter(self, request_filter: RequestFilter) -> Callable[[], None]:
        """A filter on every request workers (and the local Fargate task) send to moto; returns its remover."""
        if self._aws_server is None:
            raise RuntimeError("request filters need the sandboxed rig (in_process=False)")
        return self._aws_server.add_filter(request_filter)

    def kill_worker(self, access_key: str, error_type: str, message: str) -> bool:
        """Kill the worker that signs with `access_key` mid-invocation: its invocation fails with `error_type`."""
        return self._pool is not None and self._pool.kill(access_key, error_type, message)

    def logs(self, function: str) -> list[str]:
        """Each invocation's stdout and stderr of `function`'s workers, in order, as CloudWatch Logs would hold."""
        with self.calls_lock:
            found = [invocation for invocation in self.invocations if invocation.function == function]
        return [invocation.log() for invocation in found]

    def _start_local_hub(self) -> str:
        from modelferry_cli.local.hub import DEMO_REPO_ID, LocalHub
        from modelferry_cli.local.model_factory import gpt_oss_repo

        self.hub = self._stack.enter_context(LocalHub())
        self.hub.add_repo(DEMO_REPO_ID, gpt_oss_repo())
        return str(self.hub.url)

    def _create_aws_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        sqs = boto3.client("sqs", region_name=REGION)
        self._notification_queue = sqs.create_queue(QueueName="modelferry-local-notifications")["QueueUrl"]
        self._event_queue = sqs.create_queue(QueueName="modelferry-local-events")["QueueUrl"]
        queue_arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[  # noqa: E731
            "Attributes"
        ]["QueueArn"]
        kms = boto3.client("kms", region_name=REGION)
        # The template always encrypts the topic with its own key (NotificationTopicKey); the bucket only with
        # KmsKeyArn when given.
        self.topic_key_arn = kms.create_key(Description="NotificationTopicKey")["KeyMetadata"]["Arn"]
        self.bucket_key_arn = kms.create_key(Description="KmsKeyArn")["KeyMetadata"]["Arn"] if self._kms_key else ""
        if self.bucket_key_arn:
            s3.put_bucket_encryption(
                Bucket=BUCKET,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": self.bucket_key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            )
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(
            Name="modelferry-local-notifications", Attributes={"KmsMasterKeyId": self.topic_key_arn}
        )["TopicArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(self._notification_queue))
        os.environ["TOPIC_ARN"] = topic_arn
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=EVENT_BUS)
        events.put_rule(Name="capture-outcomes", EventBusName=EVENT_BUS, EventPattern='{"source": ["modelferry"]}')
        events.put_targets(
            Rule="capture-outcomes",
            EventBusName=EVENT_BUS,
            Targets=[{"Id": "queue", "Arn": queue_arn(self._event_queue)}],
        )
        if self._hf_token:
            secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
                Name=TOKEN_SECRET_NAME, SecretString=self._hf_token
            )["ARN"]
            os.environ["HF_TOKEN_SECRET_ARN"] = secret_arn
        iam = boto3.client("iam", region_name=REGION)
        self._role_arn = iam.create_role(
            RoleName="modelferry-local-execution",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]

    def _create_function(self, logical_id: str) -> str:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("placeholder.py", "# the local rig runs the real handler in-process\n")
        response = boto3.client("lambda", region_name=REGION).create_function(
            FunctionName=logical_id,
            Runtime="python3.13",
            Role=self._role_arn,
            Handler="placeholder.handler",
            Code={"ZipFile": archive.getvalue()},
        )
        return str(response["FunctionArn"])

    def _create_state_machine(self, machine: dict[str, Any]) -> str:
        definition = (REPO_ROOT / machine["DefinitionUri"]).read_text()
        if self._definition_transform is not None:
            definition = json.dumps(self._definition_transform(json.loads(definition)))
        for key, value in machine.get("DefinitionSubstitutions", {}).items():
            definition = definition.replace("${" + key + "}", self._substitution(key, value))
        response = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name=STATE_MACHINE_NAME, definition=definition, roleArn=self._role_arn, type="STANDARD"
        )
        return str(response["stateMachineArn"])

    def _substitution(self, key: str, value: Any) -> str:
        return str(iam.template_policies.Resolver(self._template, self._stack_names()).value(value))

    # --- IAM ------------------------------------------------------------------------------------------------------
    @property
    def _machine_role(self) -> str:
        _, machine = cfn.state_machine(self._template)
        return str(machine["Role"]["Fn::GetAtt"][0])

    def _parameters(self) -> dict[str, str]:
        """The template's parameters as the local stack has them (defaults, then what the rig's settings say)."""
        values = {name: str(p.get("Default", "")) for name, p in self._template.get("Parameters", {}).items()}
        values.update(
            ModelBucketName="",
            ModelPrefix=os.environ["MODEL_PREFIX"],
            RunsPrefix=os.environ["RUNS_PREFIX"],
            HfEndpoint=os.environ["HF_ENDPOINT"],
            HfTokenSecretArn=os.environ["HF_TOKEN_SECRET_ARN"],
            KmsKeyArn=self.bucket_key_arn,
            CopyTaskImageUri=COPY_TASK_IMAGE if os.environ["COPY_TASK_ENABLED"] == "true" else "",
            CopyTaskSubnets=os.environ["COPY_TASK_SUBNETS"],
            CopyTaskSecurityGroups=os.environ["COPY_TASK_SECURITY_GROUPS"],
        )
        return values

    def _stack_names(self) -> iam.StackNames:
        arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}".format
        refs = {
            "ModelBucket": BUCKET,
            "NotificationTopic": os.environ["TOPIC_ARN"],
            "OutcomeEventBus": EVENT_BUS,
            "ModelImportStateMachine": os.environ.get("STATE_MACHINE_ARN", ""),
            "CopyTaskCluster": "modelferry-local-copy",
            "ImportQueueTable": IMPORT_QUEUE_TABLE,
            "CopyTaskDefinition": arn("ecs", "task-definition/modelferry-local-copy:1"),
            **{logical_id: logical_id for logical_id in getattr(self, "_function_arns", {})},
        }
        attributes = {
            ("ImportRole", "Arn"): os.environ["IMPORT_ROLE_ARN"],
            ("NotificationTopicKey", "Arn"): self.topic_key_arn,
            ("OutcomeEventBus", "Arn"): arn("events", f"event-bus/{EVENT_BUS}"),
            ("ModelBucket", "Arn"): f"arn:aws:s3:::{BUCKET}",
            ("CopyTaskCluster", "Arn"): arn("ecs", "cluster/modelferry-local-copy"),
            ("CopyTaskRole", "Arn"): f"arn:aws:iam::{ACCOUNT}:role/modelferry-local-CopyTaskRole",
            ("CopyTaskExecutionRole", "Arn"): f"arn:aws:iam::{ACCOUNT}:role/modelferry-local-CopyTaskExecutionRole",
            ("ModelImportStateMachine", "Name"): STATE_MACHINE_NAME,
            ("ImportQueueTable", "Arn"): arn("dynamodb", f"table/{IMPORT_QUEUE_TABLE}"),
            ("CopyTaskLogGroup", "Arn"): arn("logs", "log-group:modelferry-local-copy-task:*"),
            **{(logical_id, "Arn"): arn_ for logical_id, arn_ in getattr(self, "_function_arns", {}).items()},
        }

        def attribute(logical_id: str, name: str) -> str:
            if (logical_id, name) not in attributes:
                raise LookupError(f"the local rig has no value for {logical_id}.{name}")
            return attributes[(logical_id, name)]

        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK_NAME,
            "AWS::URLSuffix": "amazonaws.com",
        }
        return iam.StackNames(parameters=self._parameters(), pseudo=pseudo, refs=refs, attributes=attribute)

    def stack_facts(self) -> iam.StackFacts:
        names = self._stack_names()
        return iam.StackFacts(
            region=REGION,
            account=ACCOUNT,
            bucket_keys={BUCKET: self.bucket_key_arn} if self.bucket_key_arn else {},
            topic_keys={os.environ["TOPIC_ARN"]: self.topic_key_arn},
            task_definition_roles={
                names.refs["CopyTaskDefinition"]: [
                    names.attributes("CopyTaskRole", "Arn"),
                    names.attributes("CopyTaskExecutionRole", "Arn"),
                ]
            },
            state_machine_arn=os.environ.get("STATE_MACHINE_ARN", ""),
        )

    def _principals(self, template: dict[str, Any]) -> dict[str, iam.Principal]:
        facts = self.stack_facts()
        statements = iam.principal_statements(template, self._stack_names())
        return {name: iam.Principal(name, found, facts) for name, found in statements.items()}

    @property
    def iam_denials(self) -> list[tuple[str, str, str]]:
        """(principal, action, resource) of every call IAM refused in this process since the rig started."""
        found = iam.guard.denials[self._denials_before :]
        return [(name, v.request.action, v.request.resource) for name, v in found]

    def _principal_of_role(self, role_arn: str) -> iam.Principal | None:
        """The stack's principal a service acts as when given `role_arn` (None: a role of no concern to the stack)."""
        return self.principals.get("ImportRole") if role_arn == os.environ["IMPORT_ROLE_ARN"] else None

    def policy_spec_json(self, principal: str) -> str:
        """What a worker process passes to `iam.enforce_in_this_process(principal, ...)`."""
        return self.principals[principal].to_json()

    def _work_dir(self) -> Path:
        if self._tmp is None:
            import tempfile

            self._tmp = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="modelferry-rig-")))
        return self._tmp

    def _run_copy_task(self, container_environment: dict[str, str]) -> tuple[int, str, str]:
        """The Fargate copy task's entrypoint in a subprocess; it reaches this process's moto through a moto
        server sharing the same in-memory backends."""
        self._start_moto_server()
        return self._run_copy_process(container_environment)

    def _start_moto_server(self) -> None:
        if self._moto_server_url is None:
            with iam.acting_as(None):  # the server's threads serve every principal's requests
                self._aws_server = AwsServer().start()
            self._stack.callback(self._aws_server.stop)
            self._moto_server_url = self._aws_server.url

    def _run_copy_process(self, container_environment: dict[str, str]) -> tuple[int, str, str]:
        assert self._moto_server_url is not None  # noqa: S101 - started by _run_copy_task
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT / "functions"),
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL_S3": self._moto_server_url,
            "AWS_ENDPOINT_URL_SECRETSMANAGER": self._moto_server_url,
            **{name: os.environ.get(name, "") for name in COPY_TASK_ENVIRONMENT},
            **container_environment,
        }
        self.copy_task_runs.append(container_environment)
        command = [sys.executable, "-m", "modelferry.handlers.copy_file_on_fargate"]
        if self.iam_enforced:
            # The task runs as the template's task role: its process evaluates every call against that role.
            spec = self._work_dir() / "CopyTaskRole.policy.json"
            spec.write_text(self.policy_spec_json("CopyTaskRole"))
            command[1:] = ["-m", "modelferry_cli.local.iam.run_as", "CopyTaskRole", str(spec), command[2]]
            environment["PYTHONPATH"] += os.pathsep + str(REPO_ROOT / "cli")
        completed = subprocess.run(  # noqa: S603 - this interpreter, a module of this repository
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        self.copy_task_exits.append((completed.returncode, completed.stderr))
        return completed.returncode, completed.stdout, completed.stderr

    def _wire_triggers(self, template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
        """The template's EventBridge rules, with their patterns, on moto's default bus; the bucket sends its object
        events there as on AWS. moto matches the patterns but calls neither Lambda nor Step Functions targets, so
        each rule delivers to a queue that `deliver_trigger_events` hands to the rule's real target."""
        boto3.client("s3", region_name=REGION).put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        queues = {}
        self._status_change_rules: set[str] = set()
        for logical_id, resource in template["Resources"].items():
            if resource.get("Type") != "AWS::Events::Rule":
                continue
            props = resource["Properties"]
            if STATUS_CHANGE in props["EventPattern"].get("detail-type", []):
                self._status_change_rules.add(logical_id)
            (target,) = props["Targets"]
            url = sqs.create_queue(QueueName=f"modelferry-local-rule-{logical_id}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            pattern = _local_value(props["EventPattern"], {self._machine_id: self.state_machine_arn})
            events.put_rule(Name=logical_id, EventPattern=json.dumps(pattern))
            events.put_targets(Rule=logical_id, Targets=[{"Id": "queue", "Arn": arn}])
            queues[logical_id] = (url, target)
        return queues

    def deliver_trigger_events(self, max_rounds: int = 10) -> list[TriggerDelivery]:
        """Hand every event the template's rules matched to the rule's target (an execution of the state machine,
        or a function in its sandbox), until no more arrive (handlers may cause new events)."""
        delivered: list[TriggerDelivery] = []
        for _ in range(max_rounds):
            batch = [
                (rule, target, event)
                for rule, (url, target) in self._trigger_queues.items()
                for event in self._drain(url, sns_envelope=False)
            ]
            if not batch:
                return delivered
            for rule, target, event in batch:
                delivered.append(TriggerDelivery(rule, event, self._deliver(target, event)))
        raise RuntimeError(f"rules kept matching new events after {max_rounds} rounds: a trigger loop?")

    def _deliver(self, target: dict[str, Any], event: dict[str, Any]) -> Any:
        if target["Arn"] == {"Ref": self._machine_id}:
            path = target.get("InputPath")
            if path not in {None, "$.detail"}:
                raise NotImplementedError(f"the local rig delivers InputPath $.detail only, not {path}")
            return self.start(event["detail"] if path else event)
        function = target["Arn"]["Fn::GetAtt"][0]
        # An asynchronous invocation's error is recorded as Lambda would record it: its payload.
        return self._invoke_in_sandbox(function, event)[0]

    # --- the import queue: its table, its clock and the execution status changes its cleanup rule receives ------
    def _create_import_queue_table(self, template: dict[str, Any]) -> None:
        create_import_queue_table(boto3.client("dynamodb", region_name=REGION), IMPORT_QUEUE_TABLE, template)

    def _queue_clock_follows_the_simulated_waits(self) -> Any:
        """The queue measures the time in line on a clock that runs ahead by the skipped waits, as the emulator's
        does, so the wait a notification reports is the wait the run would have had."""

        def simulated_now() -> datetime:
            return datetime.now(UTC) + timedelta(seconds=self.clock.total_seconds)

        return mock.patch("modelferry.stages.queue.utc_now", simulated_now)

    def _send_status_change(self, ended: EndedExecution) -> None:
        """What Step Functions sends the default bus when an execution ends (Step Functions developer guide, "Step
        Functions events in EventBridge"; moto sends nothing), then delivered to the rules that match it at once."""
        detail = {
            "executionArn": ended.execution_arn,
            "stateMachineArn": ended.state_machine_arn,
            "name": ended.name,
            "status": ended.status,
            "startDate": int(ended.start_date.timestamp() * 1000) if ended.start_date else None,
            "stopDate": int(ended.stop_date.timestamp() * 1000) if ended.stop_date else None,
            "error": ended.error,
            "cause": ended.cause,
        }
        # Step Functions itself sends this event, not the execution's role: outside every principal.
        with iam.acting_as(None):
            boto3.client("events", region_name=REGION).put_events(
                Entries=[
                    {
                        "Source": "aws.states",
                        "DetailType": STATUS_CHANGE,
                        "Resources": [ended.execution_arn],
                        "Detail": json.dumps(detail),
                    }
                ]
            )
            self.deliver_status_changes()

    def deliver_status_changes(self) -> list[TriggerDelivery]:
        """Hand the status-change events the template's rules matched to their targets (the queue cleanup)."""
        delivered = []
        for rule, (url, target) in self._trigger_queues.items():
            if rule not in self._status_change_rules:
                continue
            for event in self._drain(url, sns_envelope=False):
                delivered.append(TriggerDelivery(rule, event, self._deliver(target, event)))
        return delivered

    def _record_call(self, function: str, event: Any, result: Any) -> None:
        """Called after each invocation, on the interpreter's thread, before Step Functions sees the result (a test
        may wrap it to act between stages)."""
        with self.calls_lock:
            self.lambda_calls.append((function, event, result))

    # --- running ------------------------------------------------------------------------------------------------
    def start(self, request: dict[str, Any], name: str | None = None) -> str:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        return str(
            sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name or f"local-{uuid.uuid4().hex[:12]}",
                input=json.dumps(request),
            )["executionArn"]
        )

    def wait(self, execution_arn: str, timeout: float = 300.0) -> ExecutionReport:
        sfn = boto3.client("stepfunctions", region_name=REGION)
        started = time.monotonic()
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout} s")
            time.sleep(0.05)
        history = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        output = json.loads(described["output"]) if described.get("output") else None
        return ExecutionReport(
            execution_arn=execution_arn,
            status=described["status"],
            error=described.get("error"),
            cause=described.get("cause"),
            input=json.loads(described.get("input") or "{}"),
            output=output,
            states=_state_runs(history),
            notifications=self._drain(self._notification_queue, sns_envelope=True),
            events=self._drain(self._event_queue, sns_envelope=False),
            simulated_wait_seconds=self.clock.total_seconds,
            wall_seconds=(
                described.get("stopDate", datetime.now(described["startDate"].tzinfo)) - described["startDate"]
            ).total_seconds(),
            lambda_calls=list(self.lambda_calls),
        )

    def run(self, request: dict[str, Any], name: str | None = None, timeout: float = 300.0) -> ExecutionReport:
        return self.wait(self.start(request, name), timeout)

    def _drain(self, queue_url: str, *, sns_envelope: bool) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                if sns_envelope:
                    found.append({"subject": body.get("Subject"), "message": body.get("Message")})
                else:
                    found.append(body)
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@dataclass
class TriggerDelivery:
    rule: str  # logical id of the AWS::Events::Rule in template.yaml
    event: dict[str, Any]
    result: Any  # the execution ARN it started, or what the function returned


def _local_value(node: Any, refs: Mapping[str, str] | None = None) -> Any:
    """A template value as the local stack has it: the stack creates its bucket (CreateBucket), named BUCKET; other
    `Ref`s resolve through `refs` (logical id -> local ARN)."""
    refs = refs or {}
    if isinstance(node, dict):
        if "Fn::If" in node:
            condition, when_true, when_false = node["Fn::If"]
            return _local_value(when_true if condition == "CreateBucket" else when_false, refs)
        if node == {"Ref": "ModelBucket"}:
            return BUCKET
        if set(node) == {"Ref"} and node["Ref"] in refs:
            return refs[node["Ref"]]
        return {key: _local_value(value, refs) for key, value in node.items()}
    if isinstance(node, list):
        return [_local_value(value, refs) for value in node]
    return node


_FAILURE_EVENTS = {"TaskFailed", "LambdaFunctionFailed", "MapRunFailed", "MapStateFailed", "ExecutionFailed"}


def _state_runs(history: Sequence[Mapping[str, Any]]) -> list[StateRun]:
    """Pair each StateEntered with its StateExited; a state during which a task, Map Run or the execution failed
    is marked failed (its Catch then leads on, so it still exits)."""
    runs: list[StateRun] = []
    open_states: dict[str, tuple[datetime, bool]] = {}
    for event in history:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered:
            open_states[entered["name"]] = (event["timestamp"], False)
        elif exited and exited["name"] in open_states:
            begun, failed = open_states.pop(exited["name"])
            seconds = (event["timestamp"] - begun).total_seconds()
            runs.append(StateRun(exited["name"], seconds, "failed" if failed else "ok"))
        elif event["type"] in _FAILURE_EVENTS:
            for name, (begun, _) in list(open_states.items()):
                open_states[name] = (begun, True)
            if event["type"] == "ExecutionFailed":
                for name, (begun, _) in open_states.items():
                    runs.append(StateRun(name, (event["timestamp"] - begun).total_seconds(), "failed"))
                open_states.clear()
    return runs
