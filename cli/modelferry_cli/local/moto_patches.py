"""Patches that let moto's Step Functions interpreter run the project's real handlers in-process, fast.

- Lambda tasks: moto would start a Docker container; here the handler registered for the function name is called
  in this process, and an exception becomes the `{"errorType": ClassName, ...}` payload Lambda returns, so the
  state machine sees the error by its class name, as on AWS.
- Wait states and Retry intervals: recorded on a SimulatedClock instead of slept (an hour-long wait takes no time).
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
from typing import Any
from unittest import mock


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


def resolve_handler(dotted: str) -> Callable[[Any, Any], Any]:
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)  # type: ignore[no-any-return]


@contextmanager
def in_process_lambdas(
    handlers: dict[str, str], on_invoke: Callable[[str, Any, Any], None] | None = None
) -> Iterator[None]:
    """Route moto's Lambda invocations for `handlers` (function name -> dotted handler path) into this process."""
    from moto.awslambda.models import LambdaFunction

    def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        dotted = handlers.get(self.function_name)
        if dotted is None:
            raise KeyError(f"no local handler registered for Lambda function {self.function_name!r}")
        payload = json.loads(event or "{}") if isinstance(event, str | bytes) else (event or {})
        try:
            result = resolve_handler(dotted)(payload, FakeLambdaContext(self.function_name))
        except Exception as exc:  # noqa: BLE001 - Lambda turns any exception into an error payload
            error = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc),
            }
            if on_invoke:
                on_invoke(self.function_name, payload, error)
            return json.dumps(error), True, ""
        if on_invoke:
            on_invoke(self.function_name, payload, result)
        return json.dumps(result), False, ""

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke):
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
