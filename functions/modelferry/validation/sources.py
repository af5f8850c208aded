"""Where a model's files are read from: a local folder, a Hub repository at a pinned commit, or an S3 prefix.

A source lists files with their sizes and reads byte ranges; it counts what it reads (`bytes_read`), which is how
the tests and docs/performance.md prove that validation reads headers, never weights. Read failures are not
findings: they leave as the transport's own errors (OSError, the Hub's named errors, botocore's ClientError) for
the caller to retry or report as "target unreadable".
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code
from modelferry.contract import META_FIXED_SHA256
from modelferry.errors import ChecksumMismatch

if TYPE_CHECKING:  # the S3 validation stage must not load the Hub client (httpx, huggingface_hub)
    from mypy_boto3_s3 import S3Client

    from modelferry.adapters.hub import HubClient, HubFile

logger = logging.getLogger(__name__)

SMALL_FILE_MAX_BYTES = 16 * 1024 * 1024
# Reads of a small Hub file whose bytes do not hash as published: the first and two re-reads (as for a shard).
SMALL_FILE_READS = 3
# Not part of the model: git metadata and huggingface_hub's download cache inside a `--local-dir` folder.
LOCAL_SKIPPED_DIRS = frozenset({".git", ".cache"})


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the model root, "/"-separated
    size: int


class FileTooLargeError(ValueError):
    """A file read whole (a config, an index) is larger than a small file can be."""


class Source(ABC):
    def __init__(self) -> None:
        self._files: list[SourceFile] | None = None
        self._lock = threading.Lock()  # headers are read from several threads
        self.bytes_read = 0
        self.read_requests = 0

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the model is, as a person would type it."""

    def list_files(self) -> list[SourceFile]:
        if self._files is None:
            self._files = sorted(self._list(), key=lambda f: f.path)
        return self._files

    def read_range(self, path: str, start: int, length: int) -> bytes:
        data = self._read_range(path, start, length) if length > 0 else b""
        with self._lock:
            self.bytes_read += len(data)
            self.read_requests += 1
        return data

    def read_file(self, path: str, max_bytes: int = SMALL_FILE_MAX_BYTES) -> bytes:
        """Read a listed small file whole."""
        size = next((f.size for f in self.list_files() if f.path == path), None)
        if size is None:
            raise FileNotFoundError(f"{path} is not in {self.location}")
        if size > max_bytes:
            raise FileTooLargeError(f"{path} is {size} bytes, more than the {max_bytes} a small file may be")
        return self.read_range(path, 0, size)

    @abstractmethod
    def _list(self) -> list[SourceFile]: ...

    @abstractmethod
    def _read_range(self, path: str, start: int, length: int) -> bytes: ...


class WritableSource(Source):
    """A source apply_fixes can repair in place (the Hub is read-only)."""

    def replace_file(self, path: str, original: bytes, fixed: bytes, backup_prefix: str | None) -> str:
        """Keep `original` as a backup unless one exists (a retried fix must not back up its own output), then
        write `fixed`. Returns where the backup is."""
        backup = self._replace(path, original, fixed, backup_prefix)
        self._files = None  # sizes changed (and a local backup is a new file)
        return backup

    @abstractmethod
    def _replace(self, path: str, original: bytes, fixed: bytes, backup_prefix: str | None) -> str: ...


class LocalFolderSource(WritableSource):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def _list(self) -> list[SourceFile]:
        if not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} is not a folder")
        files = []
        for folder, dirs, names in os.walk(self.path):
            dirs[:] = [d for d in dirs if d not in LOCAL_SKIPPED_DIRS]
            for name in names:
                full = Path(folder, name)
                files.append(SourceFile(full.relative_to(self.path).as_posix(), full.stat().st_size))
        return files

    def _read_range(self, path: str, start: int, length: int) -> bytes:
        with (self.path / path).open("rb") as handle:
            handle.seek(start)
            return handle.read(length)

    def _replace(self, path: str, original: bytes, fixed: bytes, backup_prefix: str | None) -> str:
        # The backup goes next to the file whatever `backup_prefix` says: a folder has no bucket to put it in.
        target = self.path / path
        backup = target.with_name(f"{target.name}.orig")
        if not backup.exists():
            backup.write_bytes(original)
        temporary = target.with_name(f"{target.name}.modelferry-tmp")
        temporary.write_bytes(fixed)
        temporary.replace(target)  # atomic: a crash leaves the old or the new file, never half of one
        return str(backup)


class HubRepoSource(Source):
    def __init__(self, hub: HubClient, repo_id: str, commit: str, files: list[HubFile] | None = None) -> None:
        super().__init__()
        self.hub, self.repo_id, self.commit = hub, repo_id, commit
        self._published: dict[str, HubFile] = {}
        if files is not None:
            self._published = {f.path: f for f in files}
            self._files = sorted((SourceFile(f.path, f.size) for f in files), key=lambda f: f.path)

    @property
    def location(self) -> str:
        return f"hf://{self.repo_id}@{self.commit}"

    def _list(self) -> list[SourceFile]:
        self._published = {f.path: f for f in self.hub.list_files(self.repo_id, self.commit)}
        return [SourceFile(f.path, f.size) for f in self._published.values()]

    def read_file(self, path: str, max_bytes: int = SMALL_FILE_MAX_BYTES) -> bytes:
        """A small file whole, checked against the digest the Hub lists for it (sha256 for an LFS file, else the
        git blob sha1) and read again when it differs: a byte flipped on the way would otherwise become a config
        that is not JSON, or a wrong value, and a good model would be refused. A mismatch in every read fails."""
        for read in range(1, SMALL_FILE_READS + 1):
            data = super().read_file(path, max_bytes)
            published = self._published.get(path)
            if published is None or _hashes_as_published(data, published):
                return data
            logger.warning("%s/%s: the bytes differ from the published digest (read %d)", self.location, path, read)
        raise ChecksumMismatch(
            f"{path} in {self.location}: the bytes read do not hash as the Hub publishes, in {SMALL_FILE_READS} reads"
        )

    def _read_range(self, path: str, start: int, length: int) -> bytes:
        return self.hub.read_range(self.repo_id, self.commit, path, start, length)


def _hashes_as_published(data: bytes, published: HubFile) -> bool:
    if published.sha256 is not None:
        return hashlib.sha256(data).hexdigest() == published.sha256
    if published.blob_id is not None:
        blob = hashlib.sha1(f"blob {len(data)}\0".encode(), usedforsecurity=False)
        blob.update(data)
        return blob.hexdigest() == published.blob_id
    return True  # nothing published to check against


class S3PrefixSource(WritableSource):
    def __init__(self, s3_client: S3Client, bucket: str, prefix: str) -> None:
        super().__init__()
        self.s3, self.bucket = s3_client, bucket
        # A prefix is a folder: "models/x" must not also match "models/x-backup/...".
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _list(self) -> list[SourceFile]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        return [
            SourceFile(obj["Key"][len(self.prefix) :], obj["Size"])
            for page in pages
            for obj in page.get("Contents", [])
            if not obj["Key"].endswith("/")  # folder markers made by consoles
        ]

    def _read_range(self, path: str, start: int, length: int) -> bytes:
        response = self.s3.get_object(
            Bucket=self.bucket, Key=self.prefix + path, Range=f"bytes={start}-{start + length - 1}"
        )
        return response["Body"].read()

    def _replace(self, path: str, original: bytes, fixed: bytes, backup_prefix: str | None) -> str:
        if backup_prefix is None:
            if not self.prefix:
                raise ValueError("a model at the bucket root needs an explicit backup_prefix outside it")
            # A sibling of the model prefix, not inside it: Bedrock imports everything under the model prefix.
            backup_prefix = self.prefix.rstrip("/") + ".orig/"
        key, backup_key = self.prefix + path, backup_prefix + path
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        metadata, content_type = head.get("Metadata", {}), head.get("ContentType", "application/octet-stream")
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=backup_key,
                Body=original,
                Metadata=metadata,
                ContentType=content_type,
                IfNoneMatch="*",  # only the first attempt backs up: a retry's "original" may be fixed already
            )
        except ClientError as exc:
            if error_code(exc) != "PreconditionFailed":
                raise
        digest = hashlib.sha256(fixed)
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=fixed,
            # The copy stage's metadata describes the Hub's file (provenance); add what the object holds now.
            Metadata={**metadata, META_FIXED_SHA256: digest.hexdigest()},
            ContentType=content_type,
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
        )
        return f"s3://{self.bucket}/{backup_key}"
