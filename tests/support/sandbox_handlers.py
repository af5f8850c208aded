"""Tiny Lambda handlers for the sandbox's own tests (tests/unit/test_local_sandbox.py): each shows one thing a
Lambda execution environment does or enforces. Imported only inside the rig's workers."""

from __future__ import annotations

import os
import time
from typing import Any

from modelferry_cli.local import lambda_worker

# Module globals, as handlers keep them (Powertools' metrics set, a logger's correlation id, caches).
invocations_here = 0
current_request: Any = None


def count(event: Any, context: Any) -> dict[str, Any]:
    """How many invocations this process has served (a warm worker keeps counting)."""
    global invocations_here  # noqa: PLW0603 - the module global under test
    invocations_here += 1
    return {"invocations_here": invocations_here, "pid": os.getpid()}


def remember_then_meet(event: Any, context: Any) -> dict[str, Any]:
    """Keep the event's id in a module global, meet the other invocation (both are inside now), read it back."""
    global current_request  # noqa: PLW0603 - the module global under test
    current_request = event["id"]
    lambda_worker.ask_parent("meet", event["id"])
    return {"id": event["id"], "current_request": current_request}


def environment(event: Any, context: Any) -> dict[str, Any]:
    return {"environment": dict(os.environ), "remaining_ms": context.get_remaining_time_in_millis()}


def sleep_forever(event: Any, context: Any) -> None:
    print("sleeping past the timeout", flush=True)
    while True:
        time.sleep(60)


def report_then_sleep(event: Any, context: Any) -> None:
    lambda_worker.report("started", None)
    while True:
        time.sleep(60)


def allocate_forever(event: Any, context: Any) -> None:
    """Hold `event["mib"]` MiB of touched (resident) memory until killed."""
    held = bytearray(int(event["mib"]) * 1024 * 1024)
    for offset in range(0, len(held), 4096):
        held[offset] = 1
    while True:
        time.sleep(60)


class ModelNotReady(Exception):
    """A domain error, named for what happened."""


def fail(event: Any, context: Any) -> None:
    raise ModelNotReady(f"not ready: {event['model']}")


def exit_hard(event: Any, context: Any) -> None:
    os._exit(3)
