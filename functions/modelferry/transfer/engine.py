"""Copy one Hub file into S3, streamed and verified: the engine behind the copy Lambda and the Fargate copy task.

Files below `single_put_max_bytes` are read whole (ranges in parallel), hashed, and stored with one PutObject that
carries ChecksumSHA256, so S3 itself checks what it stored. Larger files go through a multipart upload fed by
parallel range reads: each part is uploaded as soon as it is read, the hash takes the parts in file order whatever
order they arrive in, and the digest is compared before CompleteMultipartUpload. Any failure aborts the upload, so a
bad file never becomes visible and no multipart upload is left open. Memory is bounded by parts in flight x part size
whatever the file size; nothing touches the local disk.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from pydantic import BaseModel, ConfigDict, Field

from modelferry.adapters.aws import error_code, is_missing
from modelferry.adapters.hub import HubClient
from modelferry.contract import (
    META_BLOB_SHA1,
    META_SHA256,
    META_SOURCE_COMMIT,
    META_SOURCE_REPO,
    CopyResult,
    ManifestEntry,
)
from modelferry.errors import ChecksumMismatch, InvalidRequest, StorageAccessDenied, TransferInterrupted
from modelferry.transfer.hub_reader import HubFileReader

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

logger = logging.getLogger(__name__)

MiB = 1024 * 1024

Progress = Callable[[int, int], None]

MAX_PART_BYTES = 5 * 1024 * MiB  # S3's largest part


def every_tenth(report: Callable[[int, int, int], None]) -> Progress:
    """A Progress callback that calls `report(done, total, percent)` once per 10 % of the file: progress a person
    can watch, without a log line per part (2,560 of them for a 20 GiB file)."""
    reported = -1

    def progress(done: int, total: int) -> None:
        nonlocal reported
        tenth = done * 10 // max(total, 1)
        if tenth > reported:
            reported = tenth
            report(done, total, tenth * 10)

    return progress


_S3_DENIED = {"AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "AccountProblem"}
# What is still failing after botocore's own retries (the caller configures standard retry mode), or an upload
# aborted under our feet (the bucket's lifecycle rule): worth a retry of the whole copy by the state machine.
_S3_TRANSIENT = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "NoSuchUpload"}


class TransferOptions(BaseModel):
    """Tuning of one file copy. The defaults hold 128 MiB of part buffers (more for files over 78 GiB, whose parts
    are larger); they suit the copy Lambda (3008 MB) and the Fargate task alike.

    16 parts in flight, not 8: a buffer is held for its read from the Hub (8 MiB at the 40 MB/s one CDN connection
    gives take about 0.2 s) plus its upload, so the bytes in flight, not the connections, bound the throughput
    (docs/performance.md)."""

    model_config = ConfigDict(frozen=True)

    single_put_max_bytes: int = Field(
        default=64 * MiB, ge=0, le=5 * 1024 * MiB, description="Files below this size take one PutObject."
    )
    min_part_size: int = Field(
        default=8 * MiB, ge=1, description="Smallest multipart part; S3 refuses parts under 5 MiB (but the last)."
    )
    max_parts: int = Field(default=10_000, ge=1, le=10_000, description="S3's limit of parts per upload.")
    parts_in_flight: int = Field(
        default=16, ge=1, description="Parts being read or uploaded at once: the memory bound is this x part size."
    )
    reads_on_mismatch: int = Field(
        default=3, ge=1, description="Reads of a file whose bytes hash wrong (the first and two re-reads), then fail."
    )


def part_size_for(size: int, options: TransferOptions) -> int:
    """The smallest part size, from `min_part_size` up in whole MiB, that keeps the file within `max_parts`.

    S3 takes at most 10,000 parts of at most 5 GiB ("Amazon S3 multipart upload limits"): a file needing larger
    parts cannot be uploaded at all, and is refused before a byte is read."""
    needed = -(-size // options.max_parts)
    part_size = max(options.min_part_size, -(-needed // MiB) * MiB)
    if part_size > MAX_PART_BYTES:
        raise InvalidRequest(
            f"a file of {size} bytes needs parts of {part_size} bytes to fit in {options.max_parts} parts; "
            f"S3 takes parts of at most {MAX_PART_BYTES} bytes"
        )
    return part_size


def copy_file(
    entry: ManifestEntry,
    *,
    hub: HubClient,
    repo_id: str,
    commit: str,
    bucket: str,
    s3_client: S3Client,
    options: TransferOptions | None = None,
    on_progress: Progress | None = None,
) -> CopyResult:
    """Copy `entry` from the Hub at `commit` to `s3://bucket/entry.key`, verified; skip it when already there."""
    options = options or TransferOptions()
    started = time.monotonic()
    _Digest(entry)  # refuses an entry with nothing to verify it by, before any request
    part_size = part_size_for(entry.size, options)

    recorded = _verified_copy(s3_client, bucket, entry)
    if recorded is not None:
        logger.info("%s already in s3://%s/%s, verified: skipped", entry.path, bucket, entry.key)
        return CopyResult(
            path=entry.path,
            key=entry.key,
            size=entry.size,
            sha256=recorded.get(META_SHA256),
            skipped=True,
            bytes_copied=0,
            seconds=time.monotonic() - started,
            parts=0,
            part_size=part_size,
            peak_buffered_bytes=0,
        )

    reader = HubFileReader(hub, repo_id=repo_id, commit=commit, path=entry.path, size=entry.size, sha256=entry.sha256)
    with reader:
        reader.resolve()
        digest, copy, parts = _copy_verified(
            entry,
            reader,
            s3_client=s3_client,
            bucket=bucket,
            provenance={META_SOURCE_REPO: repo_id, META_SOURCE_COMMIT: commit},
            options=options,
            on_progress=on_progress,
        )

    seconds = time.monotonic() - started
    logger.info(
        "copied %s to s3://%s/%s: %d bytes in %d part(s), %.1f s, %.1f MiB/s",
        entry.path,
        bucket,
        entry.key,
        entry.size,
        parts,
        seconds,
        entry.size / MiB / max(seconds, 1e-6),
    )
    return CopyResult(
        path=entry.path,
        key=entry.key,
        size=entry.size,
        sha256=digest.sha256.hexdigest(),
        skipped=False,
        bytes_copied=entry.size,
        seconds=seconds,
        parts=parts,
        part_size=part_size,
        peak_buffered_bytes=copy.peak_buffered_bytes,
    )


def _copy_verified(
    entry: ManifestEntry,
    reader: HubFileReader,
    *,
    s3_client: S3Client,
    bucket: str,
    provenance: dict[str, str],
    options: TransferOptions,
    on_progress: Progress | None,
) -> tuple[_Digest, _FileCopy, int]:
    """Read, verify and store the file, reading it again when its bytes do not hash as published.

    A byte flipped on the way (a CDN edge, a proxy) does not come back on the next read; a file that hashes wrong
    `reads_on_mismatch` times in a row is what the Hub serves, and fails. Each failed read stored nothing: the
    single PutObject is sent only after the check, a multipart upload is aborted before the next read.
    """
    part_size = part_size_for(entry.size, options)
    for read in range(1, options.reads_on_mismatch + 1):
        digest = _Digest(entry)
        target = _Target(s3_client, bucket, entry.key, {**provenance, **digest.expected_metadata})
        copy = _FileCopy(
            reader, digest, target, size=entry.size, part_size=part_size, options=options, on_progress=on_progress
        )
        try:
            parts = copy.put_whole() if entry.size < options.single_put_max_bytes else copy.put_multipart()
        except ChecksumMismatch as exc:
            if read == options.reads_on_mismatch:
                raise ChecksumMismatch(
                    f"{exc} (the same mismatch in {read} reads of {entry.path}: not a transient corruption)"
                ) from exc
            logger.warning("%s; reading %s again (read %d of %d)", exc, entry.path, read + 1, options.reads_on_mismatch)
            continue
        return digest, copy, parts
    raise AssertionError("unreachable")  # pragma: no cover


class _Digest:
    """sha256 of the bytes, plus the git blob sha1 for a file git stores itself (not LFS), checked at the end."""

    def __init__(self, entry: ManifestEntry) -> None:
        if entry.sha256 is None and entry.blob_id is None:
            raise InvalidRequest(f"{entry.path}: the manifest entry has neither sha256 nor blob_id to verify it by")
        self._entry = entry
        self.sha256 = hashlib.sha256()
        self._blob_sha1 = None
        if entry.sha256 is None:
            self._blob_sha1 = hashlib.sha1(f"blob {entry.size}\0".encode(), usedforsecurity=False)

    @property
    def expected_metadata(self) -> dict[str, str]:
        if self._entry.sha256 is not None:
            return {META_SHA256: self._entry.sha256}
        return {META_BLOB_SHA1: str(self._entry.blob_id)}

    def update(self, data: memoryview) -> None:
        self.sha256.update(data)
        if self._blob_sha1 is not None:
            self._blob_sha1.update(data)

    def check(self) -> None:
        entry = self._entry
        if entry.sha256 is not None and self.sha256.hexdigest() != entry.sha256:
            raise ChecksumMismatch(
                f"{entry.path}: the bytes read hash to sha256 {self.sha256.hexdigest()}, the Hub published "
                f"{entry.sha256}; nothing was stored"
            )
        if self._blob_sha1 is not None and self._blob_sha1.hexdigest() != entry.blob_id:
            raise ChecksumMismatch(
                f"{entry.path}: the bytes read have git blob sha1 {self._blob_sha1.hexdigest()}, the Hub published "
                f"{entry.blob_id}; nothing was stored"
            )


class _Target:
    """The destination object: bucket, key and the metadata it is written with."""

    def __init__(self, s3: S3Client, bucket: str, key: str, metadata: dict[str, str]) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.metadata = metadata

    @contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Translate S3 failures into the named errors the state machine retries or reports."""
        where = f"{action} on s3://{self.bucket}/{self.key}"
        try:
            yield
        except ClientError as exc:
            code = error_code(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _S3_DENIED or status == 403:
                raise StorageAccessDenied(f"S3 refused {where}: {code}") from exc
            if code == "BadDigest":
                raise ChecksumMismatch(f"S3 found that the bytes sent for {where} do not match their sha256") from exc
            if code in _S3_TRANSIENT or status >= 500:
                raise TransferInterrupted(f"{where} still failed after retries: {code}") from exc
            raise
        except (ConnectionError, HTTPClientError) as exc:
            raise TransferInterrupted(f"{where} failed: {exc}") from exc


class _PartBuffers:
    """Up to `count` part buffers, made on first need and then reused, for the multipart path's single taker.

    Memory stays at count x part size whatever the file size. A fresh buffer per part made RSS grow with the file:
    glibc's malloc kept the freed parts in its per-thread arenas (measured: 150 MiB for 256 MiB, 250 MiB for 2 GiB).
    """

    def __init__(self, count: int, size: int) -> None:
        self._free: queue.SimpleQueue[io.BytesIO] = queue.SimpleQueue()
        self._count = count
        self._size = size
        self.made = 0

    @property
    def made_bytes(self) -> int:
        return self.made * self._size

    def take(self, *, block: bool) -> io.BytesIO | None:
        """A free buffer, a new one while fewer than `count` exist, else (if `block`) the next one given back."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            if self.made < self._count:
                self.made += 1
                return _zeroed_buffer(self._size)
        return self._free.get() if block else None

    def give(self, buffer: io.BytesIO) -> None:
        buffer.seek(0)
        self._free.put(buffer)


class _ProgressReporter:
    def __init__(self, total: int, callback: Progress | None) -> None:
        self._total = total
        self._callback = callback
        self._lock = threading.Lock()
        self._done = 0

    def add(self, size: int) -> None:
        with self._lock:  # one call at a time, so the callback sees bytes_done only grow
            self._done += size
            if self._callback is not None:
                self._callback(self._done, self._total)


def _verified_copy(s3: S3Client, bucket: str, entry: ManifestEntry) -> dict[str, str] | None:
    """The metadata of the object at entry.key if it is this file, already verified by an earlier copy."""
    target = _Target(s3, bucket, entry.key, {})
    try:
        with target.errors("HeadObject"):
            head = s3.head_object(Bucket=bucket, Key=entry.key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise
    metadata: dict[str, str] = head.get("Metadata", {})
    if head["ContentLength"] != entry.size:
        return None
    if entry.sha256 is not None:
        return metadata if metadata.get(META_SHA256) == entry.sha256 else None
    return metadata if metadata.get(META_BLOB_SHA1) == entry.blob_id else None


def _zeroed_buffer(size: int) -> io.BytesIO:
    """A BytesIO of `size` zero bytes, to be filled through getbuffer(): botocore takes it as a file, so the bytes
    are never copied (it refuses memoryviews, and bytes(bytearray) would double the memory)."""
    buffer = io.BytesIO()
    if size:
        buffer.seek(size - 1)
        buffer.write(b"\0")
        buffer.seek(0)
    return buffer


class _FileCopy:
    """The bytes of one file on their way: read from the Hub, hashed in order, stored in S3."""

    def __init__(
        self,
        reader: HubFileReader,
        digest: _Digest,
        target: _Target,
        *,
        size: int,
        part_size: int,
        options: TransferOptions,
        on_progress: Progress | None,
    ) -> None:
        self._reader = reader
        self._digest = digest
        self._target = target
        self._size = size
        self._part_size = part_size
        self._options = options
        self._reporter = _ProgressReporter(size, on_progress)
        self.peak_buffered_bytes = 0
        # a part takes a buffer before its read starts and gives it back when its upload ends
        self._buffers = _PartBuffers(options.parts_in_flight, part_size)
        self._upload_errors: list[BaseException] = []

    def put_whole(self) -> int:
        """Read the file whole (chunks in parallel), verify it, store it with one PutObject that S3 checks too."""
        size, chunk, target = self._size, self._part_size, self._target
        body = _zeroed_buffer(size)
        self.peak_buffered_bytes = size
        with body.getbuffer() as view:
            offsets = range(0, size, chunk)
            with ThreadPoolExecutor(max_workers=max(1, min(self._options.parts_in_flight, len(offsets)))) as pool:
                reads = [pool.submit(self._reader.read_into, view[o : o + chunk], o) for o in offsets]
                for read in reads:
                    read.result()
            self._digest.update(view)
        self._digest.check()
        checksum = base64.b64encode(self._digest.sha256.digest()).decode()
        with target.errors("PutObject"):
            target.s3.put_object(
                Bucket=target.bucket, Key=target.key, Body=body, Metadata=target.metadata, ChecksumSHA256=checksum
            )
        self._reporter.add(size)
        return 1

    def put_multipart(self) -> int:
        """Stream the parts into a multipart upload, completed only when the whole file hashed as published."""
        target = self._target
        with target.errors("CreateMultipartUpload"):
            created = target.s3.create_multipart_upload(Bucket=target.bucket, Key=target.key, Metadata=target.metadata)
        upload_id = created["UploadId"]
        try:
            parts = self._stream_parts(upload_id)
            self._digest.check()
            with target.errors("CompleteMultipartUpload"):
                target.s3.complete_multipart_upload(
                    Bucket=target.bucket, Key=target.key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            _abort(target, upload_id)
            raise
        return len(parts)

    def _stream_parts(self, upload_id: str) -> list[CompletedPartTypeDef]:
        """Read and upload parts in parallel, in at most `parts_in_flight` buffers, and hash them in file order on
        this thread.

        A part's upload starts as soon as its read ends, not when every part before it has been read and hashed: a
        buffer is held for its read plus its upload, and no longer, so the same memory keeps more bytes moving.
        The order of the hash does not gate what is sent, because nothing sent is visible before
        CompleteMultipartUpload, which waits for the whole file's digest."""
        count = max(1, -(-self._size // self._part_size))
        pool = ThreadPoolExecutor(max_workers=self._options.parts_in_flight, thread_name_prefix="part")
        parts: deque[_Part] = deque()
        uploads: list[Future[CompletedPartTypeDef]] = []
        next_part = 1
        try:
            for _ in range(count):
                # top up the parts ahead; wait for a buffer only when no part is on its way
                while next_part <= count and (buffer := self._buffers.take(block=not parts)) is not None:
                    part = _Part(next_part, buffer, self._buffers)
                    uploads.append(pool.submit(self._read_and_upload, upload_id, part))
                    parts.append(part)
                    next_part += 1
                part = parts.popleft()
                body = part.read.result()
                with body.getbuffer() as view:
                    self._digest.update(view)
                part.release()  # hashed
                if self._upload_errors:
                    raise self._upload_errors[0]
            return [upload.result() for upload in uploads]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            self.peak_buffered_bytes = self._buffers.made_bytes

    def _part_length(self, number: int) -> int:
        return min(self._part_size, self._size - (number - 1) * self._part_size)

    def _read_and_upload(self, upload_id: str, part: _Part) -> CompletedPartTypeDef:
        try:
            body = self._read_part(part.number, part.buffer)
        except BaseException as exc:
            part.read.set_exception(exc)
            part.release()  # not uploaded
            raise
        part.read.set_result(body)
        try:
            return self._upload_part(upload_id, part.number, body)
        finally:
            part.release()  # uploaded, or failed

    def _read_part(self, number: int, body: io.BytesIO) -> io.BytesIO:
        if self._part_length(number) < self._part_size:
            body.truncate(self._part_length(number))  # the last part: its buffer is not taken again
        with body.getbuffer() as view:
            self._reader.read_into(view, (number - 1) * self._part_size)
        return body

    def _upload_part(self, upload_id: str, number: int, body: io.BytesIO) -> CompletedPartTypeDef:
        target = self._target
        try:
            with target.errors(f"UploadPart {number}"):
                # the main thread may be hashing this buffer meanwhile: both only read it
                response = target.s3.upload_part(
                    Bucket=target.bucket, Key=target.key, UploadId=upload_id, PartNumber=number, Body=body
                )
        except BaseException as exc:
            self._upload_errors.append(exc)
            raise
        self._reporter.add(self._part_length(number))
        return {"PartNumber": number, "ETag": response["ETag"]}


class _Part:
    """One part on its way: its buffer goes back to the pool when both its upload and the hash are done with it."""

    def __init__(self, number: int, buffer: io.BytesIO, buffers: _PartBuffers) -> None:
        self.number = number
        self.buffer = buffer
        self.read: Future[io.BytesIO] = Future()  # the buffer, filled; or why the read failed
        self._buffers = buffers
        self._holders = 2  # the upload and the hash
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            last = self._holders == 0
        if last:
            self._buffers.give(self.buffer)


def _abort(target: _Target, upload_id: str) -> None:
    try:
        target.s3.abort_multipart_upload(Bucket=target.bucket, Key=target.key, UploadId=upload_id)
    except (ClientError, ConnectionError, HTTPClientError):
        # the original failure matters more; the bucket's lifecycle rule removes what is left
        logger.exception("could not abort multipart upload %s of s3://%s/%s", upload_id, target.bucket, target.key)
