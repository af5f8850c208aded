"""Read-only access to the Hugging Face Hub: resolve a revision, list files, read small files and byte ranges.

huggingface_hub does the API calls; plain httpx does ranged reads of the commit-pinned resolve URL (the library has
no ranged-read API). Every Hub failure leaves this module as one of the named errors in `modelferry.errors`, so the
state machine can tell "retry later" (HubRateLimited, HubUnavailable) from "fix the request" (the rest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from huggingface_hub import HfApi, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import hf_raise_for_status

from modelferry.errors import (
    HubAccessDenied,
    HubRateLimited,
    HubRepoNotFound,
    HubRevisionNotFound,
    HubUnavailable,
)

DEFAULT_ENDPOINT = "https://huggingface.co"


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    sha256: str | None  # LFS files only
    blob_id: str | None  # git blob sha1


class HubFileNotFound(LookupError):
    """A file asked for by path does not exist at that commit (callers decide whether that is an error)."""


@contextmanager
def hub_errors(repo_id: str, revision: str) -> Iterator[None]:
    """Translate huggingface_hub / httpx failures into modelferry's named errors."""
    try:
        yield
    except GatedRepoError as exc:
        raise HubAccessDenied(
            f"{repo_id} is gated: accept its licence on the Hub with the account whose token is stored in the "
            "HF token secret (stack parameter HfTokenSecretArn)"
        ) from exc
    except RevisionNotFoundError as exc:
        raise HubRevisionNotFound(f"revision {revision!r} does not exist in {repo_id}") from exc
    except RepositoryNotFoundError as exc:
        raise HubRepoNotFound(
            f"repository {repo_id!r} was not found (or is private and the configured token cannot see it)"
        ) from exc
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status == 429:
            raise HubRateLimited(f"the Hub rate-limited requests for {repo_id}: {exc}") from exc
        if status is not None and status >= 500:
            raise HubUnavailable(f"the Hub answered {status} for {repo_id}") from exc
        if status == 403:
            raise HubAccessDenied(f"the Hub refused access to {repo_id}: {exc}") from exc
        raise
    except httpx.TransportError as exc:
        raise HubUnavailable(f"could not reach the Hub for {repo_id}: {exc!r}") from exc


class HubClient:
    def __init__(self, endpoint: str | None = None, token: str | None = None, timeout: float = 30.0) -> None:
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._token = token
        self._api = HfApi(endpoint=self.endpoint, token=token or False)
        self._timeout = timeout
        # One pooled client: a new httpx client per read costs ~25 ms of CPU and a fresh TLS handshake.
        self._http = httpx.Client(follow_redirects=True, timeout=timeout, limits=httpx.Limits(max_connections=32))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the token
        return f"HubClient(endpoint={self.endpoint!r}, token={'set' if self._token else 'none'})"

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"} if self._token else {}

    def resolve_commit(self, repo_id: str, revision: str) -> str:
        """Pin a branch, tag or commit to the commit sha it points at now."""
        with hub_errors(repo_id, revision):
            info = self._api.model_info(repo_id, revision=revision, timeout=self._timeout)
        if not info.sha:
            raise HubRevisionNotFound(f"the Hub returned no commit for {repo_id}@{revision}")
        return info.sha

    def list_files(self, repo_id: str, commit: str) -> list[HubFile]:
        with hub_errors(repo_id, commit):
            entries = list(self._api.list_repo_tree(repo_id, revision=commit, recursive=True))
        files = [
            HubFile(
                path=entry.path,
                size=entry.size,
                sha256=entry.lfs.sha256 if entry.lfs else None,
                blob_id=entry.blob_id,
            )
            for entry in entries
            if isinstance(entry, RepoFile)
        ]
        return sorted(files, key=lambda f: f.path)

    def file_url(self, repo_id: str, commit: str, path: str) -> str:
        return hf_hub_url(repo_id, path, revision=commit, endpoint=self.endpoint)

    def read_range(self, repo_id: str, commit: str, path: str, start: int, length: int) -> bytes:
        """Read `length` bytes at `start` (fewer at the end of the file). Refuses a server that ignores Range."""
        headers = {**self.auth_headers, "range": f"bytes={start}-{start + length - 1}"}
        response = self._get(repo_id, commit, path, headers)
        if response.status_code == 416:
            return b""
        if response.status_code == 200 and not (start == 0 and len(response.content) <= length):
            raise HubUnavailable(f"the Hub ignored a Range request for {repo_id}/{path}")
        return response.content[:length]

    def read_file(self, repo_id: str, commit: str, path: str, max_bytes: int = 16 * 1024 * 1024) -> bytes:
        data = self.read_range(repo_id, commit, path, 0, max_bytes + 1)
        if len(data) > max_bytes:
            raise ValueError(f"{path} is larger than {max_bytes} bytes: not a small file")
        return data

    def read_json(self, repo_id: str, commit: str, path: str) -> Any:
        return json.loads(self.read_file(repo_id, commit, path))

    def _get(self, repo_id: str, commit: str, path: str, headers: dict[str, str]) -> httpx.Response:
        url = self.file_url(repo_id, commit, path)
        with hub_errors(repo_id, commit):
            response = self._http.get(url, headers=headers)
            if response.status_code == 416:
                return response
            try:
                hf_raise_for_status(response)
            except EntryNotFoundError as exc:
                raise HubFileNotFound(f"{path} not found in {repo_id}@{commit}") from exc
        return response
