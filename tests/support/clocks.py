"""Pauses recorded instead of slept, so that a test of back-off and rate-limit waits runs in milliseconds."""

from __future__ import annotations

import pytest

from modelferry.transfer import hub_reader


def record_hub_reader_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The Hub reader's pauses (back-off after a failed read, waits for a 429's reset), recorded; its clock stays
    real, so elapsed-time budgets still count."""
    pauses: list[float] = []

    class Clock:
        monotonic = staticmethod(hub_reader.time.monotonic)
        time = staticmethod(hub_reader.time.time)
        sleep = staticmethod(pauses.append)

    monkeypatch.setattr(hub_reader, "time", Clock)
    return pauses
