"""VerifyModelFunction ends inside its Timeout even when every AWS call it makes uses all its retries.

Static (the rig cannot make botocore wait): the clients' settings are read by running the handler with `client`
and the stage replaced, the call sites by reading the code (tests/support/aws_calls.py). Per call, botocore's
standard retry mode makes `total_max_attempts` attempts, each bounded by the connect and read timeouts, with at most
20 s of backoff between two (botocore documentation, "Retries", standard mode: "maximum backoff time of 20 seconds").
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest

from modelferry.adapters import aws
from modelferry.handlers import verify_model as handler_module
from modelferry_cli.local.moto_patches import FakeLambdaContext
from modelferry_cli.local.template import load_template
from tests.support.aws_calls import reachable_calls
from tests.unit.test_template import ROOT

MAX_BACKOFF_SECONDS = 20


class _Stop(Exception):
    """Raised by the stage stand-in: the clients are built, nothing else is wanted."""


def stop(*_: Any, **__: Any) -> None:
    raise _Stop


SAFETY_SECONDS = 30  # cold start, the handler's own work, the S3 record writes' bodies


def worst_call_seconds(total_max_attempts: int, read_timeout: int) -> int:
    per_attempt = aws.CONNECT_TIMEOUT_SECONDS + read_timeout
    return total_max_attempts * per_attempt + (total_max_attempts - 1) * MAX_BACKOFF_SECONDS


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, int]]:
    """service -> the settings the handler builds its client with (the defaults of `client` filled in)."""
    built: dict[str, dict[str, int]] = {}
    defaults = {"total_max_attempts": 8, "read_timeout": 120}

    def client(service: str, **settings: int) -> str:
        built[service] = {**defaults, **settings}
        return service

    monkeypatch.setattr(handler_module, "client", client)
    monkeypatch.setattr(handler_module, "verify_model", stop)
    monkeypatch.setenv("MODEL_NOT_READY_BUDGET_SECONDS", "1200")
    event = json.loads((ROOT / "events" / "verify-model.json").read_text())
    with pytest.raises(_Stop):
        handler_module.handler(event, FakeLambdaContext("verify"))
    return built


def test_defaults_of_client_match_what_this_test_assumes() -> None:
    parameters = inspect.signature(aws.client).parameters
    assert (parameters["total_max_attempts"].default, parameters["read_timeout"].default) == (8, 120)


def test_every_call_at_its_worst_ends_inside_the_functions_timeout(clients: dict[str, dict[str, int]]) -> None:
    calls = reachable_calls("modelferry.handlers.verify_model", "handler")
    assert {service for service, _ in calls} <= set(clients), "a call on a client the handler does not build"
    worst = sum(worst_call_seconds(**clients[service]) for service, _ in calls)
    timeout = load_template(ROOT / "template.yaml")["Resources"]["VerifyModelFunction"]["Properties"]["Timeout"]
    assert worst + SAFETY_SECONDS <= timeout, f"{len(calls)} calls, {worst} s at worst, Timeout {timeout} s"
