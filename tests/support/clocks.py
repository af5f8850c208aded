"""Pauses recorded instead of slept, so that a test of back-off and rate-limit waits runs in milliseconds."""

from __future__ import annotations

import threading

import pytest

from modelferry.adapters import hub_http


class RecordedClock:
    """A clock whose sleeps are recorded and move its time forward at once: a 429's 30 s pause costs no wall time
    and still counts 30 s against the wait budget. Real time passing is added too, so elapsed time still counts."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._lock = threading.Lock()
        self._skipped = 0.0

    def monotonic(self) -> float:
        with self._lock:
            return hub_http.SystemClock().monotonic() + self._skipped

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.pauses.append(seconds)
            self._skipped += max(0.0, seconds)


def record_hub_pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every Hub pause (the shared 429 wait, back-off after a 5xx, a reset or a broken body), recorded."""
    clock = RecordedClock()
    monkeypatch.setattr(hub_http, "clock", clock)
    return clock.pauses
