"""A Lambda sandbox of the local rig: one process running one function's handler, one invocation at a time.

`main` runs in a process forked from the pool's fork server (which has imported boto3, botocore, pydantic,
Powertools and huggingface_hub, never the project's code). It sets exactly the function's environment, sends its
stdout and stderr to the function's log file, evaluates every AWS call as the function's role (when the rig enforces
IAM), runs the rig's worker setup steps, imports the handler and then answers invocations from the pipe until told
to stop, as a warm Lambda execution environment does.

For worker setup steps (test hooks): `report(channel, value)` sends a value to the rig (its listener for `channel`,
or `rig.worker_reports[channel]`), `ask_parent(channel, value)` waits for the rig's listener's answer.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

# What the fork server imports once, so a worker starts without paying for them (not the project's code: a worker
# imports its handler after its environment is set, as Lambda's runtime does). The heaviest imports of a handler
# (python -X importtime): X-Ray's SDK under Powertools' Tracer, httpx, pydantic's types. Not huggingface_hub's
# `hf_api`: it builds a client at import with the endpoint of that moment, which in the fork server is the public Hub.
PRELOADED = (
    "boto3",
    "botocore.session",
    "botocore.client",
    "pydantic",
    "pydantic.types",
    "aws_lambda_powertools",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.tracing",
    "aws_xray_sdk.core",
    "httpx",
    "huggingface_hub",
    "modelferry_cli.local.iam",
)

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class WorkerSpec:
    """What the pool tells a new worker (pickled through the fork server)."""

    function: str  # the template's logical id
    handler: str  # "package.module.function"
    environment: dict[str, str]
    memory_mb: int
    log_path: str
    policy_spec_json: str | None  # None: IAM not enforced
    setup_steps: tuple[tuple[str, Any], ...]  # ("package.module:callable", JSON-serialisable argument)


@dataclass
class LambdaContext:
    """The context object Lambda's Python runtime passes (the fields the project's code and Powertools read)."""

    function_name: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_monotonic: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        region = os.environ.get("AWS_REGION", "us-east-1")
        return f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic - time.monotonic()) * 1000))


_pipe: Any = None
_pipe_lock = threading.Lock()
# The channel on which a worker asks the rig for the Wait/Retry seconds it has skipped so far.
SIMULATED_SECONDS = "simulated_seconds"


def report(channel: str, value: Any) -> None:
    """Send `value` to the rig (for a worker setup step's results); a no-op outside a worker."""
    if _pipe is None:
        return
    with _pipe_lock:
        _pipe.send(("report", channel, value))


def ask_parent(channel: str, value: Any = None) -> Any:
    """Ask the rig's listener for `channel` and wait for its answer (the rig serves one question at a time)."""
    if _pipe is None:
        raise RuntimeError("ask_parent is for worker setup steps, inside a Lambda worker")
    with _pipe_lock:
        _pipe.send(("ask", channel, value))
        kind, answer = _pipe.recv()
    if kind != "answer":
        raise RuntimeError(f"the rig refused a question on {channel!r}: {answer}")
    return answer


def main(pipe: Any, spec: WorkerSpec) -> None:
    """The worker process's main (the pool forks it from the rig's fork server, `zygote`)."""
    global _pipe  # noqa: PLW0603 - one pipe per worker process, by design
    _pipe = pipe
    try:
        handler = _initialise(spec)
    except Exception as exc:  # noqa: BLE001 - Lambda reports an init failure on the invocation
        with _pipe_lock:
            pipe.send(("init_error", _error_payload(exc)))
        return
    with _pipe_lock:
        pipe.send(("ready",))
    while True:
        message = pipe.recv()
        if message[0] == "stop":
            return
        result, failed, denials, log_span = _invoke(spec, handler, Invoke(*message[1:]))
        with _pipe_lock:
            pipe.send(("result", result, failed, denials, log_span))


def _initialise(spec: WorkerSpec) -> Handler:
    os.environ.clear()
    os.environ.update(spec.environment)
    log = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    _environment_read_at_import(spec.environment)
    if spec.policy_spec_json is not None:
        from modelferry_cli.local import iam

        iam.enforce_in_this_process(spec.function, spec.policy_spec_json)
    wrappers = []
    for target, argument in spec.setup_steps:
        module_name, _, attribute = target.partition(":")
        step = getattr(importlib.import_module(module_name), attribute)
        wrapper = step(spec.function, argument)
        if wrapper is not None:
            wrappers.append(wrapper)
    module_name, _, attribute = spec.handler.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    for wrap in wrappers:
        handler = wrap(handler)
    _queue_clock_follows_the_simulated_waits()
    return handler


def _environment_read_at_import(environment: dict[str, str]) -> None:
    """huggingface_hub reads some settings when imported, which the fork server did before this function's
    environment existed: give them this environment's values. (And no agent-registry fetch from huggingface.co.)"""
    from huggingface_hub import constants
    from huggingface_hub.utils import _detect_agent

    _detect_agent._fetch_registry = lambda: None  # type: ignore[attr-defined]
    for name in ("HF_HUB_DISABLE_XET", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_PROGRESS_BARS"):
        if name in environment:
            setattr(constants, name, environment[name].strip().upper() in {"1", "ON", "YES", "TRUE"})
    if "HF_ENDPOINT" in environment:
        constants.ENDPOINT = environment["HF_ENDPOINT"].rstrip("/")


def _queue_clock_follows_the_simulated_waits() -> None:
    """The import queue measures time in line on a clock ahead by the Wait/Retry seconds the rig skipped, as the
    rig's Bedrock emulator does. Asked of the rig at each reading: other executions' waits move it during an
    invocation (a value sent with the invocation let a later ticket read an earlier time)."""
    queue = sys.modules.get("modelferry.stages.queue")
    if queue is not None:
        queue.utc_now = lambda: datetime.now(UTC) + timedelta(seconds=ask_parent(SIMULATED_SECONDS))  # type: ignore[attr-defined]


class Invoke(NamedTuple):
    """An invocation as the pool sends it (after the "invoke" tag)."""

    event: Any
    request_id: str
    timeout_seconds: float


def _invoke(spec: WorkerSpec, handler: Handler, invoke: Invoke) -> tuple[Any, bool, list[Any], tuple[int, int]]:
    request_id = invoke.request_id
    from modelferry_cli.local.iam import guard

    denials_before = len(guard.denials)
    start = _log_size()
    print(f"START RequestId: {request_id} Version: $LATEST", flush=True)  # as Lambda writes to CloudWatch
    context = LambdaContext(spec.function, spec.memory_mb, request_id, time.monotonic() + invoke.timeout_seconds)
    try:
        result, failed = handler(invoke.event, context), False
    except Exception as exc:  # noqa: BLE001 - Lambda turns any exception into an error payload
        result, failed = _error_payload(exc), True
    print(f"END RequestId: {request_id}", flush=True)
    sys.stderr.flush()
    return result, failed, list(guard.denials[denials_before:]), (start, _log_size())


def _log_size() -> int:
    sys.stdout.flush()
    return os.fstat(1).st_size


def _error_payload(exc: BaseException) -> dict[str, Any]:
    from modelferry_cli.local.moto_patches import lambda_style_traceback

    return {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": lambda_style_traceback(exc)}


def new_request_id() -> str:
    return str(uuid.uuid4())
