"""moto's server for the rig's worker processes: the same in-memory backends as the rig's `mock_aws`, over HTTP on
127.0.0.1, behind a WSGI filter that lets the rig see who made each request and answer some itself.

Each Lambda worker gets an access key id of its own (`LOCAL<worker id>`); the filter reads it from the request's
SigV4 `Authorization` header, so a request filter (the tests' S3 fault injection) knows which worker, hence which
function, sent it. A filter returns None to let moto answer, or the answer itself.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

# `Credential=<access key id>/<date>/<region>/<service>/aws4_request` in a SigV4 Authorization header.
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/[^/]+/([^/]+)/")


@dataclass(frozen=True)
class SeenRequest:
    """One request to moto's server, as a filter sees it."""

    method: str
    host: str
    path: str  # unquoted
    query: dict[str, list[str]]
    service: str  # the SigV4 signing name (s3, sqs, ...); "" for an unsigned request
    access_key: str  # "" for an unsigned request
    caller: str | None  # the function whose worker sent it, None for a caller the rig did not register
    copy_source: bool  # an x-amz-copy-source header: S3's CopyObject and UploadPartCopy

    def first(self, name: str) -> str | None:
        return self.query.get(name, [None])[0]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# A request filter: None lets moto answer; an Answer is sent instead (moto never sees the request).
RequestFilter = Callable[[SeenRequest], Answer | None]


class AwsServer:
    """One moto server per rig (start it inside the rig's `mock_aws`, outside any IAM principal)."""

    def __init__(self) -> None:
        self._callers: dict[str, str] = {}
        self._filters: list[RequestFilter] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self.url = ""

    def start(self) -> AwsServer:
        from moto.server import ThreadedMotoServer

        outer = self

        class FilteredMotoServer(ThreadedMotoServer):
            """ThreadedMotoServer's own start-up, with the filter in front of its WSGI application."""

            def _server_entry(self) -> None:
                from moto.moto_server.werkzeug_app import (
                    DomainDispatcherApplication,
                    MotoRequestHandler,
                    create_backend_app,
                )
                from werkzeug.serving import make_server

                class QuietRequestHandler(MotoRequestHandler):
                    def log_request(self, *_: Any, **__: Any) -> None:
                        """A line per request on stderr would bury the run's own output (and --json's)."""

                application = outer._wrap(DomainDispatcherApplication(create_backend_app))
                self._server = make_server(
                    self._ip_address, self._port, application, True, request_handler=QuietRequestHandler
                )
                self._server_ready_event.set()
                self._server.serve_forever(poll_interval=0.05)  # a rig stops it at its end: no 0.5 s wait

        self._server = FilteredMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def register_caller(self, access_key: str, label: str) -> None:
        with self._lock:
            self._callers[access_key] = label

    def forget_caller(self, access_key: str) -> None:
        with self._lock:
            self._callers.pop(access_key, None)

    def add_filter(self, request_filter: RequestFilter) -> Callable[[], None]:
        """Install a filter; returns what removes it."""
        with self._lock:
            self._filters.append(request_filter)

        def remove() -> None:
            with self._lock:
                if request_filter in self._filters:
                    self._filters.remove(request_filter)

        return remove

    def _seen(self, environ: dict[str, Any]) -> SeenRequest:
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        access_key, service = (found.group(1), found.group(2)) if found else ("", "")
        with self._lock:
            caller = self._callers.get(access_key)
        return SeenRequest(
            method=environ.get("REQUEST_METHOD", ""),
            host=environ.get("HTTP_HOST", ""),
            path=unquote(environ.get("PATH_INFO", "")),
            query=parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            service=service,
            access_key=access_key,
            caller=caller,
            copy_source="HTTP_X_AMZ_COPY_SOURCE" in environ,
        )

    def _wrap(self, application: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        def filtered(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            with self._lock:
                filters = list(self._filters)
            if filters:
                seen = self._seen(environ)
                for request_filter in filters:
                    answer = request_filter(seen)
                    if answer is not None:
                        start_response(f"{answer.status} {_REASONS.get(answer.status, 'Error')}", answer.headers)
                        return _once(answer.body)
            return application(environ, start_response)

        return filtered


def _once(body: bytes) -> Iterator[bytes]:
    yield body


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error", 503: "Slow Down"}
