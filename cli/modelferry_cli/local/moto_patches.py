"""Patches that let moto's Step Functions interpreter run the project's real handlers, fast.

- Lambda tasks: moto would start a Docker container; here the rig's sandboxes (worker processes, `lambdas_through`)
  run the handler, and an exception becomes the `{"errorType": ClassName, ...}` payload Lambda returns, so the state
  machine sees the error by its class name, as on AWS.
- Wait states and Retry intervals: recorded on a SimulatedClock instead of slept (an hour-long wait takes no time).
- IAM: each handler runs as its function's principal, each execution as the state machine's role (the interpreter's
  own Lambda invokes and S3 item reads go through boto3, so the guard checks them); `ecs:runTask.sync`, which never
  reaches boto3 here, is checked explicitly.
"""

from __future__ import annotations

import importlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from modelferry_cli.local.iam import Principal, acting_as, current_principal
from modelferry_cli.local.iam.calls import ecs_run_task
from modelferry_cli.local.iam.guard import AccessDenied, authorize


@dataclass
class SimulatedClock:
    """Seconds the workflow asked to wait (Wait states and Retry backoff), kept instead of slept."""

    waits: list[tuple[str, float]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.waits.append((kind, float(seconds)))

    @property
    def total_seconds(self) -> float:
        with self._lock:
            return sum(seconds for _, seconds in self.waits)


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


_FUNCTIONS_DIR = str(Path(__file__).resolve().parents[3] / "functions")
_SITE_PACKAGES = str(Path(importlib.import_module("boto3").__file__ or "").resolve().parents[1])


def lambda_style_traceback(exc: BaseException) -> list[str]:
    """The traceback as Lambda reports it: code under /var/task, not this machine's paths (which differ per
    checkout and would leak into notifications and events/ files)."""
    return [
        line.replace(_FUNCTIONS_DIR, "/var/task").replace(_SITE_PACKAGES, "/var/task")
        # Skip the first frame: it is this rig's call into the handler, which Lambda's runtime does not show.
        for line in traceback.format_exception(type(exc), exc, exc.__traceback__ and exc.__traceback__.tb_next)
    ]


def resolve_handler(dotted: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]


@contextmanager
def lambdas_through(invoke: Callable[[str, Any], tuple[Any, bool]]) -> Iterator[None]:
    """Route moto's Lambda invocations to `invoke(function name, event) -> (result, errored)` (the rig's
    sandboxes); an errored result is Lambda's error payload, which Step Functions names by its errorType."""
    from moto.awslambda.models import LambdaFunction

    def invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event or "{}") if isinstance(event, str | bytes) else (event or {})
        result, failed = invoke(self.function_name, payload)
        return json.dumps(result), failed, ""

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke_lambda):
        yield


@contextmanager
def simulated_waits(clock: SimulatedClock) -> Iterator[None]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        clock.record("wait", wait_seconds)

    fake_time = mock.Mock(wraps=retrier_decl.time)
    fake_time.sleep = lambda seconds: clock.record("retry", seconds)
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        stack.enter_context(mock.patch.object(retrier_decl, "time", fake_time))
        yield


# Runs the copy task's container command for one `ecs:runTask.sync`: gets the container overrides' environment,
# returns (exit status, stdout, stderr).
CopyTaskRunner = Callable[[dict[str, str]], tuple[int, str, str]]


def _container_environment(parameters: dict[str, Any]) -> dict[str, str]:
    """COPY_ITEM and friends from the runTask overrides (moto may hand them over in either key casing)."""
    overrides = parameters.get("overrides") or parameters.get("Overrides") or {}
    containers = overrides.get("containerOverrides") or overrides.get("ContainerOverrides") or []
    environment: dict[str, str] = {}
    for container in containers:
        for pair in container.get("environment") or container.get("Environment") or []:
            environment[pair.get("name") or pair["Name"]] = pair.get("value") or pair.get("Value") or ""
    return environment


def _parameter(parameters: dict[str, Any], name: str) -> Any:
    return parameters.get(name, parameters.get(name[0].lower() + name[1:]))


def _authorize_run_task(env: Any, parameters: dict[str, Any]) -> None:
    """ecs:RunTask and iam:PassRole on the task's roles, as the state machine's role (when IAM is enforced). A
    refusal fails the state as `ECS.AccessDeniedException`: the integration's error names are the service's own,
    prefixed with ECS. (Step Functions developer guide, "Handling errors in Step Functions workflows"; the exact
    cause text is not something the rig can prove.)"""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    principal = current_principal()
    if principal is None:
        return
    cluster = str(_parameter(parameters, "Cluster"))
    task_definition = str(_parameter(parameters, "TaskDefinition"))
    roles = list(principal.facts.task_definition_roles.get(task_definition, ()))
    try:
        authorize(principal, "ecs", "RunTask", ecs_run_task(task_definition, cluster, roles))
    except AccessDenied as denied:
        error = f"ECS.{denied.response['Error']['Code']}"
        raise FailureEventException(
            FailureEvent(
                env=env,
                error_name=CustomErrorName(error),
                event_type=HistoryEventType.TaskFailed,
                event_details=EventDetails(  # type: ignore[typeddict-item]
                    taskFailedEventDetails=TaskFailedEventDetails(
                        error=error, cause=denied.response["Error"]["Message"]
                    )
                ),
            )
        ) from None


@contextmanager
def local_fargate(
    run_copy_task: CopyTaskRunner, on_run_task: Callable[[dict[str, Any]], None] = lambda _: None
) -> Iterator[None]:
    """`ecs:runTask.sync` runs the copy task's entrypoint on this machine instead of on Fargate (moto's ECS
    cannot run tasks). Exit 0 gives a STOPPED task description; anything else fails the state with
    States.TaskFailed, as a stopped container with a non-zero exit code does on AWS."""
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
        StateTaskServiceEcs,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict, **_: Any
    ) -> None:
        on_run_task(normalised_parameters)
        _authorize_run_task(env, normalised_parameters)
        status, stdout, stderr = run_copy_task(_container_environment(normalised_parameters))
        task = {"LastStatus": "STOPPED", "Containers": [{"Name": "copy-task", "ExitCode": status}], "Output": stdout}
        if status != 0:
            error_line = next((line for line in reversed(stderr.splitlines()) if '"errorType"' in line), stderr[-2000:])
            cause = json.dumps({"StoppedReason": "Essential container in task exited", **task, "Error": error_line})
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict lists every kind
                        taskFailedEventDetails=TaskFailedEventDetails(error="States.TaskFailed", cause=cause)
                    ),
                )
            )
        env.stack.append({"Tasks": [task]})

    def build_sync_resolver(self: Any, env: Any, *args: Any, **kwargs: Any) -> Callable[[], Any]:
        described = env.stack.pop()
        return lambda: described["Tasks"][0]

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(StateTaskServiceEcs, "_eval_service_task", eval_service_task))
        stack.enter_context(mock.patch.object(StateTaskServiceEcs, "_build_sync_resolver", build_sync_resolver))
        yield


@contextmanager
def distributed_map_failure_threshold() -> Iterator[None]:
    """Fail a Distributed Map when more items fail than it tolerates (ToleratedFailurePercentage/Count default to 0),
    as Step Functions does with States.ExceedToleratedFailureThreshold. moto counts failed items but never fails the
    Map ("TODO: add support for failure toleration fields"), which would let a failed copy pass silently."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        counter = eval_input.map_run_record.item_counter
        failed, total = counter.failed.get() + counter.timed_out.get(), counter.total.get()
        tolerated_count = eval_input.tolerated_failure_count
        tolerated_percentage = eval_input.tolerated_failure_percentage
        if failed > tolerated_count and (total == 0 or 100.0 * failed / total > tolerated_percentage):
            error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
            cause = f"The specified tolerated failure threshold was exceeded: {failed} of {total} items failed"
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(  # type: ignore[typeddict-item]
                        mapRunFailedEventDetails={"error": error, "cause": cause}
                    ),
                )
            )

    with mock.patch.object(DistributedIterationComponent, "_map_run", map_run):
        yield


@contextmanager
def fail_state_accepts_states_errors() -> Iterator[None]:
    """A Fail state whose ErrorPath selects a caught `States.*` error (States.TaskFailed from the Fargate branch,
    States.ExceedToleratedFailureThreshold from the Map) ends the execution with that error, as on AWS; moto's Fail
    state only builds custom error names and turns such an error into States.Runtime."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    with mock.patch.object(state_fail, "CustomErrorName", ErrorName):
        yield


@contextmanager
def context_start_time_as_text() -> Iterator[None]:
    """`$$.Execution.StartTime` is an ISO 8601 string on AWS (the context object reference in the Step Functions
    developer guide); moto's interpreter holds a datetime, which a Pass state copying it into the state document
    makes unserialisable for DescribeExecution."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_environment

    def environment(self: Any) -> Any:
        env = original(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if not isinstance(execution["StartTime"], str):
            execution["StartTime"] = execution["StartTime"].isoformat()
        return env

    with mock.patch.object(ExecutionWorker, "_get_evaluation_environment", environment):
        yield


@contextmanager
def executions_as(principal: Callable[[], Principal | None]) -> Iterator[None]:
    """Each execution runs as the state machine's role: the interpreter's own calls (Lambda invokes, the Distributed
    Map's S3 item reads) are evaluated against it, and its threads inherit it."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._execution_logic

    def execution_logic(self: Any) -> None:
        with acting_as(principal()):
            original(self)

    with mock.patch.object(ExecutionWorker, "_execution_logic", execution_logic):
        yield


@contextmanager
def terminal_errors_escape_states_all() -> Iterator[None]:
    """`States.ALL` in a Catch or Retry matches neither States.DataLimitExceeded (a state's input or output, or a
    task's result, over 256 KiB) nor States.Runtime: both end the execution, un-notified (Step Functions developer
    guide, "Handling errors in Step Functions workflows", error names). moto's interpreter already fails an oversized
    state output or task result with States.DataLimitExceeded (its quotas module: 256 KiB of UTF-8 JSON) but lets
    States.ALL catch it. Naming either error explicitly still matches here; whether AWS lets an explicit Catch take a
    terminal error is not something the rig can prove."""
    from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    terminal = {StatesErrorNameType.StatesStatesDataLimitExceeded, StatesErrorNameType.StatesRuntime}
    original = ErrorEqualsDecl._eval_body

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if (
            isinstance(error_name, StatesErrorName)
            and error_name.typ in terminal
            and error_name not in self.error_names
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    with mock.patch.object(ErrorEqualsDecl, "_eval_body", eval_body):
        yield


@contextmanager
def imports_read_as_their_role(principal_of_role: Callable[[str], Principal | None]) -> Iterator[None]:
    """The Bedrock emulator reads an import job's model while it handles CreateModelImportJob; that read is made as
    the job's service role (its `roleArn`), as Bedrock assumes it: a role the stack's template defines is evaluated
    against its policy, any other role (another tool's import) is not."""
    from modelferry_cli.local.bedrock import service

    (original,) = [handler for _, _, operation, handler in service._ROUTES if operation == "CreateModelImportJob"]

    def create(self: Any, labels: dict[str, str], query: dict[str, str], body: bytes) -> Any:
        try:
            role = str(json.loads(body or b"{}").get("roleArn", ""))
        except ValueError:  # the emulator answers a malformed body itself
            role = ""
        with acting_as(principal_of_role(role)):
            return original(self, labels, query, body)

    # The emulator dispatches through its route table, which holds the handler functions themselves.
    routes = tuple(
        (verb, pattern, operation, create if handler is original else handler)
        for verb, pattern, operation, handler in service._ROUTES
    )
    with mock.patch.object(service, "_ROUTES", routes):
        yield


@contextmanager
def stop_ends_task_token_waits() -> Iterator[None]:
    """StopExecution ends an execution waiting for a task token at once, ABORTED, as on AWS ("StopExecution" in the
    Step Functions API reference). moto marks the execution stopped but leaves its task waiting until the task's
    timeout, and the wait, woken, then overwrites the stop with a States.Timeout failure."""
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    original_stop = Execution.stop
    original_set_error = Environment.set_error

    def stop(self: Any, stop_date: Any, error: str | None, cause: str | None) -> None:
        original_stop(self, stop_date=stop_date, error=error, cause=cause)
        worker = self.exec_worker
        if worker is not None:
            for endpoint in list(worker.env.callback_pool_manager._pool.values()):
                endpoint.interrupt_all()

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped execution stays stopped: whatever its interrupted task reports comes too late
        original_set_error(self, error)

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(Execution, "stop", stop))
        stack.enter_context(mock.patch.object(Environment, "set_error", set_error))
        yield


@dataclass(frozen=True)
class EndedExecution:
    execution_arn: str
    state_machine_arn: str
    name: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT or ABORTED
    start_date: Any
    stop_date: Any
    error: str | None
    cause: str | None


@contextmanager
def on_execution_end(callback: Callable[[EndedExecution], None]) -> Iterator[None]:
    """Call `callback` once each execution has ended, on the thread that ran it, before DescribeExecution shows the
    end (moto emits no "Step Functions Execution Status Change" event; the rig builds it from this). On AWS the event
    follows the end asynchronously; here whoever waits for an execution to end also sees what its end caused."""
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated
    statuses = (
        (ProgramEnded, "SUCCEEDED"),
        (ProgramStopped, "ABORTED"),
        (ProgramError, "FAILED"),
        (ProgramTimedOut, "TIMED_OUT"),
    )

    def terminated(self: Any) -> None:
        execution = self.execution
        program = execution.exec_worker.env.program_state()
        error = program.error if isinstance(program, ProgramError) else {}
        callback(
            EndedExecution(
                execution_arn=execution.exec_arn,
                state_machine_arn=execution.state_machine_arn,
                name=execution.name,
                status=next((status for kind, status in statuses if isinstance(program, kind)), "FAILED"),
                start_date=execution.start_date,
                stop_date=datetime.now(UTC),
                error=(error or {}).get("error"),
                cause=(error or {}).get("cause"),
            )
        )
        original(self)

    with mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated):
        yield
