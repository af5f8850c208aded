"""One request policy for every Hub request of a task: wait out 429s, retry 5xx and broken connections.

The Hub may answer any request with 429 under load, not only bursts (its `RateLimit` header,
`"resolvers";r=0;t=SECONDS`, says when the window resets; huggingface_hub's `parse_ratelimit_headers` reads it).
One task (a Plan, one file's copy) makes all its requests through one `HubHttp`, whose `HubGate`:

- pauses every request of the task until the reset after a 429 (`RateLimit` `t=`, else `Retry-After`), so
  concurrent range workers do not each wait and retry on their own;
- lets one request through first after a pause (a probe): the others follow only once it got an answer that is not
  a 429, so a task does not stampede the Hub at the reset;
- counts the time paused against the task's wait budget: only an exhausted budget raises `HubRateLimited`, for the
  state machine to retry the task later.

5xx answers and broken connections are retried with exponential back-off and full jitter ("Exponential Backoff And
Jitter", AWS Architecture Blog), then raise `HubUnavailable`. huggingface_hub's own `http_backoff`
(`huggingface_hub/utils/_http.py`, 1.33.0) waits per request, without a shared pause or a budget, and sleeps `t + 1`
s per 429 up to 5 times: it cannot keep a task inside its Lambda timeout, hence this policy around the same header
parsing (`parse_ratelimit_headers`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol, TypeVar

import httpx
from huggingface_hub.utils import parse_ratelimit_headers

from modelferry.adapters.raw_http import RawConnections, RawResponse
from modelferry.errors import HubRateLimited, HubUnavailable

logger = logging.getLogger(__name__)

# 408 and 5xx: the request may well succeed when asked again (huggingface_hub's http_backoff retries the same set).
RETRIED_STATUSES = frozenset({408, 500, 502, 503, 504})
# Default wait budget when the task's remaining time is unknown (tests, the CLI).
DEFAULT_WAIT_BUDGET_SECONDS = 120.0

# Jitter spreads retries; it needs no secrecy, but the OS source keeps security scanners (bandit B311) quiet
# without a suppression.
_JITTER = random.SystemRandom()


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# Module-level so that tests can record pauses instead of sleeping them (tests/support/clocks.py).
clock: Clock = SystemClock()


def wait_budget_for(seconds_left: float | None, *, reserve_seconds: float, share: float = 0.5) -> float:
    """The wait budget of a task that must end within `seconds_left` (a Lambda's remaining time): a `share` of
    what is left after `reserve_seconds` for the work itself; the default when the time left is unknown."""
    if seconds_left is None:
        return DEFAULT_WAIT_BUDGET_SECONDS
    return max(0.0, (seconds_left - reserve_seconds) * share)


@dataclass(frozen=True)
class RetryPolicy:
    """A request failing with a 5xx or a broken connection is tried `retries` more times, after waits drawn at
    random below `backoff_seconds` x 2^n, capped at `max_backoff_seconds`."""

    retries: int = 5
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 10.0

    def delay(self, attempt: int) -> float:
        """The pause before retry number `attempt` (1-based): full jitter."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return _JITTER.uniform(0, ceiling)


def retry_after_seconds(headers: Mapping[str, str], default: float) -> float:
    """Seconds until the Hub's rate-limit window resets: `RateLimit: "...";r=0;t=N`, else `Retry-After` (seconds
    or an HTTP date, RFC 9110 section 10.2.3), else `default`."""
    info = parse_ratelimit_headers(headers)
    if info is not None:
        return float(info.reset_in_seconds)
    retry_after = (headers.get("retry-after") or "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    if retry_after:
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return default


class HubGate:
    """The pause shared by every request of one task after a 429, within the task's wait budget.

    The budget counts the time the task is paused, not the sum of each thread's waits.
    """

    def __init__(self, budget_seconds: float) -> None:
        self.budget_seconds = budget_seconds
        self.waited_seconds = 0.0
        self._cond = threading.Condition()
        self._paused_until = 0.0
        self._sleeping = False  # one thread sleeps out the pause; the others wait for it
        self._recovering = False  # after a pause, one probe request goes first
        self._probe_out = False
        self._pauses = 0  # pauses imposed so far: a 429 to a request sent before the latest one is already waited

    @contextmanager
    def turn(self) -> Iterator[_Turn]:
        """Wait until this request may go; report its 429 (if any) through the yielded turn."""
        probe, sent_after = self._acquire()
        turn = _Turn(self, sent_after)
        try:
            yield turn
        finally:
            with self._cond:
                if probe:
                    self._probe_out = False
                    self._recovering = turn.rate_limited_for is not None
                self._cond.notify_all()

    def _acquire(self) -> tuple[bool, int]:
        with self._cond:
            while True:
                remaining = self._paused_until - clock.monotonic()
                if remaining > 0 and not self._sleeping:
                    self._sleeping = True
                    self._cond.release()
                    try:
                        clock.sleep(remaining)
                    finally:
                        self._cond.acquire()
                        self._sleeping = False
                        self._cond.notify_all()
                elif remaining > 0 or self._probe_out:
                    self._cond.wait()
                elif self._recovering:
                    self._probe_out = True
                    return True, self._pauses
                else:
                    return False, self._pauses

    def pause(self, seconds: float, what: str, sent_after: int) -> None:
        """Pause the task `seconds` from now (a 429's reset), or raise HubRateLimited past the budget.

        `sent_after`: the pauses imposed before the rate-limited request was sent. If another request's 429 has
        imposed one since, this 429 came from the window that pause is for: the request is simply sent again."""
        with self._cond:
            if sent_after != self._pauses:
                return
            now = clock.monotonic()
            until = now + seconds
            extension = until - max(now, self._paused_until)
            self._recovering = True
            # `t=` counts whole seconds: workers rate-limited in the same window report the same reset, give or
            # take the time between their answers, and must not each add that sliver to the pause
            if extension <= 0 or (self._paused_until > now and extension < 1.0):
                return
            if self.waited_seconds + extension > self.budget_seconds:
                raise HubRateLimited(
                    f"the Hub kept answering 429 for {what} after {self.waited_seconds:.0f} s of waiting in this task "
                    f"(asks for {seconds:.0f} s more, budget {self.budget_seconds:.0f} s): retry later"
                )
            self.waited_seconds += extension
            self._paused_until = until
            self._pauses += 1
        logger.warning("Hub rate limit on %s: pausing the task %.1f s", what, seconds)


class _Turn:
    def __init__(self, gate: HubGate, sent_after: int) -> None:
        self._gate = gate
        self._sent_after = sent_after
        self.rate_limited_for: float | None = None

    def rate_limited(self, headers: Mapping[str, str], what: str, default: float) -> None:
        self.rate_limited_for = retry_after_seconds(headers, default)
        self._gate.pause(self.rate_limited_for, what, self._sent_after)


class HubHttp:
    """The task's one HTTP client to the Hub and its CDN, with the gate and the retry policy around every request.

    `send` returns the first answer that is neither a 429 nor worth retrying (a 2xx, 3xx, or a 4xx the caller
    interprets). Thread-safe: the range workers of a copy share it.
    """

    def __init__(
        self,
        *,
        gate: HubGate,
        retry: RetryPolicy,
        timeout_seconds: float = 30.0,
        max_connections: int = 32,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.gate = gate
        self.retry = retry
        self.client = httpx.Client(
            transport=transport,
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            # identity: a compressed range cannot be written at its offset
            headers={"accept-encoding": "identity", "user-agent": "modelferry"},
        )
        self._raw = RawConnections(timeout_seconds)

    def close(self) -> None:
        self.client.close()
        self._raw.close_all()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        what: str,
        stream: bool = False,
        follow_redirects: bool = True,
    ) -> httpx.Response:
        """One request, waited and retried by the policy. A `stream` response must be closed by the caller."""

        def attempt() -> httpx.Response | str:
            request = self.client.build_request(method, url, headers=headers)
            try:
                return self.client.send(request, stream=stream, follow_redirects=follow_redirects)
            except httpx.TransportError as exc:
                return repr(exc)

        return self._with_policy(attempt, what)

    def get_raw(self, url: str, *, headers: Mapping[str, str], what: str) -> RawResponse:
        """A GET whose body the caller reads straight into its own buffers (`RawResponse.readinto`), waited and
        retried by the same policy. No redirects are followed: it reads the CDN URL a resolve gave. Must be closed."""
        return self._with_policy(lambda: self._raw.get(url, headers), what)

    def _with_policy(self, attempt: Callable[[], _AnswerT | str], what: str) -> _AnswerT:
        """Run `attempt` until it gives an answer that is neither a 429 nor worth retrying."""
        failures = 0
        while True:
            with self.gate.turn() as turn:
                outcome = attempt()
                if not isinstance(outcome, str):
                    if outcome.status_code == 429:
                        outcome.close()
                        turn.rate_limited(outcome.headers, what, default=self.retry.backoff_seconds)
                        continue
                    if outcome.status_code not in RETRIED_STATUSES:
                        return outcome
                    outcome.close()
                    outcome = f"HTTP {outcome.status_code}"
            failures += 1
            if failures > self.retry.retries:
                raise HubUnavailable(f"{what}: {outcome} ({failures} attempts in a row)")
            delay = self.retry.delay(failures)
            logger.warning("%s: %s; retrying in %.2f s (attempt %d)", what, outcome, delay, failures + 1)
            clock.sleep(delay)


class _Answer(Protocol):
    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def close(self) -> None: ...


_AnswerT = TypeVar("_AnswerT", bound=_Answer)
