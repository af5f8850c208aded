"""Reading one file from the Hub for a copy, in byte ranges that survive what the Hub and its CDN do.

The commit-pinned resolve URL is asked once (HEAD, no redirect following): LFS files answer with a redirect to a
signed CDN URL and with the published sha256 and size, which must still be the planned ones. Ranges are then read
from the CDN URL, several at a time from worker threads sharing one connection pool. A read that breaks (reset,
short body, 5xx) resumes from the byte where it broke; a 429 pauses every reader of the file until the Hub's reset,
within a wait budget; a CDN URL that stops working (expired signature: 403) is resolved again.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
from huggingface_hub.errors import EntryNotFoundError
from huggingface_hub.utils import hf_raise_for_status

from modelferry.adapters.hub import HubClient, hub_errors
from modelferry.errors import HubRateLimited, SizeMismatch, SourceChanged, TransferInterrupted

logger = logging.getLogger(__name__)

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_RATELIMIT_RESET = re.compile(r"\bt=(\d+)")
_CDN_REFUSALS = {401, 403, 404, 410}


class _Throttle:
    """One pause shared by every reader of a file: after a 429 nobody asks again before the Hub's reset.

    The budget counts wall time spent paused, not the sum of each thread's waits.
    """

    def __init__(self, budget_seconds: float) -> None:
        self._budget = budget_seconds
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._waited = 0.0

    def wait_turn(self) -> None:
        with self._lock:
            remaining = self._paused_until - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)

    def rate_limited(self, seconds: float, what: str) -> None:
        with self._lock:
            now = time.monotonic()
            until = now + seconds
            extension = until - max(now, self._paused_until)
            if extension <= 0:
                return
            if self._waited + extension > self._budget:
                raise HubRateLimited(
                    f"the Hub kept answering 429 for {what} after {self._waited:.0f} s of waiting in this task "
                    f"(asks for {seconds:.0f} s more): retry later"
                )
            self._waited += extension
            self._paused_until = until
        logger.warning("Hub rate limit on %s: pausing %.1f s", what, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """A request that fails without progress is tried `retries` more times, after waits doubling from
    `backoff_seconds` up to `max_backoff_seconds`."""

    retries: int
    backoff_seconds: float
    max_backoff_seconds: float


class _Failures:
    """Consecutive failures of one request without progress, with exponential backoff between attempts."""

    def __init__(self, what: str, policy: RetryPolicy) -> None:
        self._what = what
        self._policy = policy
        self.count = 0

    def record(self, reason: str) -> None:
        """Sleep before the next attempt, or raise TransferInterrupted when the retries are spent."""
        self.count += 1
        if self.count > self._policy.retries:
            raise TransferInterrupted(f"{self._what}: {reason} ({self.count} attempts in a row)")
        delay = min(self._policy.max_backoff_seconds, self._policy.backoff_seconds * 2 ** (self.count - 1))
        logger.warning("%s: %s; retrying in %.2f s (attempt %d)", self._what, reason, delay, self.count + 1)
        time.sleep(delay)


class HubFileReader:
    """Ranged reads of one file at one commit. Thread-safe: one instance serves all the workers of a copy."""

    def __init__(
        self,
        hub: HubClient,
        *,
        repo_id: str,
        commit: str,
        path: str,
        size: int,
        sha256: str | None,
        connections: int,
        retry: RetryPolicy,
        rate_limit_budget_seconds: float,
        timeout_seconds: float,
    ) -> None:
        self._hub = hub
        self._repo_id = repo_id
        self._commit = commit
        self._path = path
        self._size = size
        self._sha256 = sha256
        self._retry = retry
        self._throttle = _Throttle(rate_limit_budget_seconds)
        self._client = httpx.Client(
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            # identity: a compressed range cannot be written at its offset
            headers={"accept-encoding": "identity"},
            follow_redirects=True,
        )
        self._resolve_url = hub.file_url(repo_id, commit, path)
        self._lock = threading.Lock()  # guards the data URL
        self._resolve_lock = threading.Lock()
        self._data_url = ""
        self._data_headers: dict[str, str] = {}
        self._generation = 0

    def __enter__(self) -> HubFileReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    @property
    def label(self) -> str:
        return f"{self._repo_id}@{self._commit[:12]}/{self._path}"

    def resolve(self) -> None:
        """Ask the resolve URL where the bytes are, and check that they are still the planned ones."""
        failures = _Failures(f"resolving {self.label}", self._retry)
        while True:
            self._throttle.wait_turn()
            try:
                response = self._client.head(self._resolve_url, headers=self._hub.auth_headers, follow_redirects=False)
            except httpx.TransportError as exc:
                failures.record(repr(exc))
                continue
            if response.status_code == 429:
                self._throttle.rate_limited(_retry_after(response, self._retry.backoff_seconds), self.label)
                continue
            if response.status_code >= 500:
                failures.record(f"HTTP {response.status_code}")
                continue
            break
        if response.status_code >= 400:
            _raise_hub_error(response, self._repo_id, self._commit, self.label)
        self._check_published(response)
        with self._lock:
            if response.is_redirect:
                self._data_url = urljoin(self._resolve_url, response.headers["location"])
                same_host = urlsplit(self._data_url).netloc == urlsplit(self._resolve_url).netloc
                # the CDN URL is signed; the token is for the Hub only
                self._data_headers = self._hub.auth_headers if same_host else {}
            else:
                self._data_url, self._data_headers = self._resolve_url, self._hub.auth_headers
            self._generation += 1

    def read_into(self, buffer: memoryview, start: int) -> None:
        """Fill `buffer` with the file's bytes from offset `start`, resuming from where a broken read stopped."""
        failures = _Failures(f"reading {self.label} bytes {start}-{start + len(buffer) - 1}", self._retry)
        filled = 0
        while filled < len(buffer):
            self._throttle.wait_turn()
            before = filled
            filled, problem = self._attempt(buffer, start, filled)
            if problem is None:
                continue
            if filled > before:  # progress: the next attempt resumes at the break with fresh retries
                failures.count = 0
            failures.record(f"{problem} at byte {start + filled}")

    def _attempt(self, buffer: memoryview, start: int, filled: int) -> tuple[int, str | None]:
        """One GET of the rest of the range. Returns the new fill and, if the read broke, why."""
        with self._lock:
            url, headers, generation = self._data_url, self._data_headers, self._generation
        offset = start + filled
        byte_range = f"bytes={offset}-{start + len(buffer) - 1}"
        try:
            with self._client.stream("GET", url, headers={**headers, "range": byte_range}) as response:
                if response.status_code == 429:
                    self._throttle.rate_limited(_retry_after(response, self._retry.backoff_seconds), self.label)
                    return filled, None
                if response.status_code in _CDN_REFUSALS and url != self._resolve_url:
                    self._resolve_again(generation)
                    return filled, f"the CDN refused its signed URL (HTTP {response.status_code}), resolved again"
                problem = self._range_problem(response, offset)
                return (filled, problem) if problem else _fill(response, buffer, filled)
        except httpx.TransportError as exc:
            return filled, repr(exc)

    def _range_problem(self, response: httpx.Response, offset: int) -> str | None:
        """None when the response carries the file from `offset`; else why not (or raise when it never will)."""
        status = response.status_code
        if status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", ""))
            if match is None or int(match[1]) != offset:
                return f"a 206 with Content-Range {response.headers.get('content-range')!r}"
            if match[3] != "*" and int(match[3]) != self._size:
                raise SizeMismatch(f"{self.label} is {match[3]} bytes on the Hub, planned {self._size}")
            return None
        if status == 200:
            length = response.headers.get("content-length")
            if length and int(length) != self._size:
                raise SizeMismatch(f"{self.label} is {length} bytes on the Hub, planned {self._size}")
            # Range ignored: the body starts at byte 0, usable only when that is where this read starts
            return None if offset == 0 else "a 200 to a Range request (the server ignored Range)"
        if status == 416:
            raise SizeMismatch(f"{self.label} is shorter than the planned {self._size} bytes (HTTP 416 at {offset})")
        if status < 500:  # any other refusal will not go away by asking again
            response.read()
            _raise_hub_error(response, self._repo_id, self._commit, self.label)
        return f"HTTP {status}"

    def _resolve_again(self, seen_generation: int) -> None:
        """Re-resolve once per expired URL, however many workers noticed it."""
        with self._resolve_lock:
            if self._generation == seen_generation:
                self.resolve()

    def _check_published(self, response: httpx.Response) -> None:
        served_commit = response.headers.get("x-repo-commit")
        if served_commit and served_commit != self._commit:
            raise SourceChanged(f"{self.label}: the Hub serves commit {served_commit} for the pinned commit")
        linked_etag = response.headers.get("x-linked-etag", "").removeprefix("W/").strip('"')
        if self._sha256 and linked_etag and linked_etag != self._sha256:
            raise SourceChanged(f"{self.label}: the Hub now publishes sha256 {linked_etag}, planned {self._sha256}")
        linked_size = response.headers.get("x-linked-size")
        if linked_size and int(linked_size) != self._size:
            raise SourceChanged(f"{self.label}: the Hub now publishes {linked_size} bytes, planned {self._size}")


def _fill(response: httpx.Response, buffer: memoryview, filled: int) -> tuple[int, str | None]:
    """Copy the body into `buffer` from `filled` on. Returns the new fill and, if the body broke off, why."""
    try:
        for chunk in response.iter_raw():
            take = min(len(chunk), len(buffer) - filled)
            buffer[filled : filled + take] = chunk[:take]
            filled += take
            if filled == len(buffer):
                return filled, None
    except httpx.TransportError as exc:
        return filled, repr(exc)
    return filled, "the body ended early"


def _raise_hub_error(response: httpx.Response, repo_id: str, commit: str, label: str) -> NoReturn:
    with hub_errors(repo_id, commit):
        try:
            hf_raise_for_status(response)
        except EntryNotFoundError as exc:
            raise SourceChanged(f"{label} no longer exists at the pinned commit") from exc
    raise TransferInterrupted(f"{label}: unexpected HTTP {response.status_code}")


def _retry_after(response: httpx.Response, default: float) -> float:
    """Seconds until the Hub's rate-limit window resets: `RateLimit: ...;t=N`, else `Retry-After`, else `default`."""
    reset = _RATELIMIT_RESET.search(response.headers.get("ratelimit", ""))
    if reset:
        return float(reset[1])
    retry_after = response.headers.get("retry-after", "").strip()
    if retry_after.isdigit():
        return float(retry_after)
    if retry_after:
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
        except (TypeError, ValueError):
            pass
    return default
