"""The local Hub's content: git blobs, LFS pointers, commits and trees, repos, and the JSON the Hub's API gives them.

Ids are computed as git and the Hub compute them (blob and tree sha1s, LFS sha256s, commit shas from a fixed clock), so
a client that checks `oid`, `blobId` or `lfs.sha256` sees what it would see on huggingface.co.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses plain-git files above 10 MiB: anything bigger is LFS
CHUNK_SIZE = 64 * 1024
FIRST_COMMIT_TIME = datetime(2025, 8, 5, tzinfo=UTC)  # fixed, so commit shas are the same on every run
_AUTHOR = b"LocalHub <localhub@modelferry.invalid>"


def git_blob_sha1(data: bytes) -> str:
    """The id git (and the Hub's `oid`/`blobId`) gives a file's bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The small text file git stores in place of an LFS file; the Hub's `oid` for LFS files is this pointer's id."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size > LFS_SIZE_THRESHOLD


@dataclass(frozen=True)
class Blob:
    """One file's bytes (in memory, or a file on disk streamed on demand) and the ids the Hub publishes for it."""

    size: int
    git_oid: str
    sha256: str | None  # LFS files only: the Hub publishes no sha256 for plain git files
    content: bytes | Path

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256 or "", self.size))

    def chunks(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) in pieces of at most CHUNK_SIZE."""
        if isinstance(self.content, bytes):
            view = memoryview(self.content)
            for offset in range(start, end, CHUNK_SIZE):
                yield bytes(view[offset : min(offset + CHUNK_SIZE, end)])
            return
        with self.content.open("rb") as stream:
            stream.seek(start)
            position = start
            while position < end and (chunk := stream.read(min(CHUNK_SIZE, end - position))):
                position += len(chunk)
                yield chunk

    def read(self, start: int, end: int) -> bytes:
        return b"".join(self.chunks(start, min(end, self.size)))


def blob_from_bytes(path: str, data: bytes) -> Blob:
    if is_lfs(path, len(data)):
        sha256 = hashlib.sha256(data).hexdigest()
        return Blob(len(data), git_blob_sha1(lfs_pointer(sha256, len(data))), sha256, data)
    return Blob(len(data), git_blob_sha1(data), None, data)


_disk_digests: dict[tuple[str, int, int, bool], str] = {}
_disk_digests_lock = threading.Lock()


def blob_from_file(path: str, source: Path) -> Blob:
    """A blob streamed from disk, hashed once per (file, size, mtime) per process: benchmark files are multi-GiB."""
    stat = source.stat()
    lfs = is_lfs(path, stat.st_size)
    key = (str(source.resolve()), stat.st_size, stat.st_mtime_ns, lfs)
    with _disk_digests_lock:
        digest = _disk_digests.get(key)
    if digest is None:
        hasher = hashlib.sha256() if lfs else hashlib.sha1(b"blob %d\0" % stat.st_size, usedforsecurity=False)
        with source.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                hasher.update(chunk)
        digest = hasher.hexdigest()
        with _disk_digests_lock:
            _disk_digests[key] = digest
    if lfs:
        return Blob(stat.st_size, git_blob_sha1(lfs_pointer(digest, stat.st_size)), digest, source)
    return Blob(stat.st_size, digest, None, source)


class CommitRef(NamedTuple):
    sha: str
    title: str
    date: str  # ISO 8601, as the Hub writes it


@dataclass(frozen=True)
class Commit:
    ref: CommitRef
    files: dict[str, Blob]
    tree_oids: dict[str, str]  # folder path ("" for the root) -> git tree id
    last_commits: dict[str, CommitRef]  # file or folder path -> the latest commit that changed it

    @property
    def sha(self) -> str:
        return self.ref.sha

    def oid(self, path: str) -> str | None:
        blob = self.files.get(path)
        return blob.git_oid if blob is not None else self.tree_oids.get(path)


def _git_tree_oids(files: Mapping[str, Blob]) -> dict[str, str]:
    """Real git tree ids for every folder, computed bottom-up, so folder `oid`s look and behave like the Hub's."""
    entries: dict[str, dict[str, tuple[bytes, str]]] = defaultdict(dict)  # folder -> name -> (mode, oid)
    entries[""] = {}
    for path, blob in files.items():
        folder, _, name = path.rpartition("/")
        entries[folder][name] = (b"100644", blob.git_oid)
        while folder:
            entries.setdefault(folder.rpartition("/")[0], {})
            folder = folder.rpartition("/")[0]
    oids: dict[str, str] = {}
    for folder in sorted(entries, key=lambda f: f.count("/") + bool(f), reverse=True):  # deepest first
        children = dict(entries[folder])
        prefix = f"{folder}/" if folder else ""
        children |= {
            sub.removeprefix(prefix): (b"40000", oid)
            for sub, oid in oids.items()
            if sub.startswith(prefix) and "/" not in sub.removeprefix(prefix)
        }
        body = b"".join(
            b"%s %s\0" % (mode, name.encode()) + bytes.fromhex(oid)
            for name, (mode, oid) in sorted(
                children.items(), key=lambda kv: kv[0] + ("/" if kv[1][0] == b"40000" else "")
            )
        )
        oids[folder] = hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
    return oids


def iso_time(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_commit(files: dict[str, Blob], parent: Commit | None, title: str, when: datetime) -> Commit:
    tree_oids = _git_tree_oids(files)
    epoch = int(when.timestamp())
    body = b"tree %s\n" % tree_oids[""].encode()
    if parent is not None:
        body += b"parent %s\n" % parent.sha.encode()
    body += b"author %s %d +0000\ncommitter %s %d +0000\n\n%s\n" % (_AUTHOR, epoch, _AUTHOR, epoch, title.encode())
    sha = hashlib.sha1(b"commit %d\0" % len(body) + body, usedforsecurity=False).hexdigest()
    ref = CommitRef(sha, title, iso_time(when))
    last_commits = {}
    for path in [*files, *tree_oids]:
        oid = files[path].git_oid if path in files else tree_oids[path]
        unchanged = parent.last_commits[path] if parent is not None and parent.oid(path) == oid else None
        last_commits[path] = unchanged or ref
    return Commit(ref, dict(sorted(files.items())), tree_oids, last_commits)


@dataclass
class Repo:
    repo_id: str
    created: str
    private: bool = False
    gated: bool = False
    token: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        return self.commits.get(self.branches.get(revision, revision))

    def grants(self, token: str | None) -> bool:
        return self.token is not None and token == self.token


def tree_entry(commit: Commit, path: str, expand: bool) -> dict[str, Any]:
    """A tree / paths-info entry, as RepoFile and RepoFolder parse them."""
    blob = commit.files.get(path)
    if blob is None:
        entry: dict[str, Any] = {"type": "directory", "oid": commit.tree_oids[path], "size": 0, "path": path}
    else:
        entry = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.sha256 is not None:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
    if expand:
        last = commit.last_commits[path]
        entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": last.date}
        if blob is not None:
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
    return entry


def model_info(repo: Repo, commit: Commit, *, blobs: bool) -> dict[str, Any]:
    siblings = []
    for path, blob in commit.files.items():
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling |= {"size": blob.size, "blobId": blob.git_oid}
            if blob.sha256 is not None:
                sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
        siblings.append(sibling)
    author, _, _ = repo.repo_id.rpartition("/")
    info: dict[str, Any] = {
        "_id": hashlib.sha1(repo.repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
        "id": repo.repo_id,
        "modelId": repo.repo_id,
        "author": author or None,
        "sha": commit.sha,
        "lastModified": commit.ref.date,
        "createdAt": repo.created,
        "private": repo.private,
        "gated": "manual" if repo.gated else False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "library_name": "transformers",
        "tags": ["transformers", "safetensors"],
        "siblings": siblings,
        "spaces": [],
        "usedStorage": sum(blob.size for blob in commit.files.values()),
    }
    config = _small_json(commit.files.get("config.json"))
    if isinstance(config, dict):
        keys = ("architectures", "model_type", "quantization_config")
        info["config"] = {key: config[key] for key in keys if key in config}
    parameters = _safetensors_parameters(commit)
    if parameters:
        info["safetensors"] = {"parameters": parameters, "total": sum(parameters.values())}
    return info


def _small_json(blob: Blob | None) -> Any:
    if blob is None or blob.size > 1 << 20:
        return None
    try:
        return json.loads(blob.read(0, blob.size))
    except ValueError:
        return None


def _safetensors_parameters(commit: Commit) -> dict[str, int]:
    """Parameters per dtype across the root-level safetensors files, read from their headers (as the Hub does).

    Files that are not real safetensors (benchmarks serve random bytes under that name) are skipped.
    """
    counts: Counter[str] = Counter()
    for path, blob in commit.files.items():
        if "/" in path or not path.endswith(".safetensors") or blob.size < 8:
            continue
        (header_size,) = struct.unpack("<Q", blob.read(0, 8))
        if header_size > min(blob.size - 8, 100 << 20):  # safetensors caps headers at 100 MB
            continue
        file_counts: Counter[str] = Counter()
        try:
            for name, tensor in json.loads(blob.read(8, 8 + header_size)).items():
                if name != "__metadata__":
                    file_counts[tensor["dtype"]] += math.prod(tensor["shape"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        counts += file_counts
    return dict(counts)
