"""The local Hub's HTTP side: the server, its request log, and the handler that answers as huggingface.co does."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from modelferry_cli.local.hub.faults import STATUS_FAULTS, STREAM_FAULTS, Endpoint, Fault, Faults
from modelferry_cli.local.hub.repository import (
    FIRST_COMMIT_TIME,
    Blob,
    Commit,
    Repo,
    blob_from_bytes,
    blob_from_file,
    iso_time,
    make_commit,
    model_info,
    tree_entry,
)


class RequestRecord(NamedTuple):
    method: str
    path: str  # URL path without the query string, still percent-encoded
    range: str | None
    status: int
    body_bytes: int  # bytes of body actually written (less than announced after a reset or truncation)
    has_auth: bool
    host: str  # host name the client addressed: the CDN is the "other" one
    endpoint: str  # "api", "resolve", "cdn" or "other"


# --------------------------------------------------------------------------------------------------------------------
# The hub


class LocalHub:
    """A threaded local Hub on 127.0.0.1. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        *,
        port: int = 0,
        bandwidth_bytes_per_s: int | None = None,
        tree_page_size: int = 1000,
        xet: bool = False,
        unranged_get_limit_bytes: int | None = None,
    ) -> None:
        """`xet`: LFS files are Xet-backed: the resolve redirect carries `X-Xet-Hash` and a `Link: rel="xet-auth"`,
        the bridge it points to does not repeat them. `unranged_get_limit_bytes`: a GET without Range of a larger
        file is answered 400, as the Xet bridge answers for files of several tens of GB."""
        self.faults = Faults()
        self.bandwidth_bytes_per_s = bandwidth_bytes_per_s
        self.tree_page_size = tree_page_size
        self.xet = xet
        self.unranged_get_limit_bytes = unranged_get_limit_bytes
        self._port = port
        self._repos: dict[str, Repo] = {}
        self._lfs_store: dict[str, Blob] = {}  # sha256 -> blob: what the CDN serves
        self._lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._in_flight = 0  # requests read but not yet logged
        self._all_logged = threading.Condition(self._lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> LocalHub:
        if self._server is not None:
            raise RuntimeError("LocalHub is already running")
        self._server = _Server(("127.0.0.1", self._port), self)
        # A short poll interval keeps stop() fast: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="LocalHub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open keep-alive connections, close the socket and join every thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalHub is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The Hub endpoint, for HF_ENDPOINT or HfApi(endpoint=...)."""
        return f"http://127.0.0.1:{self.port}"

    # content

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes] | Path,
        *,
        revision: str = "main",
        gated: bool | None = None,
        private: bool | None = None,
        token: str | None = None,
        message: str | None = None,
    ) -> str:
        """Commit `files` (a dict, or a folder streamed from disk) to branch `revision`; return the commit sha.

        Calling it again for the same branch makes a new commit and moves the branch, as a push during a copy
        would; older commits stay downloadable by sha. `gated`/`private` (None keeps the current setting) restrict
        access to requests sending `Authorization: Bearer <token>`; with no token, nobody gets in.
        """
        if isinstance(files, Path):
            blobs = {
                path.relative_to(files).as_posix(): path
                for path in sorted(files.rglob("*"))
                if path.is_file() and not {".git", ".cache"} & set(path.relative_to(files).parts[:-1])
            }
            content = {name: blob_from_file(name, path) for name, path in blobs.items()}
        else:
            content = {name: blob_from_bytes(name, data) for name, data in files.items()}
        with self._lock:
            repo = self._repos.get(repo_id)
            when = FIRST_COMMIT_TIME + timedelta(hours=len(repo.commits) if repo is not None else 0)
            if repo is None:
                repo = self._repos[repo_id] = Repo(repo_id, created=iso_time(when))
            repo.gated = repo.gated if gated is None else gated
            repo.private = repo.private if private is None else private
            repo.token = repo.token if token is None else token
            parent = repo.resolve(revision) if revision in repo.branches else None
            commit = make_commit(content, parent, message or f"Upload {len(content)} files", when)
            repo.commits[commit.sha] = commit
            repo.branches[revision] = commit.sha
            self._lfs_store |= {blob.sha256: blob for blob in content.values() if blob.sha256 is not None}
        return commit.sha

    # request log

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request answered so far, in completion order.

        A request is logged just after its response has gone out, so this first waits for requests still being
        answered: a test that has just received its response (or a cut connection) finds it in the log. The wait
        ends as soon as they are logged; its bound is generous because one second was not enough on a loaded
        machine (a test then read the log before the truncated request it had just seen fail).
        """
        with self._all_logged:
            self._all_logged.wait_for(lambda: self._in_flight == 0, timeout=15.0)
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _begin_request(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)
            self._in_flight -= 1
            self._all_logged.notify_all()

    def _repo(self, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def _lfs_blob(self, sha256: str) -> Blob | None:
        with self._lock:
            return self._lfs_store.get(sha256)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins only non-daemon handler threads: tests must not leak threads
    request_queue_size = 64  # benchmarks open many parallel streams at once; the default backlog (5) refuses some

    def __init__(self, address: tuple[str, int], hub: LocalHub) -> None:
        self.hub = hub
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections (or sleeping under a bandwidth cap)."""
        self.stopping.set()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up are routine here (faults provoke it): stay quiet about them, not about bugs."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _AbortConnectionError(Exception):
    """Stop answering this request and close the connection (a fault cut the body short, or the hub is stopping)."""


@dataclass
class _Exchange:
    """Per-request state the log needs, whatever path the handler takes."""

    endpoint: str = "other"
    status: int = 0
    body_bytes: int = 0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: huggingface_hub reuses one pooled connection per host
    disable_nagle_algorithm = True  # headers and body go out in separate writes: avoid 40 ms delayed-ACK stalls
    timeout = 60  # idle keep-alive connections are dropped after this
    server: _Server
    exchange: _Exchange

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log (`LocalHub.requests`) is the record."""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    # plumbing

    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def _handle(self) -> None:
        self.exchange = _Exchange()
        self.hub._begin_request()
        url = urlsplit(self.path)
        try:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._route(url.path, parse_qs(url.query), body)
        except (_AbortConnectionError, ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            self.hub._record(
                RequestRecord(
                    method=self.command,
                    path=url.path,
                    range=self.headers.get("Range"),
                    status=self.exchange.status,
                    body_bytes=self.exchange.body_bytes,
                    has_auth="Authorization" in self.headers,
                    host=self._host_name(),
                    endpoint=self.exchange.endpoint,
                )
            )

    def _host_name(self) -> str:
        return urlsplit(f"//{self.headers.get('Host', '127.0.0.1')}").hostname or "127.0.0.1"

    def _bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None

    def _send_head(self, status: int, headers: Mapping[str, str | int], content_length: int) -> None:
        self.exchange.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(content_length))
        self.end_headers()

    def _send_bytes(self, status: int, body: bytes, headers: Mapping[str, str | int] | None = None) -> None:
        self._send_head(status, headers or {}, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)
            self.exchange.body_bytes = len(body)

    def _send_json(self, status: int, value: Any, headers: Mapping[str, str | int] | None = None) -> None:
        self._send_bytes(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send_error(
        self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        extra = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {}), **(headers or {})}
        self._send_json(status, {"error": message}, extra)

    # routing

    def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        segments = path.split("/")[1:]
        if segments[:2] == ["api", "models"] and len(segments) > 2:
            self.exchange.endpoint = "api"
            self._api(segments[2:], path, query, body)
        elif segments[:1] == ["cdn-lfs"] and len(segments) == 2 and self.command in ("GET", "HEAD"):
            self.exchange.endpoint = "cdn"
            self._cdn(segments[1], query)
        elif "resolve" in segments[1:3] and self.command in ("GET", "HEAD"):
            self.exchange.endpoint = "resolve"
            split = segments.index("resolve", 1)
            if len(segments) < split + 3:
                self._send_error(404, None, "Not Found")
                return
            repo_id = "/".join(unquote(part) for part in segments[:split])
            file_path = unquote("/".join(segments[split + 2 :]))
            self._resolve(repo_id, unquote(segments[split + 1]), file_path)
        else:
            self._send_error(404, None, "Not Found")

    def _status_fault(self, endpoint: Endpoint, path: str) -> bool:
        """Answer with an armed status fault (429, 5xx, 403 GatedRepo) if one matches; True if it did."""
        fault = self.hub.faults.take(STATUS_FAULTS, endpoint, path)
        if fault is None:
            return False
        if fault.kind == "rate_limit":
            reset = fault.params["reset_seconds"]
            resource, quota = ("api", 500) if endpoint == "api" else ("resolvers", 3000)
            self._send_error(
                429,
                None,
                f"You have been rate-limited; you can retry this action in about {reset} seconds.",
                {
                    "RateLimit": f'"{resource}";r=0;t={reset}',
                    "RateLimit-Policy": f'"fixed window";"{resource}";q={quota};w=300',
                    "Retry-After": str(reset),
                },
            )
        elif fault.kind == "server_error":
            status = fault.params["status"]
            self._send_error(status, None, "Internal Error" if status == 500 else "Service Unavailable")
        elif fault.kind == "expired_url":
            self._send_bytes(fault.params["status"], b"Request has expired", {"Content-Type": "text/plain"})
        else:
            self._send_error(
                403, "GatedRepo", "Access to this model is restricted and you are not in the authorized list."
            )
        return True

    def _accessible_repo(self, repo_id: str, *, content: bool) -> Repo | None:
        """The repo if this request may see it (its files, if `content`); otherwise answer as the Hub does.

        Unknown and private repos look alike: 401 RepoNotFound without a token, 404 with one. A gated repo's
        metadata is public, its files (and auth-check) are not: 401 GatedRepo without a token, 403 with a wrong one.
        """
        repo = self.hub._repo(repo_id)
        token = self._bearer_token()
        if repo is None or (repo.private and not repo.grants(token)):
            self._send_error(401 if token is None else 404, "RepoNotFound", "Repository not found")
            return None
        if content and repo.gated and not repo.grants(token):
            restricted = f"Access to model {repo_id} is restricted"
            if token is None:
                message = f"{restricted}. You must have access to it and be authenticated to access it. Please log in."
                self._send_error(401, "GatedRepo", message)
            else:
                message = f"{restricted} and you are not in the authorized list. Visit {self.hub.url}/{repo_id}."
                self._send_error(403, "GatedRepo", message)
            return None
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._send_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    # /api/models/...

    def _api(self, rest: list[str], path: str, query: dict[str, list[str]], body: bytes) -> None:
        if self._status_fault("api", path):
            return
        keywords = {"revision", "tree", "paths-info", "auth-check"}
        width = 2 if len(rest) == 2 or (len(rest) > 2 and rest[2] in keywords) else 1
        repo_id = "/".join(unquote(part) for part in rest[:width])
        action, args = (rest[width], rest[width + 1 :]) if len(rest) > width else ("", [])
        repo = self._accessible_repo(repo_id, content=action == "auth-check")
        if repo is None:
            return
        if action == "auth-check" and not args:
            self._send_json(200, {})
        elif action in ("", "revision") and self.command == "GET" and len(args) == (1 if action else 0):
            commit = self._commit(repo, unquote(args[0]) if args else "main")
            if commit is not None:
                self._send_json(200, model_info(repo, commit, blobs=_flag(query, "blobs")))
        elif action == "tree" and self.command == "GET" and args:
            commit = self._commit(repo, unquote(args[0]))
            if commit is not None:
                self._tree(commit, unquote("/".join(args[1:])), path, query)
        elif action == "paths-info" and self.command == "POST" and len(args) == 1:
            commit = self._commit(repo, unquote(args[0]))
            if commit is not None:
                form = parse_qs(body.decode())
                expand = _flag(form, "expand")
                entries = [tree_entry(commit, p, expand) for p in form.get("paths", []) if commit.oid(p) is not None]
                self._send_json(200, entries)
        else:
            self._send_error(404, None, "Not Found")

    def _tree(self, commit: Commit, folder: str, path: str, query: dict[str, list[str]]) -> None:
        if folder and folder not in commit.tree_oids:
            self._send_error(404, "EntryNotFound", f'{folder} does not exist on "{commit.sha}"')
            return
        recursive, expand = _flag(query, "recursive"), _flag(query, "expand")
        prefix = f"{folder}/" if folder else ""
        paths = sorted(
            p
            for p in [*commit.files, *commit.tree_oids]
            if p and p.startswith(prefix) and (recursive or "/" not in p.removeprefix(prefix))
        )
        start = int(query.get("cursor", ["0"])[0])
        page = paths[start : start + self.hub.tree_page_size]
        headers = {}
        if start + len(page) < len(paths):  # the Hub pages with a Link header, as GitHub does
            params = f"recursive={str(recursive).lower()}&expand={str(expand).lower()}&cursor={start + len(page)}"
            headers["Link"] = f'<http://{self.headers.get("Host")}{path}?{params}>; rel="next"'
        self._send_json(200, [tree_entry(commit, p, expand) for p in page], headers)

    # /{repo_id}/resolve/{revision}/{path} and the CDN

    def _resolve(self, repo_id: str, revision: str, file_path: str) -> None:
        if self._status_fault("resolve", file_path):
            return
        repo = self._accessible_repo(repo_id, content=True)
        if repo is None:
            return
        commit = self._commit(repo, revision)
        if commit is None:
            return
        blob = commit.files.get(file_path)
        if blob is None:
            self._send_error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
            return
        headers: dict[str, str | int] = {"X-Repo-Commit": commit.sha, "ETag": f'"{blob.git_oid}"'}
        if blob.sha256 is None:
            self._send_file(blob, "resolve", file_path, headers)
            return
        # LFS: redirect to the CDN on the *other* host name, as the Hub redirects to cdn-lfs / cas-bridge hosts.
        # huggingface_hub reads the metadata off this very response only when the redirect leaves the host.
        cdn_host = "localhost" if self._host_name() == "127.0.0.1" else "127.0.0.1"
        query = urlencode({"repo": repo_id, "commit": commit.sha, "path": file_path})
        location = f"http://{cdn_host}:{self.hub.port}/cdn-lfs/{blob.sha256}?{query}"
        headers |= {"Location": location, "X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": blob.size}
        if self.hub.xet:
            # The real X-Xet-Hash is a Merkle root of BLAKE3 chunk hashes (xet-core); any stable 64-hex id serves here.
            headers["X-Xet-Hash"] = hashlib.sha256(f"xet:{blob.sha256}".encode()).hexdigest()
            headers["Link"] = f'<{self.hub.url}/api/models/{repo_id}/xet-read-token/{commit.sha}>; rel="xet-auth"'
        self._send_bytes(302, b"", headers)

    def _cdn(self, sha256: str, query: dict[str, list[str]]) -> None:
        file_path = query.get("path", [""])[0]
        if self._status_fault("cdn", file_path):
            return
        blob = self.hub._lfs_blob(sha256)
        if blob is None:
            self._send_bytes(403, b"AccessDenied", {"Content-Type": "text/plain"})
            return
        name = file_path.rpartition("/")[2] or sha256
        headers: dict[str, str | int] = {
            "ETag": f'"{sha256[:32]}"',  # opaque, like a CDN's: never the sha256, which only the Hub's headers carry
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(name)}; filename=\"{name}\";",
        }
        self._send_file(blob, "cdn", file_path, headers)

    def _send_file(self, blob: Blob, endpoint: Endpoint, file_path: str, extra: Mapping[str, str | int]) -> None:
        """200 or 206 with the file's bytes (416 if the range is past the end), with any armed body fault."""
        headers = {**extra, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        start, end, status = 0, blob.size, 200
        range_header = self.headers.get("Range")
        limit = self.hub.unranged_get_limit_bytes
        if range_header is None and self.command == "GET" and limit is not None and blob.size > limit:
            self._send_error(400, None, "Range header is required for files of this size")
            return
        if range_header is not None and not (
            self.command == "GET" and self.hub.faults.take({"ignore_range"}, endpoint, file_path)
        ):
            span = _parse_range(range_header, blob.size)
            if span == "unsatisfiable":
                self._send_bytes(416, b"", {"Content-Range": f"bytes */{blob.size}", **headers})
                return
            if span is not None:
                (start, end), status = span, 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self._send_head(status, headers, end - start)
        if self.command == "HEAD":
            return
        fault = self.hub.faults.take(STREAM_FAULTS, endpoint, file_path)
        self._stream(blob, start, end, fault)

    def _stream(self, blob: Blob, start: int, end: int, fault: Fault | None) -> None:
        length = end - start
        stop_at, flip_at = None, None
        if fault is not None and fault.kind == "corrupt":
            flip_at = min(fault.params["offset"], length - 1)
        elif fault is not None:
            after = fault.params["after_bytes"]
            stop_at = min(length // 2 if after is None else after, length)
        rate = self.hub.bandwidth_bytes_per_s
        began, sent = time.monotonic(), 0
        for piece in blob.chunks(start, end):
            chunk = piece if stop_at is None else piece[: stop_at - sent]
            if flip_at is not None and sent <= flip_at < sent + len(chunk):
                mutable = bytearray(chunk)
                mutable[flip_at - sent] ^= 0xFF
                chunk = bytes(mutable)
            # Pace before writing: the last byte leaves length / rate after the stream began, not one chunk early.
            if rate and self.server.stopping.wait(max(0.0, began + (sent + len(chunk)) / rate - time.monotonic())):
                raise _AbortConnectionError
            self.wfile.write(chunk)
            sent += len(chunk)
            self.exchange.body_bytes = sent
            if stop_at is not None and sent >= stop_at:
                break
        if fault is not None and fault.kind == "reset_after":
            # SO_LINGER 0 turns close() into a TCP reset: the client sees a reset, not an orderly end of stream.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            raise _AbortConnectionError
        if stop_at is not None:
            raise _AbortConnectionError  # truncate: close cleanly, short of the Content-Length announced


# --------------------------------------------------------------------------------------------------------------------
# Request parsing


def _flag(params: Mapping[str, list[str]], name: str) -> bool:
    return params.get(name, ["false"])[0].lower() in ("1", "true")


def _parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """[start, end) of a single `bytes=` range; None for a header to ignore (malformed or multi-range, per RFC 9110)."""
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or "," in spec or not (first + last).isdigit():
        return None
    if not first:  # suffix range: the last N bytes
        return (max(0, size - int(last)), size) if int(last) > 0 and size > 0 else "unsatisfiable"
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last) + 1, size) if last else size
