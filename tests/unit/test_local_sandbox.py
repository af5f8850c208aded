"""The local rig's Lambda sandboxes (cli/modelferry_cli/local/sandbox.py): what a Lambda execution environment
does and enforces, shown on tiny handlers (tests/support/sandbox_handlers.py) without AWS or a state machine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from modelferry_cli.local.sandbox import FunctionConfig, SandboxPool

HANDLERS = "tests.support.sandbox_handlers"


class Rig:
    """The pool's view of the rig: what workers reported and asked, and which access keys are live."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, str, Any]] = []
        self.callers: dict[str, str] = {}
        self.meeting = threading.Barrier(2, timeout=60)
        self.started = threading.Event()

    def report(self, function: str, channel: str, value: Any) -> None:
        self.reports.append((function, channel, value))
        if channel == "started":
            self.started.set()

    def ask(self, function: str, channel: str, value: Any) -> Any:
        assert channel == "meet"
        self.meeting.wait()
        return None

    def caller(self, access_key: str, function: str | None) -> None:
        if function is None:
            self.callers.pop(access_key, None)
        else:
            self.callers[access_key] = function


@pytest.fixture
def rig() -> Rig:
    return Rig()


@pytest.fixture
def pool(tmp_path: Path, rig: Rig) -> Iterator[SandboxPool]:
    sandboxes = SandboxPool(
        work_dir=tmp_path,
        endpoint_environment=lambda access_key: {"AWS_ACCESS_KEY_ID": access_key},
        on_report=rig.report,
        on_ask=rig.ask,
        on_caller=rig.caller,
    )
    yield sandboxes
    sandboxes.close()


def config(handler: str, *, function: str | None = None, timeout: float = 60, memory: int = 512) -> FunctionConfig:
    return FunctionConfig(
        function=function or f"{handler.title()}Function",
        handler=f"{HANDLERS}.{handler}",
        environment={"AWS_REGION": "us-east-1", "MODEL_BUCKET": "a-bucket", "PATH": "/usr/bin:/bin"},
        timeout_seconds=timeout,
        memory_mb=memory,
        policy_spec_json=None,
    )


def test_a_worker_is_reused_warm_for_the_same_function(pool: SandboxPool) -> None:
    first = pool.invoke(config("count"), {})
    second = pool.invoke(config("count"), {})

    assert (first.outcome, second.outcome) == ("ok", "ok")
    assert second.worker == first.worker
    assert second.result == {"invocations_here": 2, "pid": first.result["pid"]}  # the module global survived


def test_another_function_gets_a_worker_of_its_own(pool: SandboxPool) -> None:
    counted = pool.invoke(config("count", function="A"), {})
    other = pool.invoke(config("count", function="B"), {})

    assert other.worker != counted.worker
    assert other.result["invocations_here"] == 1
    assert other.result["pid"] != counted.result["pid"]


def test_two_concurrent_invocations_run_in_two_workers_that_share_no_module_global(pool: SandboxPool) -> None:
    # Both handlers are inside at once (each waits for the other before it reads the global back): in one process
    # the second would have overwritten the first's `current_request`.
    with ThreadPoolExecutor(2) as threads:
        results = list(threads.map(lambda i: pool.invoke(config("remember_then_meet"), {"id": i}), ["a", "b"]))

    assert [r.result for r in results] == [{"id": "a", "current_request": "a"}, {"id": "b", "current_request": "b"}]
    assert results[0].worker != results[1].worker


def test_the_worker_has_exactly_its_functions_environment_and_the_context_counts_down(pool: SandboxPool) -> None:
    invocation = pool.invoke(config("environment", timeout=30), {})

    assert invocation.result["environment"] == {
        "AWS_REGION": "us-east-1",
        "MODEL_BUCKET": "a-bucket",
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": invocation.worker,  # its own key: the rig's moto server tells workers apart by it
    }
    assert 0 < invocation.result["remaining_ms"] <= 30_000


def test_an_invocation_past_its_timeout_is_killed_as_sandbox_timedout_and_the_worker_replaced(
    pool: SandboxPool,
) -> None:
    timed_out = pool.invoke(config("sleep_forever", timeout=1), {})

    assert timed_out.errored
    assert timed_out.outcome == "Sandbox.Timedout"
    assert timed_out.result == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
    # The next invocation of the function starts a new worker.
    again = pool.invoke(config("sleep_forever", timeout=1), {})
    assert again.worker != timed_out.worker
    assert "sleeping past the timeout" in again.log()


def test_an_invocation_over_its_memory_size_is_killed_as_out_of_memory(pool: SandboxPool) -> None:
    # The handler holds 400 MiB until killed: only the memory limit (or the 60 s timeout) can end it.
    invocation = pool.invoke(config("allocate_forever", memory=256), {"mib": 400})

    assert invocation.errored
    assert invocation.outcome == "Runtime.OutOfMemory"
    assert invocation.result["errorType"] == "Runtime.OutOfMemory"


def test_a_handler_exception_is_lambdas_error_payload(pool: SandboxPool) -> None:
    invocation = pool.invoke(config("fail"), {"model": "tiny"})

    assert invocation.errored
    assert invocation.outcome == "error"
    assert invocation.result["errorType"] == "ModelNotReady"
    assert invocation.result["errorMessage"] == "not ready: tiny"
    assert any("sandbox_handlers.py" in line for line in invocation.result["stackTrace"])
    # The worker survives a handled error, as a Lambda execution environment does.
    assert pool.invoke(config("fail"), {"model": "tiny"}).worker == invocation.worker


def test_a_worker_that_exits_fails_its_invocation_with_runtime_exit_error(pool: SandboxPool) -> None:
    invocation = pool.invoke(config("exit_hard"), {})

    assert invocation.errored
    assert invocation.result["errorType"] == "Runtime.ExitError"


def test_a_worker_killed_by_the_rig_fails_with_the_error_the_rig_names(pool: SandboxPool, rig: Rig) -> None:
    killed: list[bool] = []

    def kill_once_started() -> None:
        assert rig.started.wait(60)
        (access_key,) = [key for key, function in rig.callers.items() if function == "Report_Then_SleepFunction"]
        killed.append(pool.kill(access_key, "Lambda.Unknown", "killed mid-file"))

    killer = threading.Thread(target=kill_once_started)
    killer.start()
    invocation = pool.invoke(config("report_then_sleep", timeout=600), {})
    killer.join()

    assert killed == [True]
    assert invocation.result == {"errorType": "Lambda.Unknown", "errorMessage": "killed mid-file"}
    assert rig.reports == [("Report_Then_SleepFunction", "started", None)]


def test_at_most_max_workers_live_and_the_least_recently_used_idle_one_makes_room(tmp_path: Path, rig: Rig) -> None:
    pool = SandboxPool(
        work_dir=tmp_path,
        endpoint_environment=lambda access_key: {},
        on_report=lambda *_: None,
        on_ask=rig.ask,
        on_caller=rig.caller,
        max_workers=2,
    )
    try:
        a = pool.invoke(config("count", function="A"), {})
        b = pool.invoke(config("count", function="B"), {})
        pool.invoke(config("count", function="A"), {})  # B is now the least recently used
        c = pool.invoke(config("count", function="C"), {})

        assert sorted(rig.callers.values()) == ["A", "C"]
        assert set(rig.callers) == {a.worker, c.worker}
        assert pool.invoke(config("count", function="B"), {}).worker != b.worker  # B starts cold again
    finally:
        pool.close()
    assert rig.callers == {}
