"""Read-only access to the Hugging Face Hub: resolve a revision, list files, read small files and byte ranges.

Every request goes through the task's one request policy (`hub_http`: 429 waits, retries, a wait budget); the API
paths and their parsing are huggingface_hub's.

Every Hub failure leaves this module as one of the named errors in `modelferry.errors`, so the
state machine can tell "retry later" (HubRateLimited, HubUnavailable) from "fix the request" (the rest).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx
from huggingface_hub import hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import hf_raise_for_status

from modelferry.adapters import hub_http
from modelferry.adapters.hub_http import DEFAULT_WAIT_BUDGET_SECONDS, HubGate, HubHttp, RetryPolicy
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
    """The Hub as one task sees it: every request (API calls, small-file and header reads, the copy's ranged reads)
    goes through one `HubHttp`, so 429 pauses, retries and the wait budget are the task's, not each request's.

    The API calls are the requests huggingface_hub's `HfApi.model_info` and `list_repo_tree` make (same paths, same
    parsing into `RepoFile`), sent through this policy: HfApi sends through a process-wide session of its own, with
    no per-task budget.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        wait_budget_seconds: float = DEFAULT_WAIT_BUDGET_SECONDS,
        retry: RetryPolicy | None = None,
        max_connections: int = 32,
    ) -> None:
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self._token = token
        # One pooled client: a new httpx client per read costs ~25 ms of CPU and a fresh TLS handshake.
        self.http = HubHttp(
            gate=HubGate(wait_budget_seconds),
            retry=retry or RetryPolicy(),
            timeout_seconds=timeout,
            max_connections=max_connections,
        )

    def close(self) -> None:
        self.http.close()

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
        url = f"{self.endpoint}/api/models/{repo_id}/revision/{quote(revision, safe='')}"
        info = self._api_get(repo_id, revision, url, {}).json()
        sha = info.get("sha") if isinstance(info, dict) else None
        if not sha:
            raise HubRevisionNotFound(f"the Hub returned no commit for {repo_id}@{revision}")
        return str(sha)

    def list_files(self, repo_id: str, commit: str) -> list[HubFile]:
        """Every file at `commit`, following the listing's `Link: rel="next"` pages."""
        url: str | None = f"{self.endpoint}/api/models/{repo_id}/tree/{quote(commit, safe='')}"
        params = {"recursive": "true", "expand": "false"}
        files: list[HubFile] = []
        while url is not None:
            response = self._api_get(repo_id, commit, url, params)
            files.extend(
                HubFile(path=f.path, size=f.size, sha256=f.lfs.sha256 if f.lfs else None, blob_id=f.blob_id)
                for f in (RepoFile(**entry) for entry in response.json() if entry.get("type") == "file")
            )
            url, params = response.links.get("next", {}).get("url"), {}  # the next link carries the query
        return sorted(files, key=lambda f: f.path)

    def file_url(self, repo_id: str, commit: str, path: str) -> str:
        return hf_hub_url(repo_id, path, revision=commit, endpoint=self.endpoint)

    def read_range(self, repo_id: str, commit: str, path: str, start: int, length: int) -> bytes:
        """Read `length` bytes at `start` (fewer at the end of the file). Refuses a server that ignores Range.

        Always a ranged GET: the Hub's Xet bridge answers 400 to an unranged GET of a very large file."""
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

    def _api_get(self, repo_id: str, revision: str, url: str, params: dict[str, str]) -> httpx.Response:
        if params:
            url = f"{url}?{urlencode(params)}"
        with hub_errors(repo_id, revision):
            response = self.http.send("GET", url, headers=self.auth_headers, what=f"listing {repo_id}@{revision}")
            hf_raise_for_status(response)
        return response

    def _get(self, repo_id: str, commit: str, path: str, headers: dict[str, str]) -> httpx.Response:
        """GET through the resolve redirect, one policy request per hop: a 429 from the CDN repeats the CDN read,
        not the resolve. A CDN URL refused (403/410: its signature expired between the redirect and the read) is
        resolved again, as a 5xx would be retried."""
        url = self.file_url(repo_id, commit, path)
        what = f"reading {repo_id}@{commit[:12]}/{path}"
        for attempt in range(1, self.http.retry.retries + 2):
            with hub_errors(repo_id, commit):
                response = self.http.send("GET", url, headers=headers, what=what, follow_redirects=False)
                if response.is_redirect:
                    location = urljoin(url, response.headers["location"])
                    same_host = urlsplit(location).netloc == urlsplit(url).netloc
                    # the CDN URL is signed: the token is for the Hub only
                    hop_headers = headers if same_host else {k: v for k, v in headers.items() if k != "authorization"}
                    response = self.http.send("GET", location, headers=hop_headers, what=what)
                    if response.status_code in CDN_EXPIRED and not same_host:
                        if attempt > self.http.retry.retries:
                            raise HubUnavailable(f"{what}: the CDN kept refusing fresh URLs ({response.status_code})")
                        hub_http.clock.sleep(self.http.retry.delay(attempt))
                        continue
                if response.status_code == 416:
                    return response
                try:
                    hf_raise_for_status(response)
                except EntryNotFoundError as exc:
                    raise HubFileNotFound(f"{path} not found in {repo_id}@{commit}") from exc
            return response
        raise AssertionError("unreachable")  # pragma: no cover


# The CDN's refusal of a signed URL it no longer honours: an expired signature is 403 from CloudFront, 403 or 410
# from the Xet bridge; 401 and 404 are resolved again too (a URL the Hub has since re-signed elsewhere), since the
# resolve itself says whether the file is still there and readable.
CDN_EXPIRED = frozenset({401, 403, 404, 410})
