"""Worker setup steps: the tests' hooks into handler code, run inside the rig's Lambda workers.

Handlers run in worker processes, so a test cannot patch them from the test process. Each function here is a
`WorkerStep` target (`"tests.support.worker_steps:NAME"`), called in a new worker as `step(function, argument)` after
the function's environment is set and before its handler is imported; it may return a wrapper for the handler.
What a step gathers goes back to the test through `lambda_worker.report(channel, value)` (the rig hands it to its
listener for the channel), and a step that must wait for the test asks with `lambda_worker.ask_parent`.
The `register_*` helpers are the test-process side: the step, its listener and what the test reads.
"""

from __future__ import annotations

import functools
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from modelferry_cli.local import lambda_worker

if TYPE_CHECKING:
    from modelferry_cli.local.rig import LocalRig

Handler = Callable[[Any, Any], Any]
_HERE = "tests.support.worker_steps"


# --- in the worker ---------------------------------------------------------------------------------------------------
def record_hub_pauses(function: str, argument: Any) -> None:
    """The Hub client's pauses (back-off, 429 waits) are recorded instead of slept (tests/support/clocks.py), and
    each one is reported on "hub_pauses"."""
    from modelferry.adapters import hub_http
    from tests.support.clocks import RecordedClock

    class ReportedClock(RecordedClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            lambda_worker.report("hub_pauses", seconds)

    hub_http.clock = ReportedClock()


def local_lookups_only(function: str, argument: Any) -> None:
    """A host name lookup of anything but this machine is refused, and reported on "refused_lookups"."""
    lookup = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in {"127.0.0.1", "localhost", "::1", None}:
            lambda_worker.report("refused_lookups", str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"the tests stay on this machine, not {host}")
        return lookup(host, *args, **kwargs)

    socket.getaddrinfo = local_only


def small_parts(function: str, options: dict[str, Any]) -> None:
    """The copy copies with these TransferOptions (small parts, so a few MiB make a multipart upload)."""
    from modelferry.stages import copy as copy_stage
    from modelferry.transfer.engine import TransferOptions, copy_file

    copy_stage.copy_file = functools.partial(copy_file, options=TransferOptions(**options))  # type: ignore[assignment]


def ask_before_first_copy(function: str, argument: Any) -> None:
    """The first copy in this worker waits until the test has run its "first_copy" actions."""
    from modelferry.stages import copy as copy_stage

    copy = copy_stage.copy_file
    asked: list[bool] = []
    lock = threading.Lock()

    def first_then_copy(*args: Any, **kwargs: Any) -> Any:
        with lock:
            if not asked:
                asked.append(True)
                lambda_worker.ask_parent("first_copy")
        return copy(*args, **kwargs)

    copy_stage.copy_file = first_then_copy  # type: ignore[assignment]


def record_botocore_backoff(function: str, argument: Any) -> None:
    """botocore's retry back-off is reported on "botocore_backoff" instead of slept."""
    from botocore.retries.standard import ExponentialBackoff

    delay_amount = ExponentialBackoff.delay_amount

    def recorded_delay(self: Any, context: Any) -> float:
        lambda_worker.report("botocore_backoff", float(delay_amount(self, context)))
        return 0.0

    ExponentialBackoff.delay_amount = recorded_delay  # type: ignore[method-assign]


def pad_result(function: str, field_and_size: list[Any]) -> Callable[[Handler], Handler]:
    """The handler's result gains a field of that many characters (a model answering at great length)."""
    name, size = field_and_size

    def wrap(handler: Handler) -> Handler:
        def padded(event: Any, context: Any) -> Any:
            return {**handler(event, context), name: "x" * int(size)}

        return padded

    return wrap


def hold_until_released(function: str, channel: str) -> Callable[[Handler], Handler]:
    """Each invocation first waits for the test's answer on `channel`."""

    def wrap(handler: Handler) -> Handler:
        def held(event: Any, context: Any) -> Any:
            lambda_worker.ask_parent(channel)
            return handler(event, context)

        return held

    return wrap


def debug_logging(function: str, argument: Any) -> None:
    """Every stdlib logger at DEBUG onto stderr (the function's log), with its name, as an operator turning the
    function's logging up would see it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)


def stall_when_told(function: str, channel: str) -> Callable[[Handler], Handler]:
    """Each invocation asks the test on `channel` (with its event) whether to hang; told so, it sleeps until the rig
    kills it at its Timeout."""
    import time

    def wrap(handler: Handler) -> Handler:
        def maybe_stalled(event: Any, context: Any) -> Any:
            if lambda_worker.ask_parent(channel, event):
                while True:
                    time.sleep(60)
            return handler(event, context)

        return maybe_stalled

    return wrap


def allocate_mib(function: str, mib: int) -> Callable[[Handler], Handler]:
    """Each invocation holds `mib` MiB of touched memory until the rig kills it (a function over its MemorySize)."""
    import time

    def wrap(handler: Handler) -> Handler:
        def hungry(event: Any, context: Any) -> Any:
            held = bytearray(mib * 1024 * 1024)
            for offset in range(0, len(held), 4096):
                held[offset] = 1  # touched pages are resident
            while True:
                time.sleep(60)

        return hungry

    return wrap


def report_environment(function: str, argument: Any) -> None:
    """The worker's whole environment, as its handler will see it, reported on "environment"."""
    import os

    lambda_worker.report("environment", dict(os.environ))


# --- in the test process (the rig is imported here only: a worker imports none of it) --------------------------------
@contextmanager
def _gathered(step: str, channel: str) -> Iterator[list[Any]]:
    """Every rig built inside runs worker step `step`; what its workers report on `channel` is yielded as a list."""
    from modelferry_cli.local.rig import WorkerStep, for_every_rig

    values: list[Any] = []
    with for_every_rig([WorkerStep(f"{_HERE}:{step}")], {channel: lambda _, value: values.append(value)}):
        yield values


@contextmanager
def hub_pauses_recorded() -> Iterator[list[float]]:
    """Every rig built inside records its workers' Hub pauses (instead of sleeping them) into the yielded list."""
    with _gathered("record_hub_pauses", "hub_pauses") as pauses:
        yield pauses


@contextmanager
def local_lookups_only_in_workers() -> Iterator[list[str]]:
    """Every rig built inside refuses its workers' lookups of other hosts; the refused names are yielded."""
    with _gathered("local_lookups_only", "refused_lookups") as refused:
        yield refused


@contextmanager
def small_parts_in_workers(options: Any) -> Iterator[None]:
    from modelferry_cli.local.rig import WorkerStep, for_every_rig

    argument = options.model_dump(mode="json")  # TransferOptions, a pydantic model
    with for_every_rig([WorkerStep(f"{_HERE}:small_parts", argument, frozenset({"CopyFileFunction"}))]):
        yield


@contextmanager
def actions_before_first_copy() -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Register actions run once, when the first copy starts (every worker's first copy waits until they ran)."""
    from modelferry_cli.local.rig import WorkerStep, for_every_rig

    actions: list[Callable[[], Any]] = []
    done: list[bool] = []
    lock = threading.Lock()

    def first_copy(function: str, _: Any) -> None:
        with lock:
            if not done:
                done.append(True)
                for action in actions:
                    action()

    step = WorkerStep(f"{_HERE}:ask_before_first_copy", None, frozenset({"CopyFileFunction"}))
    with for_every_rig([step], {"first_copy": first_copy}):
        yield actions.append


def record_botocore_backoff_of(rig: LocalRig, delays: list[float]) -> None:
    """The rig's workers started from now on report botocore's back-off (not slept) into `delays`."""
    rig.listen("botocore_backoff", lambda _, delay: delays.append(delay))
    rig.add_worker_setup(f"{_HERE}:record_botocore_backoff")


def hold_until(rig: LocalRig, function: str, released: threading.Event, channel: str = "hold") -> None:
    """`function`'s invocations wait until `released` is set (checked from the test process)."""
    rig.listen(channel, lambda *_: released.wait(timeout=120))
    rig.add_worker_setup(f"{_HERE}:hold_until_released", channel, [function])
