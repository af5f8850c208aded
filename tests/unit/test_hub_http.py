"""The one Hub request policy: 429 waits (RateLimit `t=`, else Retry-After), 5xx and connection retries with jittered
back-off, the task's wait budget, and the gate its concurrent requests share. Answers come from an httpx
MockTransport, so each case sets the exact status and headers; every pause is recorded, none slept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from modelferry.adapters.hub_http import HubGate, HubHttp, RetryPolicy, retry_after_seconds, wait_budget_for
from modelferry.errors import HubRateLimited, HubUnavailable
from tests.support.clocks import record_hub_pauses

URL = "https://hub.test/org/model/resolve/abc/config.json"
RATE_LIMITED = {"RateLimit": '"resolvers";r=0;t=7', "RateLimit-Policy": '"fixed window";"resolvers";q=3000;w=300'}

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return record_hub_pauses(monkeypatch)


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving `answers` in order (the last one forever) and the requests it saw."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        answer = answers[min(len(seen), len(answers) - 1)]
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def client(handler: Handler, *, budget: float = 120.0, retries: int = 5) -> HubHttp:
    return HubHttp(gate=HubGate(budget), retry=RetryPolicy(retries, 0.5, 10.0), transport=httpx.MockTransport(handler))


def ok() -> httpx.Response:
    return httpx.Response(200, content=b"{}")


def test_a_429_waits_for_the_ratelimit_reset_not_retry_after(pauses) -> None:
    handler, seen = scripted(httpx.Response(429, headers={**RATE_LIMITED, "Retry-After": "99"}), ok())

    response = client(handler).send("GET", URL, what="config")

    assert response.status_code == 200
    assert len(seen) == 2
    assert pauses == [pytest.approx(7, abs=0.05)]


def test_a_429_with_only_retry_after_seconds_waits_that_long(pauses) -> None:
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": "4"}), ok())

    client(handler).send("GET", URL, what="config")

    assert pauses == [pytest.approx(4, abs=0.05)]


def test_a_429_with_a_retry_after_date_waits_until_that_date(pauses) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    handler, _ = scripted(httpx.Response(429, headers={"Retry-After": when}), ok())

    client(handler).send("GET", URL, what="config")

    assert pauses == [pytest.approx(20, abs=1.5)]  # the date has whole-second resolution


def test_retry_after_parsing_prefers_ratelimit_and_falls_back_to_the_default() -> None:
    assert retry_after_seconds(httpx.Headers({"ratelimit": '"api";r=0;t=55', "retry-after": "3"}), 1.0) == 55
    assert retry_after_seconds(httpx.Headers({"retry-after": "3"}), 1.0) == 3
    assert retry_after_seconds(httpx.Headers({"retry-after": "soon"}), 1.5) == 1.5
    assert retry_after_seconds(httpx.Headers({}), 2.0) == 2.0


def test_5xx_and_broken_connections_are_retried_with_jittered_backoff(pauses) -> None:
    handler, seen = scripted(
        httpx.Response(503),
        httpx.ReadError("connection reset by peer"),
        httpx.Response(500),
        ok(),
    )

    response = client(handler).send("GET", URL, what="config")

    assert response.status_code == 200
    assert len(seen) == 4
    assert len(pauses) == 3
    for attempt, pause in enumerate(pauses, start=1):  # full jitter: anywhere below base x 2^(n-1)
        assert 0 <= pause <= 0.5 * 2 ** (attempt - 1)


def test_5xx_that_never_ends_raises_hub_unavailable_after_the_retries(pauses) -> None:
    handler, seen = scripted(httpx.Response(502))

    with pytest.raises(HubUnavailable, match="HTTP 502 \\(4 attempts in a row\\)"):
        client(handler, retries=3).send("GET", URL, what="config")

    assert len(seen) == 4
    assert len(pauses) == 3


def test_a_4xx_is_the_callers_to_interpret(pauses) -> None:
    handler, seen = scripted(httpx.Response(404, headers={"X-Error-Code": "EntryNotFound"}))

    assert client(handler).send("GET", URL, what="config").status_code == 404
    assert len(seen) == 1
    assert pauses == []


def test_an_exhausted_wait_budget_raises_hub_rate_limited(pauses) -> None:
    handler, seen = scripted(httpx.Response(429, headers={"RateLimit": '"resolvers";r=0;t=30'}))

    with pytest.raises(HubRateLimited, match=r"after 90 s of waiting.*budget 100 s"):
        client(handler, budget=100).send("GET", URL, what="config")

    assert pauses == [pytest.approx(30, abs=0.05)] * 3  # 30 + 30 + 30 fits in 100 s, a fourth wait does not
    assert len(seen) == 4


def test_a_budget_of_zero_raises_at_the_first_429(pauses) -> None:
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "1"}))

    with pytest.raises(HubRateLimited):
        client(handler, budget=0).send("GET", URL, what="config")

    assert (len(seen), pauses) == (1, [])


def test_concurrent_requests_share_one_pause_and_one_probe_goes_first(pauses) -> None:
    """Four workers rate-limited together pause once (not four times, not four budgets), and after the reset one
    request probes the Hub alone before the others follow."""
    workers = 4
    together = threading.Barrier(workers)
    lock = threading.Lock()
    counts = {"seen": 0, "in_flight": 0}
    alone_after_pause: list[bool] = []

    def handle(request: httpx.Request) -> httpx.Response:
        with lock:
            counts["seen"] += 1
            number = counts["seen"]
            counts["in_flight"] += 1
        try:
            if number <= workers:
                together.wait(timeout=10)  # all four are answered 429 in the same window
                return httpx.Response(429, headers=RATE_LIMITED)
            if number == workers + 1:  # the probe: give a stampede time to show up
                time.sleep(0.2)
                with lock:
                    alone_after_pause.append(counts["in_flight"] == 1)
            return ok()
        finally:
            with lock:
                counts["in_flight"] -= 1

    http = client(handle)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(http.send("GET", URL, what="range").status_code))
        for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [200] * workers
    assert pauses == [pytest.approx(7, abs=0.05)]  # one pause for the whole task
    assert http.gate.waited_seconds == pytest.approx(7, abs=0.05)
    assert alone_after_pause == [True]
    assert counts["seen"] == 2 * workers


def test_a_probe_answered_429_again_pauses_everyone_again(pauses) -> None:
    handler, seen = scripted(
        httpx.Response(429, headers={"RateLimit": '"api";r=0;t=2'}),
        httpx.Response(429, headers={"RateLimit": '"api";r=0;t=3'}),
        ok(),
    )

    client(handler).send("GET", URL, what="listing")

    assert pauses == [pytest.approx(2, abs=0.05), pytest.approx(3, abs=0.05)]
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("seconds_left", "reserve", "share", "budget"),
    [(300.0, 60.0, 0.5, 120.0), (900.0, 10.0, 0.25, 222.5), (30.0, 60.0, 0.5, 0.0), (None, 60.0, 0.5, 120.0)],
)
def test_the_wait_budget_follows_the_time_left(seconds_left, reserve, share, budget) -> None:
    assert wait_budget_for(seconds_left, reserve_seconds=reserve, share=share) == pytest.approx(budget)


def test_the_token_never_shows(pauses) -> None:
    from modelferry.adapters.hub import HubClient

    hub = HubClient("https://hub.test", "hf_secret_token_value")
    assert "hf_secret_token_value" not in repr(hub)
    assert hub.auth_headers == {"authorization": "Bearer hf_secret_token_value"}
