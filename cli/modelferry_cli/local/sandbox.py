"""The local rig's Lambda sandboxes: each invocation runs in a worker process of its function, as on Lambda.

A worker runs one function (warm: later invocations of that function reuse it, one at a time; a concurrent one gets
another worker). At most `MAX_WORKERS` live at once; the least recently used idle one makes room. Workers are forked
from the rig's fork server (`zygote`), which has imported the heavy libraries once (`lambda_worker.PRELOADED`).

While an invocation runs, the pool enforces what Lambda enforces:
- the function's Timeout: past it the worker is killed (SIGKILL) and the invocation fails with `Sandbox.Timedout`;
- its MemorySize: the worker's resident memory (VmRSS, sampled every 20 ms) over it kills the worker and the
  invocation fails with `Runtime.OutOfMemory`;
- any other death of the worker fails it with `Runtime.ExitError`.
The error names are the ones the Lambda developer guide and Step Functions' "Handling errors in Lambda" best practice
name for these cases (https://docs.aws.amazon.com/lambda/latest/dg/configuration-timeout.html,
https://docs.aws.amazon.com/step-functions/latest/dg/sfn-best-practices.html#bp-lambda-serviceexception); the exact
message texts below are what Lambda's runtime logs show, not something the rig can prove. A killed worker is
replaced by a new one at the function's next invocation.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from modelferry_cli.local import lambda_worker
from modelferry_cli.local.lambda_worker import WorkerSpec
from modelferry_cli.local.zygote import Zygote

MAX_WORKERS = 8
MEMORY_SAMPLE_SECONDS = 0.02
INIT_TIMEOUT_SECONDS = 120.0  # a worker's start (imports, setup steps); not the function's Timeout

# One fork server per process of the rig: it holds no state of any rig, so rigs share it.
_ZYGOTE = Zygote()


@dataclass(frozen=True)
class FunctionConfig:
    """One function as its sandboxes run it."""

    function: str  # logical id
    handler: str
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    policy_spec_json: str | None


@dataclass(frozen=True)
class Invocation:
    function: str
    event: Any
    result: Any
    errored: bool
    seconds: float
    outcome: str  # "ok", "error" (the handler raised), or the error of a killed worker ("Sandbox.Timedout", ...)
    worker: str
    log_path: str
    log_span: tuple[int, int]

    def log(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self.log_span[0])
            return log.read(self.log_span[1] - self.log_span[0]).decode(errors="replace")


@dataclass
class _Worker:
    label: str  # also its access key id
    function: str
    pid: int
    pipe: Any
    log_path: str
    busy: bool = False
    last_used: float = 0.0
    killed_as: tuple[str, str] | None = None  # (errorType, errorMessage) when the pool killed it on purpose


class _Outcome(NamedTuple):
    result: Any
    errored: bool
    kind: str  # Invocation.outcome
    log_span: tuple[int, int]
    worker: str
    log_path: str


# Worker setup steps: ("package.module:callable", argument, functions it applies to or None for all).
SetupStep = tuple[str, Any, frozenset[str] | None]


@dataclass
class SandboxPool:
    """A rig's workers. The callbacks are the rig's: the variables that point a worker at the rig's AWS and
    Bedrock (given the worker's access key id), what worker setup steps report and ask, and which access keys are
    live (so the rig's moto server can tell which function sent a request)."""

    work_dir: Path
    endpoint_environment: Callable[[str], dict[str, str]]  # access key -> AWS_* variables reaching the rig
    on_report: Callable[[str, str, Any], None]  # (function, channel, value)
    on_ask: Callable[[str, str, Any], Any]  # (function, channel, value) -> answer
    on_caller: Callable[[str, str | None], None]  # (access key, function or None once gone)
    max_workers: int = MAX_WORKERS
    setup_steps: list[SetupStep] = field(default_factory=list)
    _workers: list[_Worker] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _closed: bool = False

    def add_setup_step(self, step: SetupStep) -> None:
        """Later workers run `step`; idle workers started without it retire."""
        with self._changed:
            self.setup_steps.append(step)
            for worker in [w for w in self._workers if not w.busy]:
                self._retire(worker)

    def invoke(self, config: FunctionConfig, event: Any) -> Invocation:
        started = time.monotonic()
        try:
            worker = self._acquire(config)
        except _InitFailed as failed:  # the worker failed to start: its init error is the invocation's
            outcome = failed.outcome
        else:
            try:
                outcome = self._run(worker, config, event)
            finally:
                self._release(worker)
        seconds = time.monotonic() - started
        return Invocation(
            config.function,
            event,
            outcome.result,
            outcome.errored,
            seconds,
            outcome.kind,
            outcome.worker,
            outcome.log_path,
            outcome.log_span,
        )

    def close(self) -> None:
        with self._changed:
            self._closed = True
            workers = list(self._workers)
            for worker in workers:  # all stop at once: the waits below then overlap
                _ask_to_stop(worker)
            for worker in workers:
                self._retire(worker)

    def kill(self, label: str, error_type: str, message: str) -> bool:
        """Kill worker `label` now; its invocation fails with `error_type`. False: no such live worker."""
        with self._changed:
            worker = next((w for w in self._workers if w.label == label), None)
        if worker is None:
            return False
        worker.killed_as = (error_type, message)
        _sigkill(worker)
        return True

    # --- workers -----------------------------------------------------------------------------------------------
    def _acquire(self, config: FunctionConfig) -> _Worker:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the rig's sandboxes are closed")
                idle = [w for w in self._workers if w.function == config.function and not w.busy]
                if idle:
                    worker = max(idle, key=lambda w: w.last_used)
                    worker.busy = True
                    return worker
                if len(self._workers) >= self.max_workers:
                    spare = [w for w in self._workers if not w.busy]
                    if not spare:
                        self._changed.wait()
                        continue
                    self._retire(min(spare, key=lambda w: w.last_used))
                worker = self._fork(config)
                self._workers.append(worker)
                break
        return self._await_ready(worker)

    def _fork(self, config: FunctionConfig) -> _Worker:
        label = f"LOCAL{next(self._ids):04d}"
        log_path = self.work_dir / "logs" / f"{config.function}.{label}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        steps = tuple(
            (target, argument)
            for target, argument, functions in self.setup_steps
            if functions is None or config.function in functions
        )
        spec = WorkerSpec(
            function=config.function,
            handler=config.handler,
            environment={**config.environment, **self.endpoint_environment(label)},
            memory_mb=config.memory_mb,
            log_path=str(log_path),
            policy_spec_json=config.policy_spec_json,
            setup_steps=steps,
        )
        self.on_caller(label, config.function)
        pid, pipe = _ZYGOTE.fork(spec)
        return _Worker(label, config.function, pid, pipe, str(log_path), busy=True)

    def _await_ready(self, worker: _Worker) -> _Worker:
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS
        while True:
            message = self._receive(worker, deadline, ("Runtime.ExitError", "the worker did not start in time"))
            if message is None or message[0] == "init_error":
                if message is None:
                    payload = _died(worker, "Runtime.ExitError", "the worker exited during its start")
                    kind = payload["errorType"]
                else:
                    payload, kind = message[1], "error"
                self._discard(worker)
                raise _InitFailed(_Outcome(payload, True, kind, (0, 0), worker.label, worker.log_path))
            if message[0] == "ready":
                return worker
            self._serve(worker, message)

    def _release(self, worker: _Worker) -> None:
        with self._changed:
            worker.busy = False
            worker.last_used = time.monotonic()
            if not _alive(worker.pid) or worker not in self._workers:
                self._discard(worker)
            self._changed.notify_all()

    def _retire(self, worker: _Worker) -> None:
        """Stop an idle worker (called holding the condition)."""
        _ask_to_stop(worker)
        if not _exited(worker.pid, timeout=5):
            _sigkill(worker)
        self._discard(worker)

    def _discard(self, worker: _Worker) -> None:
        with self._changed:
            if worker in self._workers:
                self._workers.remove(worker)
                self._changed.notify_all()
        worker.pipe.close()
        self.on_caller(worker.label, None)

    # --- one invocation ----------------------------------------------------------------------------------------
    def _run(self, worker: _Worker, config: FunctionConfig, event: Any) -> _Outcome:
        request_id = lambda_worker.new_request_id()
        log_start = os.path.getsize(worker.log_path)
        worker.pipe.send(("invoke", event, request_id, config.timeout_seconds))
        deadline = time.monotonic() + config.timeout_seconds
        # Lambda's words for a timeout (runtime logs); the rig cannot prove the exact text.
        timed_out = ("Sandbox.Timedout", f"Task timed out after {config.timeout_seconds:.2f} seconds")
        while True:
            message = self._receive(worker, deadline, timed_out, memory_mb=config.memory_mb)
            if message is None:
                break
            if message[0] == "result":
                _, result, failed, denials, span = message
                self._record_denials(denials)
                return _Outcome(result, failed, "error" if failed else "ok", span, worker.label, worker.log_path)
            self._serve(worker, message)
        if worker.killed_as is None:
            worker.killed_as = ("Runtime.ExitError", f"RequestId: {request_id} Error: Runtime exited")
        payload = {"errorType": worker.killed_as[0], "errorMessage": worker.killed_as[1]}
        log_span = (log_start, os.path.getsize(worker.log_path))  # what it wrote before it died
        self._discard(worker)
        return _Outcome(payload, True, payload["errorType"], log_span, worker.label, worker.log_path)

    def _receive(
        self, worker: _Worker, deadline: float, on_deadline: tuple[str, str], memory_mb: int | None = None
    ) -> Any:
        """The worker's next message; None once it is dead (killed here past `deadline` or over `memory_mb`)."""
        while True:
            try:
                if worker.pipe.poll(MEMORY_SAMPLE_SECONDS):
                    return worker.pipe.recv()
            except (EOFError, OSError):
                _exited(worker.pid, timeout=5)
                return None
            if not _alive(worker.pid):
                continue  # read what it sent before it died; EOF follows
            if time.monotonic() > deadline:
                _died(worker, *on_deadline)
                _sigkill(worker)
            elif memory_mb is not None and _resident_mib(worker.pid) > memory_mb:
                # Lambda's words for it (runtime logs); the rig cannot prove the exact text.
                _died(worker, "Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
                _sigkill(worker)

    def _serve(self, worker: _Worker, message: Any) -> None:
        kind, channel, value = message
        if kind == "report":
            self.on_report(worker.function, channel, value)
        elif kind == "ask":
            try:
                answer = ("answer", self.on_ask(worker.function, channel, value))
            except Exception as exc:  # noqa: BLE001 - the asking step fails, not the rig's interpreter thread
                answer = ("refused", f"{type(exc).__name__}: {exc}")
            worker.pipe.send(answer)

    @staticmethod
    def _record_denials(denials: list[Any]) -> None:
        from modelferry_cli.local.iam import guard

        guard.record_denials(denials)


class _InitFailed(Exception):
    def __init__(self, outcome: _Outcome) -> None:
        super().__init__("the worker failed to start")
        self.outcome = outcome


def _died(worker: _Worker, error_type: str, message: str) -> dict[str, str]:
    if worker.killed_as is None:
        worker.killed_as = (error_type, message)
    return {"errorType": worker.killed_as[0], "errorMessage": worker.killed_as[1]}


def _ask_to_stop(worker: _Worker) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        worker.pipe.send(("stop",))


def _sigkill(worker: _Worker) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker.pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Whether worker `pid` still runs (the fork server's kernel-reaped child: gone once dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(MEMORY_SAMPLE_SECONDS)
    return True


def _resident_mib(pid: int | None) -> float:
    """VmRSS of `pid` in MiB (0 once it is gone), from /proc/<pid>/status (proc(5))."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return 0.0
