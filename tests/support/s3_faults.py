"""Switchable S3 faults for the local rig (dev/test only, never deployed).

Every in-process AWS call under moto's `mock_aws` passes through moto's botocore stubber (a `before-send` handler).
Inside `s3_faults()` that stubber is wrapped: a call matching an armed fault gets the error answer S3 would give
(503 SlowDown, 500 InternalError, 403 AccessDenied) *instead of* reaching moto, so nothing is stored for it, and
botocore's own retry logic sees it exactly as it would see S3's answer. botocore's back-off between retries is
recorded instead of slept.

A `kill` fault models a copy Lambda that dies mid-file (timeout, out of memory): the matching call raises
`LambdaKilled` (whose class name is `Lambda.Unknown`, the error Step Functions reports for a killed function), and
from then on every request for that multipart upload (the parts still in flight, the AbortMultipartUpload of the
handler's clean-up) fails the same way without reaching S3: a dead process sends nothing, so its upload stays open.

    with LocalRig(...) as rig, s3_faults() as faults:
        faults.add("slow_down", operations=("UploadPart",), times=3)
        report = rig.run({...})
        assert faults.answered[:3] == [("UploadPart", ..., 503, "SlowDown")] * 3

Only calls made in this process are covered: the local Fargate copy task reaches moto through a moto server.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

S3FaultKind = Literal["slow_down", "internal_error", "access_denied", "kill"]

# (HTTP status, S3 error code, message) of each error answer, as S3 words them.
_ANSWERS: dict[str, tuple[int, str, str]] = {
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
}


class LambdaKilled(Exception):
    """The copy function was killed mid-file. Lambda reports an unhandled runtime failure (timeout, out of memory)
    to Step Functions as `Lambda.Unknown`; the local rig reports an exception by its class name, hence the rename."""


LambdaKilled.__name__ = LambdaKilled.__qualname__ = "Lambda.Unknown"


@dataclass
class S3Fault:
    """One armed fault: applies to matching calls after the first `after` of them, `times` times (None: forever)."""

    kind: S3FaultKind
    operations: frozenset[str]
    key_glob: str
    part_number: int | None
    after: int
    remaining: int | None
    seen: int = 0
    hits: int = 0


class Answered(NamedTuple):
    operation: str
    key: str
    status: int  # 0 for a kill: no answer at all
    code: str


@dataclass
class S3Faults:
    """The armed faults and a record of what they did (thread-safe: copy parts upload from worker threads)."""

    answered: list[Answered] = field(default_factory=list)
    backoff_delays: list[float] = field(default_factory=list)  # what botocore would have slept between retries
    killed_uploads: set[str] = field(default_factory=set)
    _armed: list[S3Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        kind: S3FaultKind,
        *,
        operations: Iterable[str] = ("UploadPart",),
        key_glob: str = "*",
        part_number: int | None = None,
        after: int = 0,
        times: int | None = 1,
    ) -> S3Fault:
        """Arm a fault for S3 calls named in `operations` (UploadPart, PutObject, CreateMultipartUpload, ...) whose
        key matches `key_glob` (and whose part number is `part_number`, if given)."""
        if kind not in (*_ANSWERS, "kill"):
            raise ValueError(f"unknown S3 fault {kind!r}: expected one of {[*_ANSWERS, 'kill']}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for every call), got {times}")
        fault = S3Fault(kind, frozenset(operations), key_glob, part_number, after, times)
        with self._lock:
            self._armed.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def codes(self, operation: str | None = None) -> list[str]:
        with self._lock:
            return [a.code for a in self.answered if operation is None or a.operation == operation]

    # --- the hook ---------------------------------------------------------------------------------------------------

    def _intercept(self, event_name: str, request: Any) -> Any:
        """An AWSResponse answering this call, None to let moto answer it; raises LambdaKilled for a dead caller."""
        service, _, operation = event_name.removeprefix("before-send.").partition(".")
        if service != "s3":
            return None
        url = urlsplit(request.url)
        query = parse_qs(url.query)
        key = _object_key(url.hostname or "", url.path)
        upload_id = query.get("uploadId", [None])[0]
        part = query.get("partNumber", [None])[0]
        with self._lock:
            if upload_id is not None and upload_id in self.killed_uploads:
                self.answered.append(Answered(operation, key, 0, "Lambda.Unknown"))
                raise LambdaKilled(f"{operation} of s3://…/{key} after the function was killed: never sent")
            fault = self._take(operation, key, int(part) if part else None)
            if fault is None:
                return None
            if fault.kind == "kill":
                if upload_id is not None:
                    self.killed_uploads.add(upload_id)
                self.answered.append(Answered(operation, key, 0, "Lambda.Unknown"))
                raise LambdaKilled(f"the copy function was killed during {operation} of {key}")
            status, code, message = _ANSWERS[fault.kind]
            self.answered.append(Answered(operation, key, status, code))
        return _error_response(request.url, status, code, message)

    def _take(self, operation: str, key: str, part: int | None) -> S3Fault | None:
        for fault in self._armed:
            if (
                operation in fault.operations
                and fnmatch.fnmatchcase(key, fault.key_glob)
                and (fault.part_number is None or fault.part_number == part)
            ):
                fault.seen += 1
                if fault.seen <= fault.after:
                    continue
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._armed.remove(fault)
                return fault
        return None


def _object_key(host: str, path: str) -> str:
    """The object key of an S3 request URL, virtual-hosted (bucket.s3.amazonaws.com/key) or path-style."""
    key = unquote(path).lstrip("/")
    if host.startswith(("s3.", "s3-")) or host in {"127.0.0.1", "localhost"}:
        key = key.partition("/")[2]  # path-style: the first segment is the bucket
    return key


class _RawBody:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _error_response(url: str, status: int, code: str, message: str) -> Any:
    from botocore.awsrequest import AWSResponse

    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return AWSResponse(url, status, {"Content-Type": "application/xml"}, _RawBody(body))


@contextmanager
def s3_faults() -> Iterator[S3Faults]:
    """Arm S3 faults for the calls made inside the block (enter it inside `mock_aws` / a LocalRig)."""
    from botocore.retries.standard import ExponentialBackoff
    from moto.core.botocore_stubber import BotocoreStubber

    faults = S3Faults()
    moto_answer = BotocoreStubber.__call__
    botocore_delay = ExponentialBackoff.delay_amount

    def answer(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if self.enabled:
            response = faults._intercept(event_name, request)
            if response is not None:
                return response
        return moto_answer(self, event_name, request, **kwargs)

    def recorded_delay(self: Any, context: Any) -> float:
        delay = float(botocore_delay(self, context))
        with faults._lock:
            faults.backoff_delays.append(delay)
        return 0.0

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(BotocoreStubber, "__call__", answer))
        stack.enter_context(mock.patch.object(ExponentialBackoff, "delay_amount", recorded_delay))
        yield faults
