"""Reading one file from the Hub for a copy, in byte ranges that survive what the Hub and its CDN do.

The commit-pinned resolve URL is asked once (HEAD, no redirect following): LFS files answer with a redirect to a
signed CDN URL and with the published sha256 and size, which must still be the planned ones. Ranges are then read
from the CDN URL, several at a time from worker threads sharing the task's one Hub client. A read that breaks
(reset, short body) resumes from the byte where it broke; 429s, 5xx and refused connections are the Hub client's
(a 429 pauses every request of the task until the Hub's reset, within the task's wait budget); a CDN URL that
stops working (expired signature: 403 or 410) is resolved again. Every read is a ranged GET: the Hub's Xet bridge
answers 400 to an unranged GET of a very large file.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
from typing import NoReturn
from urllib.parse import urljoin, urlsplit

import httpx
from huggingface_hub.errors import EntryNotFoundError
from huggingface_hub.utils import hf_raise_for_status

from modelferry.adapters import hub_http
from modelferry.adapters.hub import CDN_EXPIRED, HubClient, hub_errors
from modelferry.adapters.hub_http import RetryPolicy
from modelferry.adapters.raw_http import RawResponse
from modelferry.errors import SizeMismatch, SourceChanged, TransferInterrupted

logger = logging.getLogger(__name__)

# One readinto call's size: a reset mid-call loses the call's progress count (its bytes are in the buffer but not
# reported), so the read resumes at most this far before the break. Per call overhead is a few microseconds.
READ_BLOCK_BYTES = 64 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Failures:
    """Consecutive failures of one read without progress, with the Hub policy's back-off between attempts."""

    def __init__(self, what: str, policy: RetryPolicy) -> None:
        self._what = what
        self._policy = policy
        self.count = 0

    def record(self, reason: str) -> None:
        """Pause before the next attempt, or raise TransferInterrupted when the retries are spent."""
        self.count += 1
        if self.count > self._policy.retries:
            raise TransferInterrupted(f"{self._what}: {reason} ({self.count} attempts in a row)")
        delay = self._policy.delay(self.count)
        logger.warning("%s: %s; retrying in %.2f s (attempt %d)", self._what, reason, delay, self.count + 1)
        hub_http.clock.sleep(delay)


class HubFileReader:
    """Ranged reads of one file at one commit. Thread-safe: one instance serves all the workers of a copy.

    Every request goes through the task's `HubClient` policy (429 pauses shared by all workers, 5xx and connection
    retries, the wait budget); this reader adds what is particular to copying a file: the resolve redirect, resuming
    a body that broke off, and resolving again when the CDN refuses its expired URL.
    """

    def __init__(self, hub: HubClient, *, repo_id: str, commit: str, path: str, size: int, sha256: str | None) -> None:
        self._hub = hub
        self._http = hub.http
        self._repo_id = repo_id
        self._commit = commit
        self._path = path
        self._size = size
        self._sha256 = sha256
        self._resolve_url = hub.file_url(repo_id, commit, path)
        self._lock = threading.Lock()  # guards the data URL
        self._resolve_lock = threading.Lock()
        self._data_url = ""
        self._data_headers: dict[str, str] = {}
        self._generation = 0
        self.xet_hash: str | None = None
        self.resolves = 0

    def __enter__(self) -> HubFileReader:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    @property
    def label(self) -> str:
        return f"{self._repo_id}@{self._commit[:12]}/{self._path}"

    def resolve(self) -> None:
        """Ask the resolve URL where the bytes are, and check that they are still the planned ones.

        An LFS file (Xet-backed or not) answers with a redirect to a signed CDN URL; every range worker reads that
        one URL until the CDN refuses it. A Xet-backed file's redirect carries `X-Xet-Hash`: its bytes are read the
        same way, by ranged GETs on the bridge URL, and verified by the same sha256.
        """
        response = self._http.send(
            "HEAD",
            self._resolve_url,
            headers=self._hub.auth_headers,
            what=f"resolving {self.label}",
            follow_redirects=False,
        )
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
            self.xet_hash = response.headers.get("x-xet-hash") or None
            self._generation += 1
            self.resolves += 1

    def read_into(self, buffer: memoryview, start: int) -> None:
        """Fill `buffer` with the file's bytes from offset `start`, resuming from where a broken read stopped."""
        failures = _Failures(f"reading {self.label} bytes {start}-{start + len(buffer) - 1}", self._http.retry)
        filled = 0
        while filled < len(buffer):
            before = filled
            filled, problem = self._attempt(buffer, start, filled)
            if problem is None:
                continue
            if filled > before:  # progress: the next attempt resumes at the break with fresh retries
                failures.count = 0
            failures.record(f"{problem} at byte {start + filled}")

    def _attempt(self, buffer: memoryview, start: int, filled: int) -> tuple[int, str | None]:
        """One ranged GET of the rest of the range. Returns the new fill and, if the read broke, why."""
        with self._lock:
            url, headers, generation = self._data_url, self._data_headers, self._generation
        offset = start + filled
        byte_range = f"bytes={offset}-{start + len(buffer) - 1}"
        response = self._http.get_raw(url, headers={**headers, "range": byte_range}, what=f"reading {self.label}")
        try:
            if response.status_code in CDN_EXPIRED and url != self._resolve_url:
                self._resolve_again(generation)
                return filled, f"the CDN refused its signed URL (HTTP {response.status_code}), resolved again"
            problem = self._range_problem(response, offset)
            return (filled, problem) if problem else _fill(response, buffer, filled)
        finally:
            response.close()

    def _range_problem(self, response: RawResponse, offset: int) -> str | None:  # noqa: RET503 - raises last
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
        # any other refusal will not go away by asking again
        refusal = httpx.Response(
            status, headers=response.headers, content=response.read(), request=httpx.Request("GET", response.url)
        )
        _raise_hub_error(refusal, self._repo_id, self._commit, self.label)

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


def _fill(response: RawResponse, buffer: memoryview, filled: int) -> tuple[int, str | None]:
    """Read the body straight into `buffer` from `filled` on (no intermediate chunks). Returns the new fill and, if
    the body broke off, why. A body longer than the range asked for (a 200 to a read from byte 0) is cut off."""
    try:
        while filled < len(buffer):
            received = response.readinto(buffer[filled : filled + READ_BLOCK_BYTES])
            if not received:
                return filled, "the body ended early"
            filled += received
    except (OSError, http.client.HTTPException) as exc:
        return filled, repr(exc)
    return filled, None


def _raise_hub_error(response: httpx.Response, repo_id: str, commit: str, label: str) -> NoReturn:
    with hub_errors(repo_id, commit):
        try:
            hf_raise_for_status(response)
        except EntryNotFoundError as exc:
            raise SourceChanged(f"{label} no longer exists at the pinned commit") from exc
    raise TransferInterrupted(f"{label}: unexpected HTTP {response.status_code}")
