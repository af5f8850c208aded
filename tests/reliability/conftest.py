"""Fixtures and checks shared by the reliability suite: the real definition on the local rig, with faults.

Pauses the code asks for (the copy's Hub back-off and 429 waits, botocore's retry back-off) are recorded, not slept,
as the rig already does for Wait states and Retry intervals: faults cost no wall time and no assertion is timed.
The handlers run in the rig's Lambda workers, so these hooks are worker setup steps (tests/support/worker_steps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import moto.s3.models
import pytest

from modelferry.transfer.engine import TransferOptions
from tests.support import reliability_table as table
from tests.support import worker_steps
from tests.support.local_run import MiB

# Multipart with files of a few MiB: 1 MiB parts (S3 wants 5 MiB; moto is told to accept 1 MiB).
SMALL_PARTS = TransferOptions(single_put_max_bytes=MiB, min_part_size=MiB, parts_in_flight=3)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every host name looked up during a case must be this machine: a lookup of any other host is refused (and the
    case fails), so nothing in the suite reaches the internet even on a machine that could.

    huggingface_hub (1.33) fetches `{HF_ENDPOINT}/api/agent-harnesses` for its User-Agent unless telemetry is off;
    both settings are read when it is imported, which in a test session is before the rig sets HF_ENDPOINT and
    HF_HUB_DISABLE_TELEMETRY=1 (as the stack does), so that fetch would go to huggingface.co: turn it off here."""
    import socket

    from huggingface_hub import constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
    refused: list[str] = []
    lookup = socket.getaddrinfo

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in {"127.0.0.1", "localhost", "::1", None}:
            refused.append(str(host))
            raise socket.gaierror(socket.EAI_NONAME, f"the reliability suite stays on this machine, not {host}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    # The handlers look host names up in the rig's workers: the same refusal there, reported here.
    with worker_steps.local_lookups_only_in_workers() as refused_in_workers:
        yield refused
    refused += refused_in_workers
    assert refused == [], f"tried to reach {sorted(set(refused))}"


@pytest.fixture(autouse=True)
def hub_pauses() -> Iterator[list[float]]:
    """Every Hub pause (back-off after a failed request, waits for a 429's reset), recorded instead of slept."""
    with worker_steps.hub_pauses_recorded() as pauses:
        yield pauses


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> Iterator[TransferOptions]:
    """The copy Lambda copies with 1 MiB parts, so a 3 MiB shard is a three-part multipart upload (moto's S3, in
    this process, is told to accept 1 MiB parts)."""
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1024)
    with worker_steps.small_parts_in_workers(SMALL_PARTS):
        yield SMALL_PARTS


@pytest.fixture
def on_first_copy(small_parts: TransferOptions) -> Iterator[Callable[[Callable[[], Any]], None]]:
    """Register actions run once, when the first copy task starts: after Plan has pinned the commit and read the
    headers, so a fault armed then hits the copy, not Plan's pre-check. Copies wait until the actions are done."""
    with worker_steps.actions_before_first_copy() as register:
        yield register


def pytest_sessionfinish(session: pytest.Session) -> None:
    written = table.write_if_asked()
    if written is not None:
        session.config.get_terminal_writer().line(f"reliability tables written to {written}")
