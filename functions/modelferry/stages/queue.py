"""A fair line for Bedrock's one import job per Region: the Step Functions semaphore pattern with a task token.

A run that reaches the import joins the line (JoinImportQueue, a `lambda:invoke.waitForTaskToken` task) and waits
without polling anything; the slot goes to the first in line with SendTaskSuccess on its token. The holder gives
it back when its job ends (ReleaseImportSlot), and a run that fails, times out or is stopped gives it back through
the cleanup function the "Step Functions Execution Status Change" rule invokes. Every function here can run twice,
or concurrently with another, without harm: see `pass_slot_on`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.adapters.bedrock import as_utc
from modelferry.adapters.import_queue import GRANTED, ImportQueue, JoinableImportQueue, QueueEntry
from modelferry.contract import QueuePlace, QueueTurn, RunInfo, SlotReleased
from modelferry.errors import ImportQueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

# SendTaskSuccess on a token whose task is over: TaskTimedOut ("the task token has either expired or the task
# associated with the token has already been closed"), InvalidToken, TaskDoesNotExist (Step Functions API
# reference, SendTaskSuccess, Errors).
_TOKEN_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
_THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceUnavailable", "InternalFailure"})
# More than the runs a line can hold in practice; each round either hands the slot on or removes a dead entry.
_MAX_ROUNDS = 200


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dispatcher:
    """The queue's table and Step Functions' callback API: everything that hands the slot on."""

    queue: ImportQueue
    sfn: SFNClient
    # Looked up at each call, so a local run can move the clock as it moves Bedrock's (simulated waits).
    clock: Callable[[], datetime] = field(default=lambda: utc_now())  # noqa: PLW0108 - late-bound on purpose

    def now(self) -> str:
        return self.clock().isoformat()


def join_queue(
    run: RunInfo, execution_arn: str, task_token: str, line: JoinableImportQueue, dispatcher: Dispatcher
) -> QueuePlace | None:
    """Take (or keep) this run's place in line, then hand the slot on if it is free: to this run when it is first.
    None if the run is out of line by then: its execution had already ended (a late retry), so it was dropped."""
    entry = line.join(
        execution_arn, task_token, queued_at=dispatcher.now(), model_name=run.model_name, repo_id=run.repo_id
    )
    pass_slot_on(dispatcher)
    try:
        return place_of(line, entry.execution_arn)
    except LookupError:
        return None


def release_slot(execution_arn: str, dispatcher: Dispatcher) -> SlotReleased:
    """The run is done with the slot (its job ended) or with the line (its execution ended): out, and on to the
    next. A repeated call finds nothing to give back and still hands a free slot on."""
    released = dispatcher.queue.free(execution_arn)
    dispatcher.queue.leave(execution_arn)
    return SlotReleased(released=released, next_execution=pass_slot_on(dispatcher))


def pass_slot_on(dispatcher: Dispatcher) -> str | None:
    """Make sure the slot is held by someone who knows it, if anyone is in line; return the holder.

    - Slot free: claim it for the first in line (conditional write: of two concurrent callers one wins, the other
      reads the new holder) and send that run its turn.
    - Slot held by a run that was never told (a call that failed between the claim and SendTaskSuccess): tell it.
    - Slot held by a run whose execution has ended (its cleanup event lost): free it and go on.
    A run told twice (two concurrent callers) gets its turn once: Step Functions closes the task at the first
    SendTaskSuccess and answers TaskTimedOut to the second.
    """
    queue = dispatcher.queue
    for _ in range(_MAX_ROUNDS):
        slot = queue.slot()
        if slot.holder is not None:
            holder = queue.entry(slot.holder)
            if holder is not None and holder.status == GRANTED:
                if _still_running(dispatcher.sfn, holder.execution_arn):
                    return holder.execution_arn
                _drop(queue, holder.execution_arn)
                continue
            if holder is None:
                # The holder left the line but kept the slot: a release that failed half-way. Finish it.
                queue.free(slot.holder)
                continue
            target = holder
        else:
            waiting = queue.waiting()
            if not waiting:
                return None
            target = waiting[0]
            if not queue.claim(target.execution_arn, dispatcher.now()):
                continue
        if _deliver_turn(dispatcher, target):
            return target.execution_arn
    raise ImportQueueUnavailable(f"the import slot could not be handed on in {_MAX_ROUNDS} rounds")


def _deliver_turn(dispatcher: Dispatcher, entry: QueueEntry) -> bool:
    """SendTaskSuccess to the run now holding the slot; False (and the run out of the line) if it cannot hear."""
    queue = dispatcher.queue
    granted_at = dispatcher.clock()
    queued_at = as_utc(entry.queued_at) or granted_at
    turn = QueueTurn(
        region=queue.region,
        ticket=entry.ticket,
        queued_at=entry.queued_at,
        granted_at=granted_at.isoformat(),
        waited_seconds=max(0, int((granted_at - queued_at).total_seconds())),
    )
    try:
        dispatcher.sfn.send_task_success(taskToken=entry.task_token, output=turn.model_dump_json())
    except ClientError as exc:
        code = error_code(exc)
        if code in _THROTTLED:
            raise ImportQueueUnavailable(f"SendTaskSuccess answered {code}: {error_message(exc)}") from exc
        if code not in _TOKEN_GONE:
            raise
        if _still_running(dispatcher.sfn, entry.execution_arn):
            # Told already by a concurrent caller, or a newer attempt of its task replaced the token (that attempt
            # joins again and is told then): mark it only if the token is still the one we sent to.
            queue.mark_granted(entry, granted_at.isoformat())
            return True
        _drop(queue, entry.execution_arn)
        return False
    queue.mark_granted(entry, granted_at.isoformat())
    return True


def _drop(queue: ImportQueue, execution_arn: str) -> None:
    queue.free(execution_arn)
    queue.leave(execution_arn)


def _still_running(sfn: SFNClient, execution_arn: str) -> bool:
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    except ClientError as exc:
        code = error_code(exc)
        if code == "ExecutionDoesNotExist":
            return False
        if code in _THROTTLED:
            raise ImportQueueUnavailable(f"DescribeExecution answered {code}: {error_message(exc)}") from exc
        raise


def place_of(queue: ImportQueue, execution_arn: str) -> QueuePlace:
    """Where a run stands: 0 holding the slot, n the n-th in line (tickets order the line)."""
    slot = queue.slot()
    entries = queue.entries()
    mine = next((entry for entry in entries if entry.execution_arn == execution_arn), None)
    if mine is None:
        raise LookupError(f"{execution_arn} is not in the import queue of {queue.region}")
    holder = next((entry for entry in entries if entry.execution_arn == slot.holder), None)
    ahead = [e for e in entries if e.ticket < mine.ticket and e.execution_arn != slot.holder and e.status != GRANTED]
    return QueuePlace(
        execution_arn=execution_arn,
        model_name=mine.model_name,
        ticket=mine.ticket,
        queued_at=mine.queued_at,
        position=0 if slot.holder == execution_arn else len(ahead) + 1,
        holder=slot.holder,
        holder_model=holder.model_name if holder else None,
    )


def line(queue: ImportQueue) -> list[QueuePlace]:
    """The whole line, the holder first: what `modelferry queue` prints."""
    slot = queue.slot()
    entries = queue.entries()
    holder = next((entry for entry in entries if entry.execution_arn == slot.holder), None)
    places = []
    position = 0
    for entry in entries:
        is_holder = entry.execution_arn == slot.holder
        if not is_holder:
            position += 1
        places.append(
            QueuePlace(
                execution_arn=entry.execution_arn,
                model_name=entry.model_name,
                ticket=entry.ticket,
                queued_at=entry.queued_at,
                position=0 if is_holder else position,
                holder=slot.holder,
                holder_model=holder.model_name if holder else None,
            )
        )
    return sorted(places, key=lambda place: place.position)
