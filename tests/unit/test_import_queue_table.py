"""The import queue's table operations and the hand-over of the slot, on moto's DynamoDB.

Step Functions' callback API is a recording stand-in here (`Callbacks`): which token got SendTaskSuccess with what,
which executions still run, and which tokens are closed (answered TaskTimedOut, as the API reference documents for
a token whose task is over). The workflow tests run the same code against moto's interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from modelferry.adapters.import_queue import GRANTED, WAITING, JoinableImportQueue
from modelferry.contract import QueueTurn, RunInfo
from modelferry.errors import ImportQueueUnavailable
from modelferry.stages.queue import Dispatcher, join_queue, line, pass_slot_on, place_of, release_slot
from modelferry_cli.local.rig import create_import_queue_table
from modelferry_cli.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "import-queue"
ARN = "arn:aws:states:us-east-1:123456789012:execution:modelferry:{}"


@dataclass
class Callbacks:
    """SendTaskSuccess and DescribeExecution as the queue uses them."""

    sent: list[tuple[str, QueueTurn]] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)  # tokens whose task is over
    ended: set[str] = field(default_factory=set)  # executions no longer RUNNING
    throttle_next: int = 0

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if self.throttle_next:
            self.throttle_next -= 1
            raise _client_error("ThrottlingException", "Rate exceeded")
        if taskToken in self.closed:
            raise _client_error("TaskTimedOut", "Task Timed Out")
        self.sent.append((taskToken, QueueTurn.model_validate_json(output)))
        self.closed.add(taskToken)  # a task's token closes at the first SendTaskSuccess
        return {}

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"status": "FAILED" if executionArn in self.ended else "RUNNING"}

    @property
    def told(self) -> list[str]:
        return [token for token, _ in self.sent]


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "SendTaskSuccess")


@dataclass
class Clock:
    now: datetime = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def table() -> Iterator[Any]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        create_import_queue_table(dynamodb, TABLE, load_template(ROOT / "template.yaml"))
        yield dynamodb


@pytest.fixture
def queue(table: Any) -> JoinableImportQueue:
    return JoinableImportQueue(table, TABLE, REGION)


@pytest.fixture
def callbacks() -> Callbacks:
    return Callbacks()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dispatcher(queue: JoinableImportQueue, callbacks: Callbacks, clock: Clock) -> Dispatcher:
    return Dispatcher(queue=queue, sfn=callbacks, clock=clock)  # type: ignore[arg-type]  # the stand-in


def _run(name: str) -> RunInfo:
    return RunInfo(
        run_id=name,
        execution_id=ARN.format(name),
        started_at="2026-12-02T20:00:00+00:00",
        repo_id=f"acme/{name}",
        revision="main",
        commit="0" * 40,
        model_name=name,
        bucket="b",
        model_prefix=f"models/{name}/",
        s3_uri=f"s3://b/models/{name}/",
        run_prefix=f"runs/{name}/",
        job_name=f"{name}-job",
        client_request_token=name,
        import_role_arn="arn:aws:iam::123456789012:role/import",
        poll_seconds=60,
        if_exists="fail",
        verify_prompt="hi",
        verify_expect=None,
        verify_max_tokens=16,
        allow_quantized=False,
    )


def _join(dispatcher: Dispatcher, name: str, token: str | None = None) -> None:
    join_queue(_run(name), ARN.format(name), token or f"token-{name}", dispatcher.queue, dispatcher)  # type: ignore[arg-type]


# --- the table --------------------------------------------------------------------------------------------------


def test_joining_numbers_runs_in_the_order_they_arrive(queue: JoinableImportQueue) -> None:
    for name in ("a", "b", "c"):
        queue.join(ARN.format(name), f"t-{name}", queued_at="2026-12-02T20:00:00+00:00", model_name=name, repo_id="r")
    assert [(e.model_name, e.ticket, e.status) for e in queue.entries()] == [
        ("a", 1, WAITING),
        ("b", 2, WAITING),
        ("c", 3, WAITING),
    ]


def test_joining_again_keeps_the_place_and_takes_the_new_token(queue: JoinableImportQueue) -> None:
    """A retried JoinImportQueue (a new attempt has a new task token) must not take a second place."""
    first = queue.join(ARN.format("a"), "t1", queued_at="2026-12-02T20:00:00+00:00", model_name="a", repo_id="r")
    queue.join(ARN.format("b"), "tb", queued_at="2026-12-02T20:00:01+00:00", model_name="b", repo_id="r")
    again = queue.join(ARN.format("a"), "t2", queued_at="2026-12-02T20:05:00+00:00", model_name="a", repo_id="r")
    assert (again.ticket, again.queued_at, again.task_token) == (first.ticket, first.queued_at, "t2")
    assert [(e.model_name, e.ticket) for e in queue.entries()] == [("a", 1), ("b", 2)]


def test_the_slot_is_claimed_only_while_free_and_freed_only_by_its_holder(queue: JoinableImportQueue) -> None:
    assert queue.claim(ARN.format("a"), "2026-12-02T20:00:00+00:00")
    assert not queue.claim(ARN.format("b"), "2026-12-02T20:00:00+00:00")
    assert not queue.claim(ARN.format("a"), "2026-12-02T20:00:00+00:00"), "a holder does not claim twice"
    assert not queue.free(ARN.format("b"))
    assert queue.slot().holder == ARN.format("a")
    assert queue.free(ARN.format("a"))
    assert not queue.free(ARN.format("a")), "freeing twice is a no-op"
    assert queue.slot().holder is None


def test_marking_granted_needs_the_token_that_was_told(queue: JoinableImportQueue) -> None:
    entry = queue.join(ARN.format("a"), "t1", queued_at="2026-12-02T20:00:00+00:00", model_name="a", repo_id="r")
    queue.join(ARN.format("a"), "t2", queued_at="2026-12-02T20:00:00+00:00", model_name="a", repo_id="r")
    assert not queue.mark_granted(entry, "2026-12-02T20:01:00+00:00"), "t1 is no longer the run's token"
    assert queue.waiting()[0].task_token == "t2"


def test_a_throttled_table_is_a_retryable_error(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = JoinableImportQueue(table, TABLE, REGION)

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")

    monkeypatch.setattr(table, "get_item", throttled)
    with pytest.raises(ImportQueueUnavailable, match="GetItem answered ThrottlingException"):
        queue.slot()


# --- handing the slot on ------------------------------------------------------------------------------------------


def test_the_first_to_join_an_empty_line_gets_the_slot_at_once(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    _join(dispatcher, "a")
    assert callbacks.told == ["token-a"]
    assert queue.slot().holder == ARN.format("a")
    assert queue.entry(ARN.format("a")).status == GRANTED  # type: ignore[union-attr]
    assert callbacks.sent[0][1].waited_seconds == 0


def test_the_others_wait_and_get_the_slot_in_order_with_their_waiting_time(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue, clock: Clock
) -> None:
    for name in ("a", "b", "c"):
        _join(dispatcher, name)
    assert callbacks.told == ["token-a"], "b and c wait: nobody tells them anything"
    assert place_of(queue, ARN.format("c")).position == 2
    assert place_of(queue, ARN.format("c")).holder_model == "a"

    clock.advance(900)
    released = release_slot(ARN.format("a"), dispatcher)
    assert (released.released, released.next_execution) == (True, ARN.format("b"))
    clock.advance(600)
    release_slot(ARN.format("b"), dispatcher)

    assert callbacks.told == ["token-a", "token-b", "token-c"]
    assert [turn.waited_seconds for _, turn in callbacks.sent] == [0, 900, 1500]
    assert [turn.ticket for _, turn in callbacks.sent] == [1, 2, 3]
    assert [p.model_name for p in line(queue)] == ["c"]


def test_a_repeated_release_hands_nothing_on_twice(dispatcher: Dispatcher, callbacks: Callbacks) -> None:
    for name in ("a", "b", "c"):
        _join(dispatcher, name)
    release_slot(ARN.format("a"), dispatcher)
    again = release_slot(ARN.format("a"), dispatcher)
    assert (again.released, again.next_execution) == (False, ARN.format("b"))
    assert callbacks.told == ["token-a", "token-b"]


def test_a_retried_join_takes_one_place_and_is_told_on_its_new_token(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    _join(dispatcher, "a")
    _join(dispatcher, "b", token="b-attempt-1")
    _join(dispatcher, "b", token="b-attempt-2")  # Step Functions retried the task: a new token
    release_slot(ARN.format("a"), dispatcher)
    assert callbacks.told == ["token-a", "b-attempt-2"]
    assert [e.model_name for e in queue.entries()] == ["b"]


def test_a_retried_join_of_the_holder_is_told_again(dispatcher: Dispatcher, callbacks: Callbacks) -> None:
    """The holder's first attempt was granted the slot but its Lambda failed, so Step Functions retried the task:
    the new attempt waits on a new token and must be told, or the run would wait for a slot it already holds."""
    _join(dispatcher, "a", token="a-attempt-1")
    _join(dispatcher, "b")
    _join(dispatcher, "a", token="a-attempt-2")
    assert dispatcher.queue.slot().holder == ARN.format("a")
    assert callbacks.told == ["a-attempt-1", "a-attempt-2"]
    assert dispatcher.queue.entry(ARN.format("a")).status == GRANTED  # type: ignore[union-attr]


def test_a_claim_whose_send_was_lost_is_sent_again(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    """A call that claimed the slot for b and failed before SendTaskSuccess: the next call tells b."""
    _join(dispatcher, "a")
    _join(dispatcher, "b")
    callbacks.throttle_next = 1
    with pytest.raises(ImportQueueUnavailable):
        release_slot(ARN.format("a"), dispatcher)
    assert queue.slot().holder == ARN.format("b")
    assert queue.entry(ARN.format("b")).status == WAITING  # type: ignore[union-attr]
    release_slot(ARN.format("a"), dispatcher)  # Step Functions retries the release
    assert callbacks.told == ["token-a", "token-b"]
    assert queue.entry(ARN.format("b")).status == GRANTED  # type: ignore[union-attr]


def test_a_run_told_twice_keeps_one_turn(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    """Two concurrent callers both tell b: the second SendTaskSuccess meets a closed token while b runs."""
    _join(dispatcher, "a")
    _join(dispatcher, "b")
    queue.free(ARN.format("a"))
    queue.leave(ARN.format("a"))
    assert queue.claim(ARN.format("b"), "2026-12-02T20:00:00+00:00")
    callbacks.closed.add("token-b")  # the other caller's SendTaskSuccess went first
    assert pass_slot_on(dispatcher) == ARN.format("b")
    assert queue.entry(ARN.format("b")).status == GRANTED  # type: ignore[union-attr]


def test_a_run_that_ended_in_line_is_skipped(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    for name in ("a", "b", "c"):
        _join(dispatcher, name)
    callbacks.ended.add(ARN.format("b"))
    callbacks.closed.add("token-b")
    release_slot(ARN.format("a"), dispatcher)
    assert callbacks.told == ["token-a", "token-c"]
    assert [e.model_name for e in queue.entries()] == ["c"]


def test_a_stale_holder_whose_cleanup_was_lost_gives_the_slot_up_to_the_next_joiner(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    _join(dispatcher, "a")
    callbacks.ended.add(ARN.format("a"))  # a crashed; its status-change event never arrived
    _join(dispatcher, "b")
    assert callbacks.told == ["token-a", "token-b"]
    assert queue.slot().holder == ARN.format("b")
    assert queue.entry(ARN.format("a")) is None


def test_the_cleanup_of_a_run_in_line_leaves_the_holder_alone(
    dispatcher: Dispatcher, callbacks: Callbacks, queue: JoinableImportQueue
) -> None:
    for name in ("a", "b", "c"):
        _join(dispatcher, name)
    released = release_slot(ARN.format("b"), dispatcher)  # b was stopped while in line
    assert (released.released, released.next_execution) == (False, ARN.format("a"))
    assert callbacks.told == ["token-a"]
    assert [e.model_name for e in queue.entries()] == ["a", "c"]


def test_the_turn_is_the_json_the_definition_selects(dispatcher: Dispatcher, callbacks: Callbacks) -> None:
    definition = json.loads(open("statemachine/modelferry.asl.json").read())  # noqa: SIM115
    selector = definition["States"]["JoinImportQueue"]["ResultSelector"]
    _join(dispatcher, "a")
    turn = callbacks.sent[0][1].model_dump(mode="json")
    assert {key.removesuffix(".$") for key in selector} == set(turn)
