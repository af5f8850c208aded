"""Switchable S3 faults for the local rig (dev/test only, never deployed).

The handlers run in the rig's Lambda workers and reach moto's S3 over HTTP, through the rig's moto server. Inside
`s3_faults(rig)` a request filter on that server answers a request matching an armed fault with the error S3 would
give (503 SlowDown, 500 InternalError, 403 AccessDenied) *instead of* passing it to moto, so nothing is stored for
it, and the worker's botocore retry logic sees it exactly as it would see S3's answer. botocore's back-off between
retries is recorded instead of slept (a worker setup step, tests/support/worker_steps.py).

A `kill` fault models a copy Lambda that dies mid-file (timeout, out of memory): the worker that sent the matching
request is killed (SIGKILL) at once, and the invocation fails as `Lambda.Unknown`, the error Step Functions reports
for a function killed that way. A dead process sends nothing more: its upload stays open (and any request of that
upload still in flight is refused without reaching S3).

    with LocalRig(...) as rig, s3_faults(rig) as faults:
        faults.add("slow_down", operations=("UploadPart",), times=3)
        report = rig.run({...})
        assert faults.answered[:3] == [("UploadPart", ..., 503, "SlowDown")] * 3

The operation is named from the request (method, query, headers) as S3's REST API defines each one.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, NamedTuple

from modelferry_cli.local.aws_server import Answer, SeenRequest
from tests.support.worker_steps import record_botocore_backoff_of

if TYPE_CHECKING:
    from modelferry_cli.local.rig import LocalRig

S3FaultKind = Literal["slow_down", "internal_error", "access_denied", "kill"]

# (HTTP status, S3 error code, message) of each error answer, as S3 words them.
_ANSWERS: dict[str, tuple[int, str, str]] = {
    "slow_down": (503, "SlowDown", "Please reduce your request rate."),
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "access_denied": (403, "AccessDenied", "Access Denied"),
}


# What the killed invocation reports: Lambda reports an unhandled runtime failure (timeout, out of memory) to Step
# Functions as `Lambda.Unknown` (Step Functions developer guide, "Handling errors in Lambda" best practice).
KILLED = "Lambda.Unknown"


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

    def _intercept(self, request: SeenRequest, rig: LocalRig) -> Answer | None:
        """The answer to this request, None to let moto answer it; a kill fault kills the worker that sent it."""
        if request.service != "s3":
            return None
        operation = _s3_operation(request)
        key = _object_key(request.host, request.path)
        upload_id = request.first("uploadId")
        part = request.first("partNumber")
        with self._lock:
            if upload_id is not None and upload_id in self.killed_uploads:
                self.answered.append(Answered(operation, key, 0, KILLED))
                return _error_answer(500, "InternalError", "sent by a killed function: never reached S3")
            fault = self._take(operation, key, int(part) if part else None)
            if fault is None:
                return None
            if fault.kind == "kill":
                if upload_id is not None:
                    self.killed_uploads.add(upload_id)
                self.answered.append(Answered(operation, key, 0, KILLED))
            else:
                status, code, message = _ANSWERS[fault.kind]
                self.answered.append(Answered(operation, key, status, code))
        if fault.kind == "kill":
            message = f"the copy function was killed during {operation} of {key}"
            if request.access_key:
                rig.kill_worker(request.access_key, KILLED, message)
            return _error_answer(500, "InternalError", message)  # nobody is left to read it
        return _error_answer(status, code, message)

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
    key = path.lstrip("/")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if host.startswith(("s3.", "s3-")) or host in {"127.0.0.1", "localhost"}:
        key = key.partition("/")[2]  # path-style: the first segment is the bucket
    return key


# (method, what the request names, its query marker) -> the S3 API operation (the Amazon S3 API reference's request
# syntax of each); "upload" is a request of one multipart upload (an uploadId in its query).
_OPERATIONS = {
    ("PUT", "upload", False): "UploadPart",
    ("PUT", "upload", True): "UploadPartCopy",
    ("POST", "upload", False): "CompleteMultipartUpload",
    ("DELETE", "upload", False): "AbortMultipartUpload",
    ("GET", "upload", False): "ListParts",
    ("POST", "uploads", False): "CreateMultipartUpload",
    ("PUT", "object", False): "PutObject",
    ("PUT", "object", True): "CopyObject",
    ("GET", "object", False): "GetObject",
    ("HEAD", "object", False): "HeadObject",
    ("DELETE", "object", False): "DeleteObject",
    ("POST", "delete", False): "DeleteObjects",
    ("GET", "bucket", False): "ListObjects",
    ("HEAD", "bucket", False): "HeadBucket",
}


def _s3_operation(request: SeenRequest) -> str:
    query = request.query
    if "uploadId" in query:
        names = "upload"
    elif "uploads" in query or "delete" in query:
        names = "uploads" if "uploads" in query else "delete"
    else:
        names = "object" if _object_key(request.host, request.path) else "bucket"
    operation = _OPERATIONS.get((request.method, names, request.copy_source), f"{request.method} {request.path}")
    return "ListObjectsV2" if operation == "ListObjects" and query.get("list-type") == ["2"] else operation


def _error_answer(status: int, code: str, message: str) -> Answer:
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    return Answer(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body)


@contextmanager
def s3_faults(rig: LocalRig) -> Iterator[S3Faults]:
    """Arm S3 faults for the requests the rig's workers send inside the block."""
    faults = S3Faults()
    remove = rig.add_request_filter(lambda request: faults._intercept(request, rig))
    record_botocore_backoff_of(rig, faults.backoff_delays)
    try:
        yield faults
    finally:
        remove()
